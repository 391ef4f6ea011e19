//! The orchestrator's REST API (issue 13) against a real `wrangler dev`: validation, the
//! active-projects limit, isolation between users on every route, the list filters, the
//! project and ticket lifecycles (refusals naming what is allowed, blocked starts, automatic
//! readiness, the project starting and completing by itself) and the plan.
//!
//! Tickets come from ticket generation (the planner object), which these tests do not drive:
//! [`seed`] writes a generated plan straight into the instance's D1 file, as generation's last
//! step does (tickets, dependencies, the analysis, the project in `review`), and everything after
//! that goes through the public API. Writing to the SQLite file while the Worker runs would make
//! a Worker write at the same instant fail as busy, so these tests have an instance of their
//! own and every request of theirs holds [`GATE`] shared while a seed holds it alone.

use crate::harness::{expect_error, Instance, User};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use tokio::sync::RwLock;

static GATE: RwLock<()> = RwLock::const_new(());

pub const MAX_ACTIVE: u64 = 5;

fn instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    // Ticket generation (the planner object) asks a model that never answers, so a project
    // stays `running` until a test seeds it (orchestrator_gen tests generation itself).
    I.get_or_init(|| {
        Instance::start(&[
            ("RATE_LIMIT_API", "100000/60".into()),
            ("RATE_LIMIT_AI", "100000/60".into()),
            (
                "OPENAI_COMPATIBLE_BASE_URL",
                format!("{}/v1", crate::fake_llm::url()),
            ),
            ("OPENAI_COMPATIBLE_API_KEY", "orchestrator-key".into()),
            (
                "MODEL_CONFIG",
                json!({"ticketGeneration": {"provider": "custom", "model": crate::fake_llm::STALL_MODEL, "fallback": null}})
                    .to_string(),
            ),
        ])
    })
}

async fn user(tag: &str) -> User {
    let _g = GATE.read().await;
    instance().user(tag).await
}

async fn call(u: &User, method: Method, path: &str, body: Option<Value>) -> Response {
    let _g = GATE.read().await;
    instance().call(method, path, &u.token, body.as_ref()).await
}

async fn ok(r: Response, status: u16) -> Value {
    let got = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "body: {body}");
    body
}

async fn create(u: &User, body: Value) -> Value {
    ok(
        call(u, Method::POST, "/api/orchestrator/projects", Some(body)).await,
        201,
    )
    .await["project"]
        .clone()
}

async fn new_project(u: &User, title: &str) -> String {
    create(u, json!({ "source": "new", "title": title })).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn get_project(u: &User, id: &str) -> Value {
    ok(
        call(
            u,
            Method::GET,
            &format!("/api/orchestrator/projects/{id}"),
            None,
        )
        .await,
        200,
    )
    .await
}

async fn patch_ticket(u: &User, id: &str, body: Value) -> Response {
    call(
        u,
        Method::PATCH,
        &format!("/api/orchestrator/tickets/{id}"),
        Some(body),
    )
    .await
}

async fn set_status(u: &User, id: &str, status: &str) -> Value {
    ok(patch_ticket(u, id, json!({ "status": status })).await, 200).await["ticket"].clone()
}

async fn action(u: &User, project: &str, body: Value) -> Response {
    call(
        u,
        Method::PATCH,
        &format!("/api/orchestrator/projects/{project}"),
        Some(body),
    )
    .await
}

/// The instance's D1 database file.
fn d1_file() -> PathBuf {
    let mut stack = vec![instance().state.join("v3/d1")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sqlite") {
                let Ok(c) = rusqlite::Connection::open_with_flags(
                    &p,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                ) else {
                    continue;
                };
                let has: Result<i64, _> = c.query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = 'orchestration_tickets'",
                    [],
                    |r| r.get(0),
                );
                if has == Ok(1) {
                    return p;
                }
            }
        }
    }
    panic!("no D1 database under {}", instance().state.display());
}

/// One ticket of a seeded plan: its title, estimated hours, and its status when generation
/// would not decide it (`None`: ready without blockers, else pending).
pub struct T {
    pub title: &'static str,
    pub hours: Option<u32>,
    pub status: Option<&'static str>,
}

pub fn t(title: &'static str, hours: u32) -> T {
    T {
        title,
        hours: Some(hours),
        status: None,
    }
}

