//! Deletion end to end, checked in every store: deleting an app erases its code generator and
//! sandbox objects (storage and alarms, read straight from their SQLite files), its R2 files, its
//! byte-sandbox workspace, stops its dev server, and keeps its usage rows detached; a deleted
//! app's sandbox keeps its place in the quota until it is really stopped; byte-sandbox
//! unreachable for the app mid-deletion leaves a recorded deletion that the alarm finishes;
//! deleting an account removes everything it owns and ends its sessions.
//!
//! The instance reaches byte-sandbox through [`Proxy`], which answers 502 for the workspaces a
//! test blocks: for those apps the agent is unreachable, for every other test it is not.

use crate::fake_llm;
use crate::harness::{
    chat, eventually, expect_error, sandbox_agent, sandbox_ready, serve, set_cookies, Instance,
    User, SANDBOX_SECRET,
};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response as AxResponse;
use byte_platform::domain::codegen::events::{AgentEvent, RunOutcome};
use byte_platform::domain::sandbox::preview_label;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A pass-through to the shared byte-sandbox that answers 502 for blocked workspaces.
struct Proxy {
    upstream: String,
    blocked: Mutex<HashSet<String>>,
    client: reqwest::Client,
}

fn proxy() -> &'static (Arc<Proxy>, String) {
    static P: OnceLock<(Arc<Proxy>, String)> = OnceLock::new();
    P.get_or_init(|| {
        let p = Arc::new(Proxy {
            upstream: sandbox_agent(),
            blocked: Mutex::new(HashSet::new()),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(600))
                .build()
                .unwrap(),
        });
        let url = serve(axum::Router::new().fallback(forward).with_state(p.clone()));
        (p, url)
    })
}

async fn forward(
    State(p): State<Arc<Proxy>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> AxResponse {
    let path = uri.path_and_query().map(|x| x.as_str()).unwrap_or("/");
    let blocked = p
        .blocked
        .lock()
        .unwrap()
        .iter()
        .any(|ws| path.starts_with(&format!("/v1/workspaces/{ws}")));
    let reply = |status: u16, ct: Option<Vec<u8>>, body: Vec<u8>| {
        let mut b = AxResponse::builder().status(status);
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        b.body(Body::from(body)).unwrap()
    };
    if blocked {
        return reply(502, None, b"blocked by the test".to_vec());
    }
    let method = Method::from_bytes(method.as_str().as_bytes()).unwrap();
    let mut req = p
        .client
        .request(method, format!("{}{path}", p.upstream))
        .body(body.to_vec());
    for (k, v) in headers.iter() {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.as_bytes().to_vec());
            let bytes = r.bytes().await.unwrap_or_default();
            reply(status, ct, bytes.to_vec())
        }
        Err(e) => reply(502, None, e.to_string().into_bytes()),
    }
}

fn block(app_id: &str, on: bool) {
    let ws = preview_label(app_id).unwrap().to_string();
    let mut set = proxy().0.blocked.lock().unwrap();
    if on {
        set.insert(ws);
    } else {
        set.remove(&ws);
    }
}

const QUOTA: u64 = 1;

/// The scripted fake model, byte-sandbox behind [`Proxy`], one sandbox per user.
fn deletion_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        let fake = fake_llm::url();
        Instance::start(&[
            ("SANDBOX_BACKEND", "local".into()),
            ("SANDBOX_URL", proxy().1.clone()),
            ("SANDBOX_SECRET", SANDBOX_SECRET.into()),
            ("MAX_SANDBOX_INSTANCES", QUOTA.to_string()),
            ("OPENAI_COMPATIBLE_BASE_URL", format!("{fake}/v1")),
            ("OPENAI_COMPATIBLE_API_KEY", "deletion-platform-key".into()),
            ("MODEL_CONFIG", fake_llm::scripted_model_config()),
            ("RATE_LIMIT_AI", "1000/60".into()),
            ("RATE_LIMIT_AI_TOKENS", "1000000/60".into()),
            ("LLM_TIMEOUT_MS", "30000".into()),
        ])
    })
}

