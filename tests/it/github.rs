//! GitHub export against the fake GitHub (`fake_github`): connecting through the exporter app's
//! OAuth (state + PKCE), creating an app's repository with its files, incremental pushes that
//! carry exactly the change (read back from the fake's git objects), a branch that moved on
//! refused with nothing lost, token and scope errors, and ownership of the links; a project's
//! repository, a branch and a pull request per ticket, and webhooks (good, bad and replayed
//! signatures) keeping the ticket's branch, pull request, commit count and status true.
//!
//! An app's files are its latest saved version in R2; the tests save versions the way the code
//! generator stores them (content-addressed blobs and a manifest), through `wrangler r2`.

use crate::fake_github as gh;
use crate::harness::{expect_error, Instance, User};
use base64::Engine;
use byte_platform::domain::codegen::run::{blob_key, content_hash, version_key};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub const SEALING_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
pub const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";

/// An instance with the exporter app pointed at the fake GitHub.
pub fn github_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        let mut vars = gh::platform_vars();
        vars.extend([
            // Ticket generation of imported repositories, by the scripted fake model.
            (
                "OPENAI_COMPATIBLE_BASE_URL",
                format!("{}/v1", crate::fake_llm::url()),
            ),
            ("OPENAI_COMPATIBLE_API_KEY", "github-platform-key".into()),
            ("MODEL_CONFIG", crate::fake_llm::scripted_model_config()),
            ("RATE_LIMIT_AI", "1000/60".into()),
            ("RATE_LIMIT_AI_TOKENS", "1000000/60".into()),
        ]);
        Instance::start(&vars)
    })
}