/// Writes a generated plan for `project` as generation's final step does: the tickets
/// (numbered 1… in order), their dependencies (`(ticket, depends on, type)` by number), the
/// analysis, and the project moved to `review` with its generation idle. Returns the ticket ids
/// by number (index 0 is ticket 1).
async fn seed(project: &str, tickets: &[T], deps: &[(usize, usize, &str)]) -> Vec<String> {
    let _g = GATE.write().await;
    let mut c = rusqlite::Connection::open(d1_file()).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let tx = c.transaction().unwrap();
    let ids: Vec<String> = tickets
        .iter()
        .map(|_| format!("tkt_{:032x}", rand_u128()))
        .collect();
    for (i, tk) in tickets.iter().enumerate() {
        let blocked = deps
            .iter()
            .any(|(a, _, kind)| *a == i + 1 && *kind == "blocks");
        let status = tk
            .status
            .unwrap_or(if blocked { "pending" } else { "ready" });
        tx.execute(
            "INSERT INTO orchestration_tickets (id, project_id, number, title, description, type, \
             priority, status, order_index, tags, estimated_hours, affected_files, acceptance_criteria) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'feature', 'medium', ?6, ?7, '[\"seed\"]', ?8, \
             '[\"src/App.tsx\"]', '[\"it works\"]')",
            rusqlite::params![
                ids[i],
                project,
                (i + 1) as i64,
                tk.title,
                format!("{} in detail", tk.title),
                status,
                (i * 10) as i64,
                tk.hours.map(|h| h as i64),
            ],
        )
        .unwrap();
    }
    for (n, (a, b, kind)) in deps.iter().enumerate() {
        tx.execute(
            "INSERT INTO orchestration_ticket_dependencies (id, ticket_id, depends_on_ticket_id, dependency_type) \
             VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![format!("dep_{n}_{}", ids[a - 1]), ids[a - 1], ids[b - 1], kind],
        )
        .unwrap();
    }
    let analysis = json!({
        "summary": "A seeded app", "stack": ["react"], "dependencies": [{"name": "react", "version": "18.3.1"}],
        "components": ["App"], "routes": ["/"], "apiEndpoints": [], "fileCount": 4
    });
    let changed = tx
        .execute(
            "UPDATE orchestration_projects SET status = 'review', generation_state = 'idle', \
             generation_step = NULL, generation_error = NULL, analysis_result = ?2, \
             analyzed_at = unixepoch(), total_tickets = ?3, updated_at = unixepoch() WHERE id = ?1",
            rusqlite::params![project, analysis.to_string(), tickets.len() as i64],
        )
        .unwrap();
    assert_eq!(changed, 1, "project {project} exists");
    tx.commit().unwrap();
    ids
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut out = 0u128;
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(
            std::time::SystemTime::now()
                .elapsed()
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        );
        out = (out << 64) | h.finish() as u128;
    }
    out
}