// ------------------------------------------------------------------ reading the stores

/// The rows `sql` gives in the SQLite file `f` (read-only: the runtime's writes are never
/// blocked); `None` when the file is absent or does not answer it.
fn rows_in(f: &Path, sql: &str) -> Option<Vec<Value>> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn = rusqlite::Connection::open_with_flags(f, flags).ok()?;
    let mut stmt = conn.prepare(sql).ok()?;
    let n = stmt.column_count();
    let rows = stmt
        .query_map([], |row| {
            let mut out = Vec::new();
            for i in 0..n {
                out.push(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(x) => json!(x),
                    rusqlite::types::ValueRef::Real(x) => json!(x),
                    rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                    rusqlite::types::ValueRef::Blob(_) => json!("<blob>"),
                });
            }
            Ok(Value::Array(out))
        })
        .ok()?
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(rows)
}

fn sqlite_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sqlite")
                && p.file_name().is_none_or(|n| n != "metadata.sqlite")
            {
                out.push(p);
            }
        }
    }
    out
}

/// The first database under `v3/<kind>` that answers `sql`.
fn query(app: &Instance, kind: &str, sql: &str) -> Vec<Value> {
    sqlite_files(&app.state.join("v3").join(kind))
        .iter()
        .find_map(|f| rows_in(f, sql))
        .unwrap_or_else(|| panic!("no {kind} database answers {sql:?}"))
}

/// `SELECT COUNT(*) …` in the instance's D1 database.
fn d1_count(app: &Instance, sql: &str) -> i64 {
    query(app, "d1", sql)[0][0].as_i64().unwrap()
}

/// How many R2 objects of app files are under `apps/<id>/`.
fn r2_objects(app: &Instance, app_id: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM _mf_objects WHERE key LIKE 'apps/{app_id}/%'");
    sqlite_files(&app.state.join("v3/r2"))
        .iter()
        .filter_map(|f| rows_in(f, &sql))
        .map(|r| r[0][0].as_i64().unwrap())
        .sum()
}

/// The storage file of `class`'s object named `name`.
fn object_file(app: &Instance, class: &str, name: &str) -> Option<PathBuf> {
    let dir = app.state.join(format!("v3/do/byte-platform-{class}"));
    sqlite_files(&dir).into_iter().find(|f| {
        rows_in(f, "SELECT name FROM __miniflare_do_name")
            .is_some_and(|rows| rows.iter().any(|r| r[0] == name))
    })
}

