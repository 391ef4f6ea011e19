//! The authorization matrix, generated from the route table: every row × {anonymous, owner,
//! other user, admin} × {private app, public app} gets exactly the answer its auth level and
//! ownership scope imply ([`expected`]): 401 E001, 403 E001, the 404 E002 of a missing app, or
//! the handler's own answer (never a server error).
//!
//! Requests are shaped so that no CPU-heavy work runs: where a handler would start a sandbox or
//! call a model, the body fails its validation after the ownership check (a 400, still the
//! handler's own answer).

use crate::harness::{
    contract_instance, unique_email_at, Instance, User, ADMIN_DOMAIN, ADMIN_PASSWORD, PASSWORD,
};
use byte_platform::domain::routes::{
    expected, Answer, Entry, Method as M, Route, Viewer, WorkspaceCall, TABLE,
};
use reqwest::Method;
use serde_json::{json, Value};

/// The request path of a row about `app_id`, with harmless values for the other parameters.
fn path_of(entry: &Entry, app_id: &str) -> String {
    entry
        .pattern
        .split('/')
        .map(|s| match s {
            ":id" => app_id,
            ":provider" => "openai",
            ":operation" => "chat_edit",
            ":name" => "nope",
            ":n" => "1",
            // No such project or ticket: the handler's own 404 (not the app's).
            ":project" => "prj_00000000000000000000000000000000",
            ":ticket" => "tkt_00000000000000000000000000000000",
            "*path" => "src/App.tsx",
            s if s.starts_with(':') || s.starts_with('*') => panic!("{entry:?}: no sample {s}"),
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The body a row is sent with: one that fails validation wherever a valid one would start
/// expensive work or change what the next cells see.
fn body_of(route: &Route) -> Option<Value> {
    use Route::*;
    match route {
        Register | Login | CreateApp | AiPutKey(_) | AiTest | AgentChat(_) | CreateProject => {
            Some(json!({}))
        }
        PatchApp(_) => Some(json!({ "title": "Matrix" })),
        SandboxCreate(_) => Some(json!({ "template": "nope" })),
        Workspace(_, WorkspaceCall::WriteFiles | WorkspaceCall::Exec) => Some(json!({})),
        AiPatchModel(_) => Some(json!({ "temperature": 0.5 })),
        _ => None,
    }
}

/// Routes that end the session they are called with: each cell signs in afresh for them, so
/// the cast's own sessions live on.
fn ends_session(route: &Route) -> bool {
    matches!(route, Route::Logout)
}

/// Routes that delete the caller's account: each signed-in cell is a throwaway account of the
/// viewer's kind (an admin one at the instance's admin domain), proving itself with its password.
fn ends_account(route: &Route) -> bool {
    matches!(route, Route::DeleteAccount)
}

async fn throwaway(i: &Instance, who: Viewer) -> User {
    match who {
        Viewer::Admin => {
            let u = i
                .register_verified(&unique_email_at("matrix-admin", ADMIN_DOMAIN))
                .await;
            let token = i.fresh_token(&u.email, PASSWORD).await;
            User { token, ..u }
        }
        _ => i.user("matrix-throwaway").await,
    }
}

fn method(m: M) -> Method {
    Method::from_bytes(m.as_str().as_bytes()).unwrap()
}

struct Cast {
    owner: User,
    other: User,
    admin: User,
}

impl Cast {
    fn user(&self, who: Viewer) -> Option<&User> {
        match who {
            Viewer::Anonymous => None,
            Viewer::Owner => Some(&self.owner),
            Viewer::Other => Some(&self.other),
            Viewer::Admin => Some(&self.admin),
        }
    }
}

/// One cell: the status and (for refusals) the body.
async fn call(i: &Instance, cast: &Cast, entry: &Entry, who: Viewer, app_id: &str) -> (u16, Value) {
    let route = entry.template_route();
    let path = path_of(entry, app_id);
    let gone = match cast.user(who) {
        Some(_) if ends_account(&route) => Some(throwaway(i, who).await),
        _ => None,
    };
    let user = gone.as_ref().or(cast.user(who));
    let token = match (ends_session(&route), user) {
        (true, Some(u)) => {
            let pw = if who == Viewer::Admin {
                ADMIN_PASSWORD
            } else {
                PASSWORD
            };
            Some(i.fresh_token(&u.email, pw).await)
        }
        (_, u) => u.map(|u| u.token.clone()),
    };
    let mut req = i.req(method(entry.method), &path);
    if matches!(route, Route::AgentSocket(_)) {
        // A WebSocket handshake (the owner's is answered 101).
        req = req
            .header("Upgrade", "websocket")
            .header("Connection", "Upgrade")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("Sec-WebSocket-Version", "13");
    }
    if let Some(t) = &token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body_of(&route) {
        req = req.json(&b);
    }
    if gone.is_some() {
        req = req.json(&json!({ "password": PASSWORD }));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    // Streams (the agent's events) stay open: only refusals are read.
    let body = if matches!(status, 401 | 403 | 404) || status >= 500 {
        r.json().await.unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    (status, body)
}

fn answer_of(status: u16, body: &Value) -> Answer {
    let code = body["error"]["code"].as_str().unwrap_or("");
    match (status, code) {
        (401, "E001") => Answer::Unauthorized,
        (403, "E001") => Answer::Forbidden,
        (404, "E002") if body["error"]["message"] == "app not found" => Answer::Hidden,
        _ => Answer::Allowed,
    }
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_table_says() {
    let i = contract_instance();
    let cast = Cast {
        owner: i.user("matrix-owner").await,
        other: i.user("matrix-other").await,
        admin: i.admin().await,
    };
    let private = i.app(&cast.owner, "Matrix private", "private").await;
    let public = i.app(&cast.owner, "Matrix public", "public").await;
    let mut wrong = Vec::new();
    let mut cells = 0;
    // The owner last: its answers may change the app (a delete).
    let viewers = [
        Viewer::Anonymous,
        Viewer::Other,
        Viewer::Admin,
        Viewer::Owner,
    ];
    for entry in TABLE {
        let route = entry.template_route();
        for is_public in [false, true] {
            let app_id = match (&route, is_public) {
                // Deleting gets apps of its own.
                (Route::DeleteApp(_), p) => {
                    i.app(
                        &cast.owner,
                        "Matrix doomed",
                        if p { "public" } else { "private" },
                    )
                    .await
                }
                (_, true) => public.clone(),
                (_, false) => private.clone(),
            };
            for who in viewers {
                let want = expected(entry.auth, route.scope(), who, is_public);
                let (status, body) = call(i, &cast, entry, who, &app_id).await;
                let got = answer_of(status, &body);
                cells += 1;
                if got != want || status >= 500 {
                    let app = if is_public { "public" } else { "private" };
                    wrong.push(format!(
                        "{entry:?} as {who:?} on a {app} app: want {want:?}, got {status} {body}"
                    ));
                }
            }
        }
    }
    assert_eq!(cells, TABLE.len() * 8);
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