fn statuses(detail: &Value) -> HashMap<String, String> {
    detail["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ticket_in<'a>(detail: &'a Value, id: &str) -> &'a Value {
    detail["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
}

#[tokio::test]
async fn create_validates_every_field() {
    let u = user("orch-validate").await;
    let other = user("orch-validate-other").await;
    let theirs = {
        let _g = GATE.read().await;
        instance().app(&other, "Not yours", "private").await
    };
    let mine = {
        let _g = GATE.read().await;
        instance().app(&u, "Mine", "private").await
    };
    let path = "/api/orchestrator/projects";
    for (body, field, words) in [
        (json!({ "source": "svn" }), "source", "app, github, new"),
        (json!({}), "source", "required"),
        (json!({ "source": "new" }), "title", "required"),
        (
            json!({ "source": "new", "title": "t".repeat(201) }),
            "title",
            "at most 200",
        ),
        (
            json!({ "source": "new", "title": "T", "description": "d".repeat(1001) }),
            "description",
            "at most 1000",
        ),
        (
            json!({ "source": "github", "githubUrl": "https://gitlab.com/a/b" }),
            "githubUrl",
            "https://github.com/<owner>/<repo>",
        ),
        (
            json!({ "source": "github", "githubUrl": "https://github.com/only-owner" }),
            "githubUrl",
            "https://github.com/<owner>/<repo>",
        ),
        (json!({ "source": "github" }), "githubUrl", "required"),
        (json!({ "source": "app" }), "appId", "required"),
        (
            json!({ "source": "app", "appId": "app_nope" }),
            "appId",
            "not one of your apps",
        ),
        (
            json!({ "source": "app", "appId": "app_0123456789abcdef0123456789abcdef" }),
            "appId",
            "not one of your apps",
        ),
        (
            json!({ "source": "app", "appId": theirs }),
            "appId",
            "not one of your apps",
        ),
        (
            json!({ "source": "new", "title": "T", "appId": mine }),
            "appId",
            "only allowed",
        ),
        (
            json!({ "source": "new", "title": "T", "bogus": 1 }),
            "bogus",
            "unknown field",
        ),
    ] {
        let r = call(&u, Method::POST, path, Some(body.clone())).await;
        let e = expect_error(r, 400, "E004").await;
        let msg = e["error"]["fields"][field].as_str().unwrap_or_default();
        assert!(msg.contains(words), "{body}: {e}");
    }
    // Every offending field at once.
    let r = call(
        &u,
        Method::POST,
        path,
        Some(json!({ "source": "app", "title": "t".repeat(201), "description": "d".repeat(1001) })),
    )
    .await;
    let e = expect_error(r, 400, "E004").await;
    for f in ["appId", "title", "description"] {
        assert!(e["error"]["fields"].get(f).is_some(), "{f}: {e}");
    }
    // Nothing was created by any of them.
    let list = ok(call(&u, Method::GET, path, None).await, 200).await;
    assert_eq!(list["projects"], json!([]));
}

#[tokio::test]
async fn create_from_each_source() {
    let u = user("orch-create").await;
    let app_id = {
        let _g = GATE.read().await;
        instance().app(&u, "Shop front", "private").await
    };
    let p = create(&u, json!({ "source": "app", "appId": app_id })).await;
    assert_eq!(p["title"], "Shop front", "the app's title by default");
    assert_eq!(p["appId"], app_id.as_str());
    assert_eq!(p["source"], "app");
    assert_eq!(p["status"], "analyzing");
    assert_eq!(p["stakeholderUserId"], u.id.as_str());
    assert_eq!(p["totalTickets"], 0);
    assert_eq!(p["githubDefaultBranch"], "main");
    assert!(p["createdAt"].as_i64().unwrap() > 1_700_000_000);
    assert!(p["analysisResult"].is_null());
    assert!(p["id"].as_str().unwrap().starts_with("prj_"));
    assert_eq!(p["allowedActions"], json!([]));

    let p = create(
        &u,
        json!({ "source": "github", "githubUrl": "https://github.com/acme/storefront.git", "description": "Our shop" }),
    )
    .await;
    assert_eq!(p["title"], "storefront");
    assert_eq!(p["githubRepoUrl"], "https://github.com/acme/storefront");
    assert_eq!(p["githubRepoName"], "acme/storefront");
    assert_eq!(p["description"], "Our shop");
    assert!(p["appId"].is_null());

    let r = call(
        &u,
        Method::POST,
        "/api/orchestrator/projects",
        Some(json!({ "source": "new", "title": "  Fresh idea " })),
    )
    .await;
    let body = ok(r, 201).await;
    assert_eq!(body["project"]["title"], "Fresh idea");
    assert!(body["message"].as_str().unwrap().contains("created"));
    let id = body["project"]["id"].as_str().unwrap();
    let detail = get_project(&u, id).await;
    assert_eq!(
        detail["title"], "Fresh idea",
        "the project's fields at the top level"
    );
    assert_eq!(detail["tickets"], json!([]));
    assert_eq!(detail["dependencies"], json!([]));
    assert_eq!(
        detail["plan"],
        json!({"order": [], "levels": [], "criticalPath": {"ticketIds": [], "hours": 0}, "ready": [], "cycle": null})
    );
}

#[tokio::test]
async fn the_sixth_active_project_is_refused() {
    let u = user("orch-limit").await;
    let mut ids = Vec::new();
    for n in 0..MAX_ACTIVE {
        ids.push(new_project(&u, &format!("Project {n}")).await);
    }
    let r = call(
        &u,
        Method::POST,
        "/api/orchestrator/projects",
        Some(json!({ "source": "new", "title": "One too many" })),
    )
    .await;
    let e = expect_error(r, 403, "E004").await;
    assert_eq!(
        e["error"]["fields"]["maxProjectsActive"],
        MAX_ACTIVE.to_string()
    );
    // Another account has its own allowance.
    new_project(&user("orch-limit-other").await, "Theirs").await;
    // An archived project no longer counts.
    seed(&ids[0], &[t("Only", 1)], &[]).await;
    ok(
        action(&u, &ids[0], json!({ "action": "archive" })).await,
        200,
    )
    .await;
    new_project(&u, "In its place").await;
    let r = call(
        &u,
        Method::POST,
        "/api/orchestrator/projects",
        Some(json!({ "source": "new", "title": "Again too many" })),
    )
    .await;
    expect_error(r, 403, "E004").await;
}

#[tokio::test]
async fn another_user_gets_404_on_every_route() {
    let owner = user("orch-owner").await;
    let other = user("orch-other").await;
    let project = new_project(&owner, "Private plans").await;
    let ids = seed(
        &project,
        &[t("First", 1), t("Second", 2)],
        &[(2, 1, "blocks")],
    )
    .await;
    ok(
        action(&owner, &project, json!({ "action": "approve" })).await,
        200,
    )
    .await;
    let ticket = &ids[0];
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::GET,
            format!("/api/orchestrator/projects/{project}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/orchestrator/projects/{project}"),
            Some(json!({ "action": "archive" })),
        ),
        (
            Method::POST,
            format!("/api/orchestrator/projects/{project}/generate"),
            None,
        ),
        (
            Method::GET,
            format!("/api/orchestrator/tickets?projectId={project}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/orchestrator/tickets/{ticket}"),
            Some(json!({ "status": "assigned" })),
        ),
        (
            Method::PATCH,
            format!("/api/orchestrator/tickets/{ticket}"),
            Some(json!({ "title": "Mine now" })),
        ),
        (
            Method::POST,
            format!("/api/orchestrator/tickets/{ticket}/assign"),
            Some(json!({})),
        ),
    ];
    for (m, path, body) in &routes {
        let r = call(&other, m.clone(), path, body.clone()).await;
        let e = expect_error(r, 404, "E002").await;
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .ends_with("not found"),
            "{m} {path}: {e}"
        );
    }
    // Malformed ids are missing too.
    for (m, path) in [
        (Method::GET, "/api/orchestrator/projects/nope"),
        (Method::POST, "/api/orchestrator/projects/prj_/generate"),
        (Method::POST, "/api/orchestrator/tickets/tkt_zz/assign"),
    ] {
        let r = call(&other, m.clone(), path, Some(json!({}))).await;
        expect_error(r, 404, "E002").await;
    }
    // Lists leave it out.
    let list = ok(
        call(&other, Method::GET, "/api/orchestrator/projects", None).await,
        200,
    )
    .await;
    assert!(!list.to_string().contains(&project));
    let list = ok(
        call(&other, Method::GET, "/api/orchestrator/tickets", None).await,
        200,
    )
    .await;
    assert!(!list.to_string().contains(ticket.as_str()));
    // Nothing changed, and an outsider cannot be made the assignee either.
    let detail = get_project(&owner, &project).await;
    assert_eq!(detail["status"], "approved");
    assert_eq!(ticket_in(&detail, ticket)["title"], "First");
    let r = call(
        &owner,
        Method::POST,
        &format!("/api/orchestrator/tickets/{ticket}/assign"),
        Some(json!({ "userId": other.id })),
    )
    .await;
    let e = expect_error(r, 400, "E004").await;
    assert!(e["error"]["fields"]["userId"]
        .as_str()
        .unwrap()
        .contains("member"));
    // The owner assigns it to themselves by default.
    let r = call(
        &owner,
        Method::POST,
        &format!("/api/orchestrator/tickets/{ticket}/assign"),
        None,
    )
    .await;
    let tk = ok(r, 200).await["ticket"].clone();
    assert_eq!(
        (tk["status"].as_str(), tk["assigneeUserId"].as_str()),
        (Some("assigned"), Some(owner.id.as_str()))
    );
}