/// What an object's storage file still holds: its own tables and, if armed, its alarm (the
/// runtime's bookkeeping tables are not the object's data).
fn object_remains(f: &Path) -> Vec<String> {
    let mut out: Vec<String> = rows_in(
        f,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' \
         AND name NOT LIKE '\\_\\_miniflare%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .unwrap_or_default()
    .iter()
    .map(|r| format!("table {}", r[0].as_str().unwrap()))
    .collect();
    if rows_in(
        f,
        "SELECT value FROM _cf_METADATA WHERE key = 1 AND value IS NOT NULL",
    )
    .is_some_and(|r| !r.is_empty())
    {
        out.push("alarm".into());
    }
    out
}

/// The agent's view of an app's workspace, asked directly (not through the proxy).
async fn agent_workspace(app_id: &str, what: &str) -> (u16, Value) {
    let ws = preview_label(app_id).unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/v1/workspaces/{ws}{what}", sandbox_agent()))
        .bearer_auth(SANDBOX_SECRET)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The workspace directory under the agent's root (the harness's one `workspaces` temp dir).
fn workspace_dir(app_id: &str) -> PathBuf {
    let prefix = format!("byte-it-workspaces-{}-", std::process::id());
    let root = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .expect("the agent's workspace root");
    root.join(preview_label(app_id).unwrap())
}

/// How many R2 objects are under `prefix` (any bucket).
pub(crate) fn r2_count(app: &Instance, prefix: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM _mf_objects WHERE key LIKE '{prefix}%'");
    sqlite_files(&app.state.join("v3/r2"))
        .iter()
        .filter_map(|f| rows_in(f, &sql))
        .map(|r| r[0][0].as_i64().unwrap())
        .sum()
}

/// Waits until the app's deletion plan has finished (its `app_deletions` row is gone).
pub(crate) async fn wait_deleted(app: &Instance, app_id: &str) {
    crate::harness::eventually(240, "the deletion to finish", || deletion_done(app, app_id)).await;
}

async fn deletion_done(app: &Instance, app_id: &str) -> bool {
    d1_count(
        app,
        &format!("SELECT COUNT(*) FROM app_deletions WHERE app_id = '{app_id}'"),
    ) == 0
}

// ------------------------------------------------------------------ driving the API

async fn create_sandbox(app: &Instance, u: &User, app_id: &str) -> reqwest::Response {
    app.call(
        Method::POST,
        &format!("/api/apps/{app_id}/sandbox"),
        &u.token,
        None,
    )
    .await
}

async fn delete_app(app: &Instance, u: &User, app_id: &str) -> u16 {
    app.call(
        Method::DELETE,
        &format!("/api/apps/{app_id}"),
        &u.token,
        None,
    )
    .await
    .status()
    .as_u16()
}

/// A whole scripted generation (plan, phases, versions, the sandbox it starts).
async fn generate(app: &Instance, u: &User, app_id: &str) {
    let message = format!("Build a page scripted-app MARKdel{}", std::process::id());
    let events = chat(app, u, app_id, &message).await;
    assert!(
        matches!(
            events.last(),
            Some((
                _,
                AgentEvent::Done {
                    status: RunOutcome::Completed
                }
            ))
        ),
        "the generation did not complete: {:?}",
        &events[events.len().saturating_sub(5)..]
    );
}

async fn usage_total(app: &Instance, u: &User) -> i64 {
    let v: Value = app
        .call(Method::GET, "/api/ai/usage", &u.token, None)
        .await
        .json()
        .await
        .unwrap();
    v["total"]["totalTokens"]
        .as_i64()
        .unwrap_or_else(|| panic!("{v}"))
}

#[tokio::test]
async fn deleting_an_app_leaves_nothing_behind() {
    let app = deletion_instance();
    let u = app.user("del-app").await;
    let id = app.app(&u, "Doomed", "public").await;
    generate(app, &u, &id).await;

    // Everything a generated app has, in every store.
    let codegen = object_file(app, "CodeGeneratorAgent", &id).expect("the generator's storage");
    let sandbox = object_file(app, "UserAppSandboxService", &id).expect("the sandbox's storage");
    assert!(object_remains(&codegen).contains(&"table files".to_string()));
    assert!(!object_remains(&sandbox).is_empty());
    assert!(r2_objects(app, &id) > 0, "versions in R2");
    let usage_rows = d1_count(
        app,
        &format!("SELECT COUNT(*) FROM ai_usage WHERE app_id = '{id}'"),
    );
    assert!(usage_rows > 0);
    let usage = usage_total(app, &u).await;
    assert!(workspace_dir(&id).is_dir());
    let (status, server) = agent_workspace(&id, "/process").await;
    assert_eq!((status, server["status"].as_str()), (200, Some("running")));

    assert_eq!(delete_app(app, &u, &id).await, 204);
    // Gone for the API at once, and a second DELETE is a 404.
    for (method, path) in [
        (Method::GET, format!("/api/apps/{id}")),
        (Method::DELETE, format!("/api/apps/{id}")),
        (Method::GET, format!("/api/apps/{id}/sandbox")),
        (Method::GET, format!("/api/agent/{id}/state")),
    ] {
        let r = app.call(method.clone(), &path, &u.token, None).await;
        expect_error(r, 404, "E002").await;
    }
    let public: Value = app
        .req(Method::GET, "/api/apps/public?limit=50")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!public.to_string().contains(&id), "{public}");

    eventually(60, "the deletion to finish", || deletion_done(app, &id)).await;
    let count = |table: &str, col: &str| {
        d1_count(
            app,
            &format!("SELECT COUNT(*) FROM {table} WHERE {col} = '{id}'"),
        )
    };
    assert_eq!(count("apps", "id"), 0);
    assert_eq!(count("sandboxes", "app_id"), 0);
    assert_eq!(count("ai_usage", "app_id"), 0);
    // Usage is kept for accounting, detached from the app.
    assert_eq!(
        d1_count(
            app,
            &format!(
                "SELECT COUNT(*) FROM ai_usage WHERE user_id = '{}' AND app_id IS NULL",
                u.id
            )
        ),
        usage_rows
    );
    assert_eq!(usage_total(app, &u).await, usage);
    assert_eq!(object_remains(&codegen), Vec::<String>::new(), "generator");
    assert_eq!(object_remains(&sandbox), Vec::<String>::new(), "sandbox");
    if let Some(f) = object_file(app, "AppDeletion", &id) {
        assert_eq!(object_remains(&f), Vec::<String>::new(), "deletion object");
    }
    assert_eq!(r2_objects(app, &id), 0);
    assert!(!workspace_dir(&id).exists());
    assert_eq!(agent_workspace(&id, "/process").await.0, 404);
}