/// A GitHub login no other test uses.
pub fn login(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

/// Connects `u` to GitHub account `login` through the consent screen, granting `grant` (the
/// scopes asked for when `None`).
pub async fn connect(i: &Instance, u: &User, login: &str, grant: Option<&str>) {
    let r = i
        .call(
            Method::GET,
            "/api/github/connect?redirect=/settings",
            &u.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let consent = location(&r);
    assert!(
        consent.contains("scope=repo") && consent.contains("code_challenge="),
        "{consent}"
    );
    let mut at_github = format!("{consent}&user={login}");
    if let Some(g) = grant {
        at_github.push_str(&format!("&grant={g}"));
    }
    let r = i.client.get(&at_github).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let back = location(&r);
    assert!(back.starts_with(&i.url("/api/github/callback?")), "{back}");
    // GitHub's redirect comes back to the browser: no bearer token needed, the state says who.
    let r = i.client.get(&back).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{:?}", r.text().await);
    assert_eq!(location(&r), "/settings");
}

/// Saves version `n` of the app with `files` into the instance's R2, as the code generator does.
pub fn save_version(i: &Instance, app_id: &str, n: u32, files: &[(&str, &str)]) {
    let dir = crate::harness::tempdir(&format!("version-{app_id}-{n}"));
    let mut list = vec![];
    let mut manifest_files = vec![];
    for (k, (path, content)) in files.iter().enumerate() {
        let hash = content_hash(content);
        let f = dir.join(format!("blob{k}"));
        std::fs::write(&f, content).unwrap();
        list.push(json!({ "key": blob_key(app_id, &hash), "file": f }));
        manifest_files.push(json!({ "path": path, "hash": hash, "bytes": content.len() }));
    }
    let manifest = json!({ "appId": app_id, "version": n, "label": format!("v{n}"), "createdAt": 1_700_000_000_000i64 + n as i64, "files": manifest_files });
    let mf = dir.join("manifest.json");
    std::fs::write(&mf, manifest.to_string()).unwrap();
    list.push(json!({ "key": version_key(app_id, n), "file": mf }));
    let lf = dir.join("list.json");
    std::fs::write(&lf, Value::Array(list).to_string()).unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let wrangler = std::env::var_os("WRANGLER")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("node_modules/.bin/wrangler"));
    let status = Command::new(wrangler)
        .args([
            "r2",
            "bulk",
            "put",
            "byte-platform-app-files",
            "--local",
            "--persist-to",
        ])
        .arg(&i.state)
        .arg("--filename")
        .arg(&lf)
        .current_dir(&root)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("wrangler runs");
    assert!(status.success(), "saving version {n} of {app_id} failed");
}

fn as_map(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect()
}

/// What an app's repository holds when the app saved `files` and has no sandbox: the default
/// template's files (not its lockfile or catalog entry) under the app's own.
fn repository_of(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                if rel != "node_modules" && rel != "dist" {
                    walk(root, &p, out);
                }
            } else if rel != "package-lock.json" && rel != "template.json" {
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates/react-vite");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out.extend(as_map(files));
    out
}

async fn body(r: reqwest::Response) -> (StatusCode, Value) {
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

const V1: &[(&str, &str)] = &[
    ("index.html", "<div id=\"root\"></div>\n"),
    (
        "src/App.tsx",
        "export default function App() { return <h1>one</h1>; }\n",
    ),
    (
        "src/components/Hello.tsx",
        "export const Hello = () => <p>hi</p>;\n",
    ),
    ("src/lib/util.ts", "export const one = 1;\n"),
];

const V2: &[(&str, &str)] = &[
    ("index.html", "<div id=\"root\"></div>\n"),
    (
        "src/App.tsx",
        "export default function App() { return <h1>two</h1>; }\n",
    ),
    ("src/lib/util.ts", "export const two = 2;\n"),
];

#[tokio::test]
async fn create_then_incremental_pushes_carry_exactly_the_change_and_a_moved_branch_loses_nothing()
{
    let i = github_instance();
    let u = i.user("gh-push").await;
    let account = login("pusher");
    let app_id = i.app(&u, "Push App", "private").await;
    let path = format!("/api/apps/{app_id}/github");

    // Nothing linked yet; nothing to export before the app has files.
    let (s, b) = body(i.call(Method::GET, &path, &u.token, None).await).await;
    assert_eq!((s, &b), (StatusCode::OK, &json!({ "repository": null })));
    let name = format!("push-app-{}", account);
    let create = json!({ "name": name, "description": "Made by a test", "private": true });
    expect_error(
        i.call(Method::POST, &path, &u.token, Some(&create)).await,
        409,
        "E004",
    )
    .await;
    save_version(i, &app_id, 1, V1);
    // Not connected yet.
    let e = expect_error(
        i.call(Method::POST, &path, &u.token, Some(&create)).await,
        409,
        "E004",
    )
    .await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("connect"),
        "{e}"
    );

    connect(i, &u, &account, None).await;
    let (s, st) = body(i.call(Method::GET, "/api/github", &u.token, None).await).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            st["connected"].clone(),
            st["login"].clone(),
            st["scopes"].clone()
        ),
        (json!(true), json!(account), json!(["repo"]))
    );
    assert!(
        !st.to_string().contains("gho_"),
        "the token never leaves: {st}"
    );

    // Create: the repository holds exactly the app (its files over its template's), on top of
    // GitHub's initial commit, whose README the app does not have.
    let (s, made) = body(i.call(Method::POST, &path, &u.token, Some(&create)).await).await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let repo = &made["repository"];
    assert_eq!(repo["fullName"], format!("{account}/{name}"));
    assert_eq!(repo["private"], true);
    assert_eq!(gh::repo_private(&account, &name), Some(true));
    let first = gh::head(&account, &name, "main").unwrap();
    assert_eq!(repo["lastCommitSha"], first);
    assert_eq!(made["push"]["commitSha"], first);
    assert_eq!(gh::files(&account, &name, "main"), repository_of(V1));
    assert_eq!(made["push"]["deleted"], json!(["README.md"]));
    let initial = gh::parents(&first);
    assert_eq!(initial.len(), 1);
    assert!(gh::files_at(&initial[0]).contains_key("README.md"));
    assert!(repo["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/{account}/{name}")));
    let (_, shown) = body(i.call(Method::GET, &path, &u.token, None).await).await;
    assert_eq!(shown["repository"]["lastCommitSha"], first);
    assert!(shown["repository"]["lastPushedAt"].as_i64().is_some());
    // A second repository for the same app is refused.
    expect_error(
        i.call(Method::POST, &path, &u.token, Some(&create)).await,
        409,
        "E004",
    )
    .await;

    // Two files changed, one deleted: the push uploads two blobs and one tree with exactly
    // those three entries, committed on top of the previous push.
    save_version(i, &app_id, 2, V2);
    let before = gh::requests_for(&account, &name).len();
    let (s, pushed) = body(
        i.call(Method::POST, &format!("{path}/push"), &u.token, None)
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{pushed}");
    assert_eq!(pushed["push"]["committed"], true);
    assert_eq!(
        pushed["push"]["written"],
        json!(["src/App.tsx", "src/lib/util.ts"])
    );
    assert_eq!(
        pushed["push"]["deleted"],
        json!(["src/components/Hello.tsx"])
    );
    let second = gh::head(&account, &name, "main").unwrap();
    assert_eq!(pushed["push"]["commitSha"], second);
    assert_eq!(pushed["repository"]["lastCommitSha"], second);
    assert_eq!(gh::parents(&second), vec![first.clone()]);
    assert_eq!(gh::files(&account, &name, "main"), repository_of(V2));
    let calls: Vec<gh::Recorded> = gh::requests_for(&account, &name).split_off(before);
    let blobs: Vec<String> = calls
        .iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/git/blobs"))
        .map(|c| {
            let b = base64::engine::general_purpose::STANDARD
                .decode(c.body["content"].as_str().unwrap())
                .unwrap();
            String::from_utf8(b).unwrap()
        })
        .collect();
    assert_eq!(blobs, vec![V2[1].1.to_string(), V2[2].1.to_string()]);
    let trees: Vec<&gh::Recorded> = calls
        .iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/git/trees"))
        .collect();
    assert_eq!(trees.len(), 1);
    let entries: Vec<(String, Value)> = trees[0].body["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e["sha"].clone()))
        .collect();
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert_eq!(
        entries[2],
        ("src/components/Hello.tsx".to_string(), Value::Null)
    );
    assert!(trees[0].body["base_tree"].is_string());
    let patch = calls.iter().find(|c| c.method == "PATCH").unwrap();
    assert_eq!(patch.body["force"], false);

    // Nothing changed: no commit, no upload.
    let before = gh::requests_for(&account, &name).len();
    let (s, same) = body(
        i.call(Method::POST, &format!("{path}/push"), &u.token, None)
            .await,
    )
    .await;
    assert_eq!(
        (s, same["push"]["committed"].clone()),
        (StatusCode::OK, json!(false))
    );
    let calls = gh::requests_for(&account, &name).split_off(before);
    assert!(calls.iter().all(|c| c.method == "GET"), "{calls:?}");

    // Someone pushes to the branch on GitHub: our next push is a conflict, and their commit
    // stays where it is.
    let theirs = gh::push_from_elsewhere(&account, &name, "main", &[("NOTES.md", Some("mine\n"))]);
    save_version(i, &app_id, 3, &[("src/App.tsx", "three\n")]);
    let e = expect_error(
        i.call(Method::POST, &format!("{path}/push"), &u.token, None)
            .await,
        409,
        "E004",
    )
    .await;
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("moved on") && msg.contains("overwritten"),
        "{msg}"
    );
    assert_eq!(
        gh::head(&account, &name, "main").as_deref(),
        Some(theirs.as_str())
    );
    assert_eq!(gh::files(&account, &name, "main")["NOTES.md"], "mine\n");
    let (_, shown) = body(i.call(Method::GET, &path, &u.token, None).await).await;
    assert_eq!(shown["repository"]["lastCommitSha"], second);
}