#[tokio::test]
async fn list_filters() {
    let u = user("orch-filters").await;
    let a = new_project(&u, "Alpha storefront").await;
    let b = new_project(&u, "Beta_100% backend").await;
    let ids = seed(
        &a,
        &[t("One", 1), t("Two", 1), t("Three", 1)],
        &[(3, 1, "blocks")],
    )
    .await;
    seed(&b, &[t("Other", 1)], &[]).await;
    ok(action(&u, &a, json!({ "action": "approve" })).await, 200).await;
    let list = |q: String| {
        let u = &u;
        async move {
            ok(
                call(
                    u,
                    Method::GET,
                    &format!("/api/orchestrator/projects{q}"),
                    None,
                )
                .await,
                200,
            )
            .await["projects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(String::new()).await,
        vec![b.clone(), a.clone()],
        "newest first"
    );
    assert_eq!(list("?status=approved".into()).await, vec![a.clone()]);
    assert_eq!(list("?status=review".into()).await, vec![b.clone()]);
    assert_eq!(list("?search=storefront".into()).await, vec![a.clone()]);
    assert_eq!(
        list("?search=100%25".into()).await,
        vec![b.clone()],
        "% is literal"
    );
    assert!(list("?search=zzz".into()).await.is_empty());
    let r = call(
        &u,
        Method::GET,
        "/api/orchestrator/projects?status=done",
        None,
    )
    .await;
    let e = expect_error(r, 400, "E004").await;
    assert!(e["error"]["fields"]["status"]
        .as_str()
        .unwrap()
        .contains("in_progress"));
    let r = call(
        &u,
        Method::GET,
        &format!("/api/orchestrator/projects?search={}", "x".repeat(201)),
        None,
    )
    .await;
    expect_error(r, 400, "E004").await;

    set_status(&u, &ids[0], "assigned").await;
    let tickets = |q: String| {
        let u = &u;
        async move {
            ok(
                call(
                    u,
                    Method::GET,
                    &format!("/api/orchestrator/tickets{q}"),
                    None,
                )
                .await,
                200,
            )
            .await["tickets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["title"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        tickets(String::new()).await,
        ["Other", "One", "Two", "Three"]
    );
    assert_eq!(
        tickets(format!("?projectId={a}")).await,
        ["One", "Two", "Three"]
    );
    assert_eq!(
        tickets(format!("?projectId={a}&status=ready")).await,
        ["Two"]
    );
    assert_eq!(
        tickets(format!("?projectId={a}&status=ready&status=pending")).await,
        ["Two", "Three"]
    );
    assert_eq!(
        tickets("?status=assigned,pending".into()).await,
        ["One", "Three"]
    );
    assert_eq!(tickets("?assignedToMe=true".into()).await, ["One"]);
    assert_eq!(
        tickets("?assignedToMe=false&status=ready".into()).await,
        ["Other", "Two"]
    );
    let r = call(
        &u,
        Method::GET,
        "/api/orchestrator/tickets?status=ready,done&assignedToMe=maybe&projectId=x",
        None,
    )
    .await;
    let e = expect_error(r, 400, "E004").await;
    for f in ["status", "assignedToMe", "projectId"] {
        assert!(e["error"]["fields"].get(f).is_some(), "{f}: {e}");
    }
    let r = call(
        &u,
        Method::GET,
        "/api/orchestrator/tickets?projectId=prj_0123456789abcdef0123456789abcdef",
        None,
    )
    .await;
    expect_error(r, 404, "E002").await;
}

#[tokio::test]
async fn lifecycles_readiness_and_completion() {
    let u = user("orch-life").await;
    let project = new_project(&u, "Lifecycle").await;
    // 1 → 2 → 3 (blocks), 4 related to 1, 5 alone.
    let ids = seed(
        &project,
        &[
            t("Setup", 2),
            t("Build", 5),
            t("Ship", 1),
            t("Docs", 3),
            t("Extra", 1),
        ],
        &[(2, 1, "blocks"), (3, 2, "blocks"), (4, 1, "related")],
    )
    .await;
    let (one, two, three, four, five) = (&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]);
    let d = get_project(&u, &project).await;
    assert_eq!(d["status"], "review");
    assert_eq!(d["analysisResult"]["stack"], json!(["react"]));
    assert_eq!(d["totalTickets"], 5);
    assert_eq!(
        d["allowedActions"],
        json!(["approve", "regenerate", "archive"])
    );
    let titles: Vec<&str> = d["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Setup", "Build", "Ship", "Docs", "Extra"]);
    assert_eq!(d["dependencies"].as_array().unwrap().len(), 3);
    assert_eq!(
        d["dependencies"][0],
        json!({"ticketId": two, "dependsOnTicketId": one, "type": "blocks"})
    );
    assert_eq!(d["plan"]["order"], json!([one, two, three, four, five]));
    assert_eq!(
        d["plan"]["levels"],
        json!([[one, four, five], [two], [three]])
    );
    assert_eq!(
        d["plan"]["criticalPath"],
        json!({"ticketIds": [one, two, three], "hours": 8})
    );
    assert_eq!(d["plan"]["ready"], json!([one, four, five]));
    assert_eq!(d["plan"]["cycle"], Value::Null);
    // During review nothing moves, but fields can be refined.
    assert_eq!(ticket_in(&d, one)["allowedTransitions"], json!([]));
    let r = patch_ticket(&u, one, json!({ "status": "assigned" })).await;
    let e = expect_error(r, 409, "E004").await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("approved"),
        "{e}"
    );
    let tk = ok(
        patch_ticket(
            &u,
            one,
            json!({ "estimatedHours": 3, "tags": ["infra"], "branchName": "setup/base" }),
        )
        .await,
        200,
    )
    .await["ticket"]
        .clone();
    assert_eq!(
        (tk["estimatedHours"].clone(), tk["tags"].clone()),
        (json!(3), json!(["infra"]))
    );
    let r = patch_ticket(&u, one, json!({ "branchName": "has space" })).await;
    expect_error(r, 400, "E004").await;
    let r = patch_ticket(&u, one, json!({})).await;
    expect_error(r, 400, "E004").await;

    // Refused project actions name the allowed ones.
    let r = action(
        &u,
        &project,
        json!({ "action": "approve", "guidance": "x" }),
    )
    .await;
    expect_error(r, 400, "E004").await;
    let p = ok(
        action(&u, &project, json!({ "action": "approve" })).await,
        200,
    )
    .await["project"]
        .clone();
    assert_eq!(p["status"], "approved");
    assert!(p["approvedAt"].as_i64().is_some());
    let r = action(&u, &project, json!({ "action": "approve" })).await;
    let e = expect_error(r, 409, "E004").await;
    assert_eq!(e["error"]["fields"]["allowed"], "archive");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("allowed now: archive"));
    let r = action(&u, &project, json!({ "action": "regenerate" })).await;
    expect_error(r, 409, "E004").await;
    let r = call(
        &u,
        Method::POST,
        &format!("/api/orchestrator/projects/{project}/generate"),
        None,
    )
    .await;
    expect_error(r, 409, "E004").await;

    // Refused ticket moves name the allowed ones; a pending ticket can neither be assigned nor
    // started.
    let d = get_project(&u, &project).await;
    assert_eq!(
        ticket_in(&d, one)["allowedTransitions"],
        json!(["assigned", "cancelled"])
    );
    assert_eq!(
        ticket_in(&d, two)["allowedTransitions"],
        json!(["cancelled"])
    );
    let r = patch_ticket(&u, one, json!({ "status": "completed" })).await;
    let e = expect_error(r, 409, "E004").await;
    assert_eq!(e["error"]["fields"]["allowed"], "assigned,cancelled");
    let r = patch_ticket(&u, two, json!({ "status": "in_progress" })).await;
    expect_error(r, 409, "E004").await;
    let r = patch_ticket(&u, two, json!({ "status": "ready" })).await;
    expect_error(r, 409, "E004").await;
    let r = call(
        &u,
        Method::POST,
        &format!("/api/orchestrator/tickets/{two}/assign"),
        None,
    )
    .await;
    let e = expect_error(r, 409, "E004").await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("#1"),
        "{e}"
    );

    // Work starts: the project goes in_progress by itself.
    let tk = set_status(&u, one, "assigned").await;
    assert_eq!(tk["assigneeUserId"], u.id.as_str());
    assert_eq!(get_project(&u, &project).await["status"], "in_progress");
    let tk = set_status(&u, one, "in_progress").await;
    assert!(tk["startedAt"].as_i64().is_some());
    set_status(&u, one, "blocked").await;
    set_status(&u, one, "in_progress").await;
    set_status(&u, one, "review").await;
    let d = get_project(&u, &project).await;
    assert_eq!(
        statuses(&d)[two.as_str()],
        "pending",
        "not before its blocker completes"
    );
    let tk = set_status(&u, one, "completed").await;
    assert!(tk["completedAt"].as_i64().is_some());
    assert_eq!(tk["allowedTransitions"], json!([]));
    // Completing the blocker readied its dependent, and only it.
    let d = get_project(&u, &project).await;
    let s = statuses(&d);
    assert_eq!(
        (s[two.as_str()].as_str(), s[three.as_str()].as_str()),
        ("ready", "pending")
    );
    assert_eq!(d["completedTickets"], 1);
    assert_eq!(d["plan"]["ready"], json!([two, four, five]));
    let r = patch_ticket(&u, one, json!({ "status": "in_progress" })).await;
    let e = expect_error(r, 409, "E004").await;
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("allowed now: none"));

    // The rest: 2 and 3 done in turn, 4 cancelled, 5 done; the last one completes the project.
    for id in [two, three] {
        let r = call(
            &u,
            Method::POST,
            &format!("/api/orchestrator/tickets/{id}/assign"),
            Some(json!({ "userId": u.id })),
        )
        .await;
        assert_eq!(ok(r, 200).await["ticket"]["status"], "assigned");
        for s in ["in_progress", "review", "completed"] {
            set_status(&u, id, s).await;
        }
    }
    set_status(&u, four, "cancelled").await;
    assert_eq!(get_project(&u, &project).await["status"], "in_progress");
    set_status(&u, five, "assigned").await;
    // Reassigning keeps the status.
    let r = call(
        &u,
        Method::POST,
        &format!("/api/orchestrator/tickets/{five}/assign"),
        None,
    )
    .await;
    assert_eq!(ok(r, 200).await["ticket"]["status"], "assigned");
    set_status(&u, five, "in_progress").await;
    set_status(&u, five, "review").await;
    set_status(&u, five, "completed").await;
    let d = get_project(&u, &project).await;
    assert_eq!(d["status"], "completed");
    assert_eq!(
        (d["completedTickets"].clone(), d["totalTickets"].clone()),
        (json!(4), json!(5))
    );
    assert!(d["completedAt"].as_i64().is_some());
    assert_eq!(d["allowedActions"], json!([]));
    let r = action(&u, &project, json!({ "action": "archive" })).await;
    expect_error(r, 409, "E004").await;
    // A completed project is read-only.
    let r = patch_ticket(&u, four, json!({ "title": "Late" })).await;
    expect_error(r, 409, "E004").await;
}