#[tokio::test]
async fn a_deleted_apps_sandbox_holds_its_quota_place_until_a_retry_stops_it() {
    let app = deletion_instance();
    let u = app.user("del-quota").await;
    let first = app.app(&u, "First", "private").await;
    let next = app.app(&u, "Next", "private").await;
    let r = create_sandbox(app, &u, &first).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    sandbox_ready(app, &u, &first).await;

    let sandbox = object_file(app, "UserAppSandboxService", &first).expect("the sandbox's file");

    // The agent is unreachable for this app: the deletion stops at the sandbox.
    block(&first, true);
    assert_eq!(delete_app(app, &u, &first).await, 204);
    expect_error(
        app.call(Method::GET, &format!("/api/apps/{first}"), &u.token, None)
            .await,
        404,
        "E002",
    )
    .await;
    let row = query(
        app,
        "d1",
        &format!(
            "SELECT next_step, holds_sandbox, attempts, last_error FROM app_deletions WHERE app_id = '{first}'"
        ),
    );
    assert_eq!(row.len(), 1, "the deletion is recorded");
    assert_eq!(row[0][0], "stop_sandbox", "{row:?}");
    assert_eq!(row[0][1], 1);
    assert!(row[0][2].as_i64().unwrap() >= 1);
    assert!(
        row[0][3].as_str().unwrap().starts_with("stop_sandbox:"),
        "{row:?}"
    );
    assert!(
        object_file(app, "CodeGeneratorAgent", &first)
            .is_none_or(|f| object_remains(&f).is_empty()),
        "the step before the failure is done"
    );
    // Its dev server still runs, so it still counts: no other sandbox, however often asked.
    let (_, server) = agent_workspace(&first, "/process").await;
    assert_eq!(server["status"], "running");
    for _ in 0..3 {
        expect_error(create_sandbox(app, &u, &next).await, 403, "E006").await;
    }

    // Reachable again: the alarm's retry finishes the deletion, and the slot is free.
    block(&first, false);
    eventually(90, "the retried deletion to finish", || {
        deletion_done(app, &first)
    })
    .await;
    assert_eq!(agent_workspace(&first, "").await.0, 404);
    assert!(!workspace_dir(&first).exists());
    assert_eq!(object_remains(&sandbox), Vec::<String>::new());

    // Create → delete → create, repeatedly: never two running at once.
    let mut previous = first;
    let mut current = next;
    for round in 0..3 {
        let r = create_sandbox(app, &u, &current).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "round {round}");
        assert_eq!(
            agent_workspace(&previous, "").await.0,
            404,
            "round {round}: the deleted app's sandbox is gone"
        );
        // Deleted mid-creation: the in-flight lifecycle step must not bring it back.
        assert_eq!(delete_app(app, &u, &current).await, 204);
        eventually(90, "the deletion to finish", || {
            deletion_done(app, &current)
        })
        .await;
        previous = current;
        current = app.app(&u, &format!("Round {round}"), "private").await;
    }
    // The last one deleted mid-creation stays gone.
    eventually(30, "no workspace of the deleted app", || async {
        agent_workspace(&previous, "").await.0 == 404 && !workspace_dir(&previous).exists()
    })
    .await;
}