#[tokio::test]
async fn scope_token_and_name_errors_are_clear() {
    let i = github_instance();

    // A connection without the `repo` scope cannot create a repository.
    let u = i.user("gh-scope").await;
    let account = login("noscope");
    connect(i, &u, &account, Some("read:user")).await;
    let app_id = i.app(&u, "Scope App", "private").await;
    save_version(i, &app_id, 1, V1);
    let path = format!("/api/apps/{app_id}/github");
    let e = expect_error(
        i.call(
            Method::POST,
            &path,
            &u.token,
            Some(&json!({ "name": "scoped" })),
        )
        .await,
        403,
        "E001",
    )
    .await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("repo"),
        "{e}"
    );
    assert_eq!(gh::repo_private(&account, "scoped"), None);

    // A repository name GitHub's rules refuse is a field error before any call.
    let e = expect_error(
        i.call(
            Method::POST,
            &path,
            &u.token,
            Some(&json!({ "name": "no spaces here" })),
        )
        .await,
        400,
        "E004",
    )
    .await;
    assert!(e["error"]["fields"]["name"].is_string(), "{e}");

    // A name the account already has.
    let v = i.user("gh-dup").await;
    let owner = login("dup");
    connect(i, &v, &owner, None).await;
    let a = i.app(&v, "Dup A", "private").await;
    let b = i.app(&v, "Dup B", "private").await;
    save_version(i, &a, 1, V1);
    save_version(i, &b, 1, V2);
    let same = json!({ "name": "same-name" });
    let r = i
        .call(
            Method::POST,
            &format!("/api/apps/{a}/github"),
            &v.token,
            Some(&same),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let e = expect_error(
        i.call(
            Method::POST,
            &format!("/api/apps/{b}/github"),
            &v.token,
            Some(&same),
        )
        .await,
        400,
        "E004",
    )
    .await;
    assert!(
        e["error"]["fields"]["name"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{e}"
    );
    let (_, none) = body(
        i.call(
            Method::GET,
            &format!("/api/apps/{b}/github"),
            &v.token,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(none["repository"], Value::Null);

    // A token GitHub no longer accepts: reconnect.
    gh::revoke_tokens_of(&owner);
    save_version(i, &a, 2, V2);
    let e = expect_error(
        i.call(
            Method::POST,
            &format!("/api/apps/{a}/github/push"),
            &v.token,
            None,
        )
        .await,
        403,
        "E001",
    )
    .await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connect GitHub again"),
        "{e}"
    );
}

#[tokio::test]
async fn the_connect_state_is_single_use_and_disconnect_forgets_the_token() {
    let i = github_instance();
    let u = i.user("gh-state").await;
    let r = i
        .call(Method::GET, "/api/github/connect", &u.token, None)
        .await;
    let consent = location(&r);
    let r = i
        .client
        .get(format!("{consent}&user={}", login("state")))
        .send()
        .await
        .unwrap();
    let back = location(&r);
    let r = i.client.get(&back).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    // The same callback again: the state is spent.
    expect_error(i.client.get(&back).send().await.unwrap(), 400, "E004").await;
    // A made-up state.
    expect_error(
        i.client
            .get(i.url("/api/github/callback?code=x&state=forged"))
            .send()
            .await
            .unwrap(),
        400,
        "E004",
    )
    .await;
    // The person refused at GitHub.
    let r = i
        .call(Method::GET, "/api/github/connect", &u.token, None)
        .await;
    let r = i
        .client
        .get(format!("{}&deny=1", location(&r)))
        .send()
        .await
        .unwrap();
    expect_error(
        i.client.get(location(&r)).send().await.unwrap(),
        403,
        "E001",
    )
    .await;
    // Connecting needs a signed-in user.
    expect_error(
        i.req(Method::GET, "/api/github/connect")
            .send()
            .await
            .unwrap(),
        401,
        "E001",
    )
    .await;

    let (_, st) = body(i.call(Method::GET, "/api/github", &u.token, None).await).await;
    assert_eq!(st["connected"], true);
    let r = i.call(Method::DELETE, "/api/github", &u.token, None).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, st) = body(i.call(Method::GET, "/api/github", &u.token, None).await).await;
    assert_eq!(
        (st["configured"].clone(), st["connected"].clone()),
        (json!(true), json!(false))
    );
    expect_error(
        i.call(Method::DELETE, "/api/github", &u.token, None).await,
        404,
        "E002",
    )
    .await;
}

#[tokio::test]
async fn another_user_cannot_touch_an_apps_repository() {
    let i = github_instance();
    let owner = i.user("gh-owner").await;
    let account = login("owner");
    connect(i, &owner, &account, None).await;
    let app_id = i.app(&owner, "Owned", "public").await;
    save_version(i, &app_id, 1, V1);
    let path = format!("/api/apps/{app_id}/github");
    let r = i
        .call(
            Method::POST,
            &path,
            &owner.token,
            Some(&json!({ "name": "owned" })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let other = i.user("gh-other").await;
    connect(i, &other, &login("other"), None).await;
    for (m, p, b) in [
        (Method::GET, path.clone(), None),
        (
            Method::POST,
            path.clone(),
            Some(json!({ "name": "stolen" })),
        ),
        (Method::POST, format!("{path}/push"), None),
        (Method::DELETE, path.clone(), None),
    ] {
        expect_error(
            i.call(m.clone(), &p, &other.token, b.as_ref()).await,
            404,
            "E002",
        )
        .await;
    }
    let (_, still) = body(i.call(Method::GET, &path, &owner.token, None).await).await;
    assert_eq!(still["repository"]["name"], "owned");
    // The owner may unlink; the repository stays on GitHub.
    assert_eq!(
        i.call(Method::DELETE, &path, &owner.token, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(gh::repo_private(&account, "owned"), Some(true));
}

// ---------------------------------------------------------------- projects and tickets

/// Requests to the ticket instance hold this shared; a seed (a write to its D1 file while the
/// Worker runs) holds it alone, so no Worker write meets the file busy.
static GATE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// An instance of its own for the ticket tests (their seeds write its D1 file directly).
fn ticket_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| Instance::start(&gh::platform_vars()))
}

async fn tcall(u: &User, m: Method, path: &str, b: Option<Value>) -> reqwest::Response {
    let _g = GATE.read().await;
    ticket_instance().call(m, path, &u.token, b.as_ref()).await
}

/// The instance's D1 file.
fn d1_file(i: &Instance) -> std::path::PathBuf {
    let mut stack = vec![i.state.join("v3/d1")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sqlite") {
                let c = rusqlite::Connection::open_with_flags(
                    &p,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap();
                let has: i64 = c
                    .query_row(
                        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'orchestration_tickets'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap_or(0);
                if has == 1 {
                    return p;
                }
            }
        }
    }
    panic!("no D1 database");
}

/// A `new` project of `u` with tickets titled `titles` (ticket 2 blocked by ticket 1), written
/// as ticket generation writes them, then approved through the API; `(project, ticket ids)`.
async fn approved_project(u: &User, titles: &[&str]) -> (String, Vec<String>) {
    let r = tcall(
        u,
        Method::POST,
        "/api/orchestrator/projects",
        Some(json!({ "source": "new", "title": "GitHub project" })),
    )
    .await;
    let (s, b) = body(r).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let project = b["project"]["id"].as_str().unwrap().to_string();
    let ids: Vec<String> = (0..titles.len())
        .map(|k| {
            use sha2::Digest;
            let h = sha2::Sha256::digest(format!("{project}-{k}").as_bytes());
            format!(
                "tkt_{}",
                h.iter()
                    .take(16)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        })
        .collect();
    {
        let _g = GATE.write().await;
        let mut c = rusqlite::Connection::open(d1_file(ticket_instance())).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        let tx = c.transaction().unwrap();
        for (k, title) in titles.iter().enumerate() {
            tx.execute(
                "INSERT INTO orchestration_tickets (id, project_id, number, title, description, type, priority, status, \
                 order_index, tags, affected_files, acceptance_criteria) VALUES (?1, ?2, ?3, ?4, ?5, 'feature', 'medium', ?6, ?7, \
                 '[]', '[\"src/App.tsx\"]', '[\"it works\"]')",
                rusqlite::params![ids[k], project, (k + 1) as i64, title, format!("{title}, in detail"), if k == 1 { "pending" } else { "ready" }, (k * 10) as i64],
            )
            .unwrap();
        }
        if titles.len() > 1 {
            tx.execute(
                "INSERT INTO orchestration_ticket_dependencies (id, ticket_id, depends_on_ticket_id, dependency_type) VALUES (?1, ?2, ?3, 'blocks')",
                rusqlite::params![format!("dep_{}", ids[1]), ids[1], ids[0]],
            )
            .unwrap();
        }
        tx.execute(
            "UPDATE orchestration_projects SET status = 'review', generation_state = 'idle', generation_step = NULL, \
             generation_error = NULL, analyzed_at = unixepoch(), total_tickets = ?2 WHERE id = ?1",
            rusqlite::params![project, titles.len() as i64],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let r = tcall(
        u,
        Method::PATCH,
        &format!("/api/orchestrator/projects/{project}"),
        Some(json!({ "action": "approve" })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    (project, ids)
}

async fn ticket(u: &User, project: &str, id: &str) -> Value {
    let (_, p) = body(
        tcall(
            u,
            Method::GET,
            &format!("/api/orchestrator/projects/{project}"),
            None,
        )
        .await,
    )
    .await;
    p["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone()
}

async fn deliver(
    event: &str,
    delivery: &str,
    payload: &Value,
    signature: Option<String>,
) -> reqwest::Response {
    let _g = GATE.read().await;
    let i = ticket_instance();
    let body = payload.to_string();
    let mut r = i
        .req(Method::POST, "/api/webhooks/github")
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery);
    if let Some(s) = signature {
        r = r.header("X-Hub-Signature-256", s);
    }
    r.body(body).send().await.unwrap()
}

fn signed(payload: &Value) -> Option<String> {
    Some(byte_platform::domain::github::webhook::sign(
        WEBHOOK_SECRET,
        payload.to_string().as_bytes(),
    ))
}

#[tokio::test]
async fn a_ticket_gets_a_branch_and_a_pull_request_and_webhooks_keep_it_true() {
    let i = ticket_instance();
    let u = {
        let _g = GATE.read().await;
        i.user("gh-tickets").await
    };
    let account = login("tickets");
    {
        let _g = GATE.read().await;
        connect(i, &u, &account, None).await;
    }
    let (project, ids) = approved_project(&u, &["Add the login page", "Remember me"]).await;
    let (t1, t2) = (&ids[0], &ids[1]);

    // No repository yet.
    let br = format!("/api/orchestrator/tickets/{t1}/github/create-branch");
    expect_error(tcall(&u, Method::POST, &br, None).await, 409, "E004").await;
    let name = format!("proj-{account}");
    let (s, made) = body(
        tcall(
            &u,
            Method::POST,
            &format!("/api/orchestrator/projects/{project}/github/create-repo"),
            Some(json!({ "name": name })),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(made["repoName"], format!("{account}/{name}"));
    let (_, p) = body(
        tcall(
            &u,
            Method::GET,
            &format!("/api/orchestrator/projects/{project}"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (p["githubRepoUrl"].clone(), p["githubRepoName"].clone()),
        (made["repoUrl"].clone(), made["repoName"].clone())
    );
    expect_error(
        tcall(
            &u,
            Method::POST,
            &format!("/api/orchestrator/projects/{project}/github/create-repo"),
            None,
        )
        .await,
        409,
        "E004",
    )
    .await;

    // The branch: a stable slug, from main's head, written on the ticket.
    let (s, b) = body(tcall(&u, Method::POST, &br, None).await).await;
    assert_eq!(
        (s, b["branchName"].clone(), b["created"].clone()),
        (
            StatusCode::CREATED,
            json!("ticket-1-add-the-login-page"),
            json!(true)
        )
    );
    let branch = "ticket-1-add-the-login-page";
    assert_eq!(
        gh::head(&account, &name, branch),
        gh::head(&account, &name, "main")
    );
    assert_eq!(ticket(&u, &project, t1).await["branchName"], branch);
    let (s, again) = body(tcall(&u, Method::POST, &br, None).await).await;
    assert_eq!(
        (s, again["branchName"].clone(), again["created"].clone()),
        (StatusCode::CREATED, json!(branch), json!(false))
    );

    // A pull request needs work on the branch, then opens once.
    let pr = format!("/api/orchestrator/tickets/{t1}/github/create-pr");
    expect_error(tcall(&u, Method::POST, &pr, None).await, 409, "E004").await;
    gh::push_from_elsewhere(
        &account,
        &name,
        branch,
        &[("src/Login.tsx", Some("export {}\n"))],
    );
    let (s, opened) = body(tcall(&u, Method::POST, &pr, None).await).await;
    assert_eq!(s, StatusCode::CREATED, "{opened}");
    let pulls = gh::pulls(&account, &name);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["head"]["ref"], branch);
    assert_eq!(pulls[0]["base"]["ref"], "main");
    assert!(pulls[0]["body"].as_str().unwrap().contains("it works"));
    assert_eq!(opened["prUrl"], pulls[0]["html_url"]);
    assert_eq!(ticket(&u, &project, t1).await["prUrl"], opened["prUrl"]);
    expect_error(tcall(&u, Method::POST, &pr, None).await, 409, "E004").await;

    // Another user sees none of it.
    let other = {
        let _g = GATE.read().await;
        i.user("gh-tickets-other").await
    };
    {
        let _g = GATE.read().await;
        connect(i, &other, &login("intruder"), None).await;
    }
    for p in [
        br.clone(),
        pr.clone(),
        format!("/api/orchestrator/projects/{project}/github/create-repo"),
    ] {
        expect_error(tcall(&other, Method::POST, &p, None).await, 404, "E002").await;
    }

    // Pushes to the branch count commits; a replayed delivery counts nothing.
    let push = json!({ "ref": format!("refs/heads/{branch}"), "repository": { "full_name": format!("{account}/{name}") }, "commits": [{"id": "a"}, {"id": "b"}] });
    let delivery = format!("push-{account}");
    let (s, h) = body(deliver("push", &delivery, &push, signed(&push)).await).await;
    assert_eq!(
        (s, h["handled"].clone(), h["tickets"].clone()),
        (StatusCode::OK, json!(true), json!([t1]))
    );
    assert_eq!(ticket(&u, &project, t1).await["commitCount"], 2);
    let (s, h) = body(deliver("push", &delivery, &push, signed(&push)).await).await;
    assert_eq!((s, h["duplicate"].clone()), (StatusCode::OK, json!(true)));
    assert_eq!(ticket(&u, &project, t1).await["commitCount"], 2);
    // Bad and missing signatures: 401, nothing changed (and the delivery id stays unused).
    let other_delivery = format!("push2-{account}");
    let forged = Some(byte_platform::domain::github::webhook::sign(
        "not the secret",
        push.to_string().as_bytes(),
    ));
    expect_error(
        deliver("push", &other_delivery, &push, forged).await,
        401,
        "E001",
    )
    .await;
    expect_error(
        deliver("push", &other_delivery, &push, None).await,
        401,
        "E001",
    )
    .await;
    let tampered = json!({ "ref": format!("refs/heads/{branch}"), "repository": { "full_name": format!("{account}/{name}") }, "commits": [{}, {}, {}, {}, {}] });
    expect_error(
        deliver("push", &other_delivery, &tampered, signed(&push)).await,
        401,
        "E001",
    )
    .await;
    assert_eq!(ticket(&u, &project, t1).await["commitCount"], 2);

    // In review: a pull request closed unmerged sends it back to in_progress; merged, it
    // completes the ticket and readies the one it blocked.
    let path = format!("/api/orchestrator/tickets/{t1}");
    for s in ["assigned", "in_progress", "review"] {
        let r = tcall(&u, Method::PATCH, &path, Some(json!({ "status": s }))).await;
        assert_eq!(r.status(), StatusCode::OK, "{s}: {:?}", r.text().await);
    }
    let closed = |merged: bool| {
        json!({ "action": "closed", "repository": { "full_name": format!("{account}/{name}") },
        "pull_request": { "merged": merged, "html_url": opened["prUrl"], "head": { "ref": branch } } })
    };
    let c = closed(false);
    let (s, _) =
        body(deliver("pull_request", &format!("close-{account}"), &c, signed(&c)).await).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ticket(&u, &project, t1).await["status"], "in_progress");
    assert_eq!(ticket(&u, &project, t2).await["status"], "pending");
    let r = tcall(
        &u,
        Method::PATCH,
        &path,
        Some(json!({ "status": "review" })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let m = closed(true);
    let (s, _) =
        body(deliver("pull_request", &format!("merge-{account}"), &m, signed(&m)).await).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ticket(&u, &project, t1).await["status"], "completed");
    assert_eq!(ticket(&u, &project, t2).await["status"], "ready");
}

// ---------------------------------------------------------------- projects from repositories

#[tokio::test]
async fn a_project_from_a_repository_imports_its_text_files_as_its_app_and_plans_from_them() {
    let i = github_instance();
    let u = i.user("gh-import").await;
    let account = login("importer");
    connect(i, &u, &account, None).await;
    let app_tsx = "export default function App() {\n  return <h1>Imported</h1>;\n}\n";
    gh::seed_repo(
        &account,
        "shop",
        "trunk",
        true,
        &[
            ("src/App.tsx", app_tsx),
            ("package.json", "{ \"name\": \"shop\" }\n"),
            ("README.md", "# Shop\n"),
            ("public/logo.png", "\u{89}PNG not really"),
            ("data/blob.dat", "bin\0ary"),
        ],
    );
    let url = format!("https://github.com/{account}/shop");
    let (s, made) = body(
        i.call(
            Method::POST,
            "/api/orchestrator/projects",
            &u.token,
            Some(&json!({ "source": "github", "githubUrl": url })),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let p = &made["project"];
    let imported = &made["import"];
    assert_eq!(imported["files"], 3, "{made}");
    assert_eq!(imported["defaultBranch"], "trunk");
    assert_eq!(
        imported["commit"],
        gh::head(&account, "shop", "trunk").unwrap()
    );
    assert_eq!(
        imported["skipped"],
        json!([
            { "path": "data/blob.dat", "reason": "binary file" },
            { "path": "public/logo.png", "reason": "binary file" },
        ])
    );
    assert_eq!(p["appId"], imported["appId"]);
    assert_eq!(p["githubRepoName"], format!("{account}/shop"));
    assert_eq!(p["githubDefaultBranch"], "trunk");
    assert_eq!(p["title"], "shop");

    // The app is the caller's, with the repository's files as its first version.
    let app_id = p["appId"].as_str().unwrap();
    let (s, a) = body(
        i.call(Method::GET, &format!("/api/apps/{app_id}"), &u.token, None)
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let r = i
        .call(
            Method::GET,
            &format!("/api/agent/{app_id}/versions/1/files/src/App.tsx"),
            &u.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), app_tsx);
    let (_, m) = body(
        i.call(
            Method::GET,
            &format!("/api/agent/{app_id}/versions/1"),
            &u.token,
            None,
        )
        .await,
    )
    .await;
    let paths: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["README.md", "package.json", "src/App.tsx"]);

    // Ticket generation runs on the imported files, as for an app.
    let pid = p["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let detail = loop {
        let (_, d) = body(
            i.call(
                Method::GET,
                &format!("/api/orchestrator/projects/{pid}"),
                &u.token,
                None,
            )
            .await,
        )
        .await;
        if d["status"] == "review" || d["generation"]["state"] == "failed" {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "no tickets: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert_eq!(detail["status"], "review", "{detail}");
    assert_eq!(detail["analysisResult"]["fileCount"], 3, "{detail}");
    assert_eq!(detail["tickets"].as_array().unwrap().len(), 3);

    // Errors: a repository the account cannot read, one that does not exist, and a user
    // without a GitHub connection.
    let other = login("stranger");
    gh::seed_repo(&other, "theirs", "main", true, &[("a.txt", "a\n")]);
    for repo in [format!("{other}/theirs"), format!("{account}/missing")] {
        let e = expect_error(
            i.call(
                Method::POST,
                "/api/orchestrator/projects",
                &u.token,
                Some(&json!({ "source": "github", "githubUrl": format!("https://github.com/{repo}") })),
            )
            .await,
            400,
            "E004",
        )
        .await;
        let why = e["error"]["fields"]["githubUrl"].as_str().unwrap();
        assert!(why.contains("account can read"), "{e}");
    }
    let v = i.user("gh-import-unconnected").await;
    let e = expect_error(
        i.call(
            Method::POST,
            "/api/orchestrator/projects",
            &v.token,
            Some(&json!({ "source": "github", "githubUrl": url })),
        )
        .await,
        409,
        "E004",
    )
    .await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("connect"),
        "{e}"
    );
    let (_, none) = body(
        i.call(Method::GET, "/api/orchestrator/projects", &v.token, None)
            .await,
    )
    .await;
    assert_eq!(none["projects"], json!([]));
}