#[tokio::test]
async fn starting_work_with_an_unfinished_blocker_is_refused() {
    let u = user("orch-blocked").await;
    let project = new_project(&u, "Blocked").await;
    // Ticket 2 was written assigned although its blocker is open (e.g. by an import): the API
    // still refuses to start it.
    let ids = seed(
        &project,
        &[
            t("Blocker", 1),
            T {
                title: "Eager",
                hours: Some(1),
                status: Some("assigned"),
            },
        ],
        &[(2, 1, "blocks")],
    )
    .await;
    ok(
        action(&u, &project, json!({ "action": "approve" })).await,
        200,
    )
    .await;
    let d = get_project(&u, &project).await;
    assert_eq!(
        ticket_in(&d, &ids[1])["allowedTransitions"],
        json!(["cancelled"])
    );
    let r = patch_ticket(&u, &ids[1], json!({ "status": "in_progress" })).await;
    let e = expect_error(r, 409, "E004").await;
    assert_eq!(e["error"]["fields"]["blockedBy"], "#1");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("blocked by #1"));
}

#[tokio::test]
async fn regenerate_and_generate() {
    let u = user("orch-regen").await;
    let project = new_project(&u, "Again").await;
    // Running from creation: a second start is refused.
    let r = call(
        &u,
        Method::POST,
        &format!("/api/orchestrator/projects/{project}/generate"),
        None,
    )
    .await;
    let e = expect_error(r, 409, "E004").await;
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already running"));
    let r = action(&u, &project, json!({ "action": "approve" })).await;
    let e = expect_error(r, 409, "E004").await;
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("allowed now: none"));
    seed(&project, &[t("Draft", 1)], &[]).await;
    let r = action(
        &u,
        &project,
        json!({ "action": "regenerate", "guidance": "g".repeat(2001) }),
    )
    .await;
    expect_error(r, 400, "E004").await;
    let p = ok(
        action(
            &u,
            &project,
            json!({ "action": "regenerate", "guidance": "Focus on tests" }),
        )
        .await,
        200,
    )
    .await["project"]
        .clone();
    assert_eq!(p["status"], "analyzing");
    assert_eq!(p["generation"]["state"], "running");
    let r = call(
        &u,
        Method::POST,
        &format!("/api/orchestrator/projects/{project}/generate"),
        None,
    )
    .await;
    expect_error(r, 409, "E004").await;
    // Back in review (a generation finished): generate starts again from there.
    seed(&project, &[], &[]).await;
    let r = call(
        &u,
        Method::POST,
        &format!("/api/orchestrator/projects/{project}/generate"),
        None,
    )
    .await;
    let body = ok(r, 200).await;
    assert_eq!(
        body,
        json!({"message": "Ticket generation started", "projectId": project})
    );
    assert_eq!(get_project(&u, &project).await["status"], "analyzing");
}