#[tokio::test]
async fn deleting_an_account_removes_everything_it_owns() {
    let app = deletion_instance();
    let u = app.user("del-account").await;
    let with_sandbox = app.app(&u, "Running", "public").await;
    let plain = app.app(&u, "Plain", "private").await;
    assert_eq!(
        create_sandbox(app, &u, &with_sandbox).await.status(),
        StatusCode::ACCEPTED
    );
    sandbox_ready(app, &u, &with_sandbox).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/ai/models/blueprint",
            &u.token,
            Some(&json!({"temperature": 0.5})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    // A second session: every session ends with the account.
    let second: Value = app
        .req(Method::POST, "/api/auth/login")
        .json(&json!({"email": u.email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = second["token"].as_str().unwrap().to_string();

    // Proof of ownership first; nothing happens without it.
    let del = |body: Option<Value>| {
        let mut r = app
            .req(Method::DELETE, "/api/auth/me")
            .bearer_auth(&u.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    let e = expect_error(del(None).await.unwrap(), 403, "E001").await;
    assert_eq!(e["error"]["fields"]["password"], "is required");
    let e = expect_error(
        del(Some(json!({"password": "not it at all"})))
            .await
            .unwrap(),
        403,
        "E001",
    )
    .await;
    assert_eq!(e["error"]["fields"]["password"], "does not match");
    expect_error(
        del(Some(json!({"password": 7}))).await.unwrap(),
        400,
        "E004",
    )
    .await;
    let r = app
        .req(Method::DELETE, "/api/auth/me")
        .bearer_auth(&u.token)
        .body("password=x")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "E004").await;
    assert_eq!(
        d1_count(
            app,
            &format!("SELECT COUNT(*) FROM apps WHERE user_id = '{}'", u.id)
        ),
        2
    );

    let r = del(Some(json!({"password": "correct horse battery"})))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let cleared: Vec<String> = set_cookies(&r);
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("byte_session=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );

    // Both sessions are over, and the credentials are gone.
    for token in [&u.token, &second] {
        let r = app.call(Method::GET, "/api/auth/me", token, None).await;
        expect_error(r, 401, "E001").await;
        let r = app.call(Method::GET, "/api/apps", token, None).await;
        expect_error(r, 401, "E001").await;
    }
    let r = app
        .req(Method::POST, "/api/auth/login")
        .json(&json!({"email": u.email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "E001").await;
    for (table, col) in [
        ("users", "id"),
        ("sessions", "user_id"),
        ("password_credentials", "user_id"),
        ("oauth_identities", "user_id"),
        ("user_provider_keys", "user_id"),
        ("user_model_configs", "user_id"),
        ("apps", "user_id"),
        ("ai_usage", "user_id"),
    ] {
        assert_eq!(
            d1_count(
                app,
                &format!("SELECT COUNT(*) FROM {table} WHERE {col} = '{}'", u.id)
            ),
            0,
            "{table}"
        );
    }
    // Every app goes through the app deletion.
    for id in [&with_sandbox, &plain] {
        eventually(90, "the app deletions to finish", || deletion_done(app, id)).await;
        assert_eq!(agent_workspace(id, "").await.0, 404);
        for class in ["CodeGeneratorAgent", "UserAppSandboxService"] {
            if let Some(f) = object_file(app, class, id) {
                assert_eq!(object_remains(&f), Vec::<String>::new(), "{class} {id}");
            }
        }
    }
    assert!(!workspace_dir(&with_sandbox).exists());

    // The address is free again, for a new and empty account.
    let r = app
        .req(Method::POST, "/api/auth/register")
        .json(&json!({"email": u.email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let fresh: Value = r.json().await.unwrap();
    let token = fresh["token"].as_str().unwrap();
    let apps: Value = app
        .call(Method::GET, "/api/apps", token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(apps["total"], 0, "{apps}");
}

#[tokio::test]
async fn an_account_without_a_password_is_deleted_right_after_signing_in() {
    let app = crate::harness::main_instance();
    let login = format!("gone{}x{}", std::process::id(), crate::harness::free_port());
    let (token, me) = crate::oauth::sign_in(app, "github", &login).await;
    let id = me["user"]["id"].as_str().unwrap().to_string();
    let app_id = app
        .app(
            &User {
                id: id.clone(),
                email: String::new(),
                token: token.clone(),
            },
            "OAuth app",
            "private",
        )
        .await;
    // Without a password, the fresh sign-in is the proof; a password sent anyway changes nothing.
    let r = app
        .call(
            Method::DELETE,
            "/api/auth/me",
            &token,
            Some(&json!({"password": "irrelevant"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.call(Method::GET, "/api/auth/me", &token, None).await,
        401,
        "E001",
    )
    .await;
    for (table, col) in [
        ("users", "id"),
        ("oauth_identities", "user_id"),
        ("sessions", "user_id"),
        ("apps", "user_id"),
    ] {
        assert_eq!(
            d1_count(
                app,
                &format!("SELECT COUNT(*) FROM {table} WHERE {col} = '{id}'")
            ),
            0,
            "{table}"
        );
    }
    eventually(60, "the app deletion to finish", || {
        deletion_done(app, &app_id)
    })
    .await;
    // Signing in again with the provider makes a new, empty account.
    let (_, again) = crate::oauth::sign_in(app, "github", &login).await;
    assert_ne!(again["user"]["id"], id);
}

#[tokio::test]
async fn an_app_deleted_while_it_generates_is_erased_once_its_run_has_stopped() {
    use futures_util::StreamExt;
    let app = deletion_instance();
    let u = app.user("del-running").await;
    let id = app.app(&u, "Busy", "private").await;
    let mark = format!(
        "MARKgate{}x{}",
        std::process::id(),
        crate::harness::free_port()
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(400))
        .build()
        .unwrap();
    let r = client
        .post(app.url(&format!("/api/agent/chat/{id}")))
        .bearer_auth(&u.token)
        .json(&json!({ "message": format!("scripted-gate {mark}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Read until phase 2's stream is held by the fake model inside src/App.tsx.
    let mut stream = r.bytes_stream();
    let mut text = String::new();
    let held = |t: &str| {
        t.split("\n\n")
            .any(|f| f.contains("event: file_chunk") && f.contains("\"path\":\"src/App.tsx\""))
    };
    while !held(&text) {
        let chunk = stream.next().await.expect("the stream went on").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let codegen = object_file(app, "CodeGeneratorAgent", &id).expect("the generator's storage");
    assert!(r2_objects(app, &id) > 0, "phase 1's version is in R2");

    // The generator cannot be erased while its driver works: the deletion waits at that step.
    assert_eq!(delete_app(app, &u, &id).await, 204);
    let row = query(
        app,
        "d1",
        &format!("SELECT next_step, last_error FROM app_deletions WHERE app_id = '{id}'"),
    );
    assert_eq!(row[0][0], "erase_generator", "{row:?}");
    assert!(row[0][1].as_str().unwrap().contains("409"), "{row:?}");
    assert!(object_remains(&codegen).contains(&"table files".to_string()));

    // The held stream goes on; the cancelled driver stops, and a retry erases everything.
    fake_llm::release(&mark);
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    eventually(90, "the deletion to finish", || deletion_done(app, &id)).await;
    assert_eq!(object_remains(&codegen), Vec::<String>::new());
    assert_eq!(r2_objects(app, &id), 0);
    assert_eq!(agent_workspace(&id, "").await.0, 404);
    // Its clients saw the run end as stopped.
    let done = text
        .split("\n\n")
        .find(|f| f.contains("event: done"))
        .expect("a done event");
    assert!(done.contains("\"stopped\""), "{done}");
}