/// Every kind of answer of every orchestrator route, checked against the served OpenAPI
/// document (status documented, body valid against its schema).
#[tokio::test]
async fn answers_match_the_document() {
    let c = crate::openapi::Contract::fetch(instance()).await;
    let u = user("orch-contract").await;
    let check = |m: Method, path: String, body: Option<Value>, want: u16| {
        let (c, u) = (&c, &u);
        async move {
            let r = call(u, m.clone(), &path, body).await;
            let (status, body) = c.check(m.clone(), &path, r).await;
            assert_eq!(status, want, "{m} {path}: {body}");
            body
        }
    };
    let projects = "/api/orchestrator/projects".to_string();
    let created = check(
        Method::POST,
        projects.clone(),
        Some(json!({ "source": "github", "githubUrl": "https://github.com/acme/shop", "description": "d" })),
        201,
    )
    .await;
    let id = created["project"]["id"].as_str().unwrap().to_string();
    check(
        Method::POST,
        projects.clone(),
        Some(json!({ "source": "x" })),
        400,
    )
    .await;
    let ids = seed(
        &id,
        &[
            t("One", 2),
            T {
                title: "Two",
                hours: None,
                status: None,
            },
        ],
        &[(2, 1, "blocks"), (1, 2, "related")],
    )
    .await;
    check(
        Method::GET,
        format!("{projects}?status=review&search=d"),
        None,
        200,
    )
    .await;
    check(Method::GET, format!("{projects}?status=nope"), None, 400).await;
    let detail = check(Method::GET, format!("{projects}/{id}"), None, 200).await;
    assert_eq!(detail["plan"]["ready"], json!([ids[0]]));
    check(
        Method::GET,
        format!("{projects}/prj_0123456789abcdef0123456789abcdef"),
        None,
        404,
    )
    .await;
    check(Method::POST, format!("{projects}/{id}/generate"), None, 200).await;
    check(Method::POST, format!("{projects}/{id}/generate"), None, 409).await;
    seed(&id, &[], &[]).await;
    check(
        Method::PATCH,
        format!("{projects}/{id}"),
        Some(json!({ "action": "approve" })),
        200,
    )
    .await;
    check(
        Method::PATCH,
        format!("{projects}/{id}"),
        Some(json!({ "action": "approve" })),
        409,
    )
    .await;
    check(
        Method::PATCH,
        format!("{projects}/{id}"),
        Some(json!({ "action": 1 })),
        400,
    )
    .await;
    let tickets = "/api/orchestrator/tickets";
    check(
        Method::GET,
        format!("{tickets}?projectId={id}&status=ready,pending"),
        None,
        200,
    )
    .await;
    check(Method::GET, format!("{tickets}?status=nope"), None, 400).await;
    check(
        Method::GET,
        format!("{tickets}?projectId=prj_0123456789abcdef0123456789abcdef"),
        None,
        404,
    )
    .await;
    let (one, two) = (&ids[0], &ids[1]);
    check(
        Method::POST,
        format!("{tickets}/{one}/assign"),
        Some(json!({})),
        200,
    )
    .await;
    check(Method::POST, format!("{tickets}/{two}/assign"), None, 409).await;
    check(
        Method::POST,
        format!("{tickets}/{two}/assign"),
        Some(json!({ "userId": "x" })),
        400,
    )
    .await;
    check(Method::POST, format!("{tickets}/tkt_0/assign"), None, 404).await;
    let tk = check(
        Method::PATCH,
        format!("{tickets}/{one}"),
        Some(json!({ "status": "in_progress", "actualHours": 1, "category": "core" })),
        200,
    )
    .await;
    assert_eq!(
        tk["ticket"]["allowedTransitions"],
        json!(["review", "blocked", "cancelled"])
    );
    check(
        Method::PATCH,
        format!("{tickets}/{one}"),
        Some(json!({ "status": "completed" })),
        409,
    )
    .await;
    check(
        Method::PATCH,
        format!("{tickets}/{one}"),
        Some(json!({ "tags": "x" })),
        400,
    )
    .await;
    check(
        Method::PATCH,
        format!("{tickets}/{two}"),
        Some(json!({ "title": "Two!" })),
        200,
    )
    .await;
    check(
        Method::PATCH,
        format!("{tickets}/tkt_0"),
        Some(json!({ "title": "x" })),
        404,
    )
    .await;
}

/// Two blockers completed at the same moment still ready their dependent: the cascade is
/// decided on the stored rows inside each write's transaction, not on what each request read.
#[tokio::test]
async fn blockers_completed_at_once_ready_their_dependent() {
    let u = user("orch-race").await;
    let project = new_project(&u, "Race").await;
    let ids = seed(
        &project,
        &[t("Left", 1), t("Right", 1), t("Join", 1)],
        &[(3, 1, "blocks"), (3, 2, "blocks")],
    )
    .await;
    ok(
        action(&u, &project, json!({ "action": "approve" })).await,
        200,
    )
    .await;
    for id in &ids[..2] {
        for s in ["assigned", "in_progress", "review"] {
            set_status(&u, id, s).await;
        }
    }
    let (a, b) = tokio::join!(
        patch_ticket(&u, &ids[0], json!({ "status": "completed" })),
        patch_ticket(&u, &ids[1], json!({ "status": "completed" })),
    );
    ok(a, 200).await;
    ok(b, 200).await;
    let d = get_project(&u, &project).await;
    assert_eq!(statuses(&d)[ids[2].as_str()], "ready");
    assert_eq!(d["completedTickets"], 2);
    assert_eq!(d["plan"]["ready"], json!([ids[2]]));
}
