//! A client of the orchestrator hub for the integration tests and `make bench`: real WebSocket
//! connections that answer heartbeats (unless told to stay silent), plus seeding projects and
//! tickets straight into an instance's local D1 and changing a ticket through the REST API.

use crate::harness::{tempdir, Instance, User};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Stream = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Runs SQL against the instance's local D1 (wrangler dev shares the file).
pub fn seed_sql(app: &Instance, sql: &str) {
    let file = tempdir("hub-seed").join("seed.sql");
    std::fs::write(&file, sql).unwrap();
    let wrangler = std::env::var("WRANGLER")
        .unwrap_or_else(|_| format!("{}/node_modules/.bin/wrangler", env!("CARGO_MANIFEST_DIR")));
    let out = Command::new(wrangler)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["d1", "execute", "DB", "--local", "--persist-to"])
        .arg(&app.state)
        .arg("--file")
        .arg(&file)
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "seeding failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn hex_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{:016x}{:016x}", std::process::id(), n)
}

/// A seeded project with one `ready` ticket.
pub struct Seeded {
    pub project: String,
    pub ticket: String,
}

/// SQL for a project of `owner` (shared with `members`) holding one ready ticket.
pub fn project_sql(owner: &User, members: &[&User], title: &str) -> (Seeded, String) {
    let s = Seeded {
        project: hex_id("prj"),
        ticket: hex_id("tkt"),
    };
    let mut sql = format!(
        "INSERT INTO orchestration_projects (id, title, source, status, stakeholder_user_id, total_tickets) \
         VALUES ('{}', '{}', 'new', 'in_progress', '{}', 1);\n\
         INSERT INTO orchestration_tickets (id, project_id, number, title, description, type, priority, status, order_index, tags, affected_files, acceptance_criteria) \
         VALUES ('{}', '{}', 1, 'First ticket', 'Do the first thing', 'feature', 'high', 'ready', 0, '[]', '[]', '[]');\n",
        s.project,
        title.replace('\'', "''"),
        owner.id,
        s.ticket,
        s.project
    );
    for m in members {
        sql.push_str(&format!(
            "INSERT INTO orchestration_project_members (project_id, user_id) VALUES ('{}', '{}');\n",
            s.project, m.id
        ));
    }
    (s, sql)
}

/// A hub client. Heartbeats are answered with a pong as they arrive (unless `silent`), and
/// kept count of.
pub struct Client {
    ws: Stream,
    pub heartbeats: usize,
    pub silent: bool,
}

/// How a read ended.
#[derive(Debug)]
pub enum Read {
    Msg(Value),
    Closed(Option<u16>),
}

impl Client {
    /// Opens the socket (`path` may carry a query); the HTTP status when refused.
    pub async fn open_with(
        app: &Instance,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<Client, u16> {
        let addr = app.base.trim_start_matches("http://");
        let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
        for (k, v) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
            req.headers_mut().insert(name, v.parse().unwrap());
        }
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        match tokio_tungstenite::client_async(req, tcp).await {
            Ok((ws, _)) => Ok(Client {
                ws,
                heartbeats: 0,
                silent: false,
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
            Err(e) => panic!("{e}"),
        }
    }

    pub async fn open(app: &Instance) -> Client {
        Self::open_with(app, "/api/orchestrator/ws", &[])
            .await
            .expect("upgrade")
    }

    /// Opens and authenticates with `u`'s token (and `project`, if any); the `auth_success`.
    pub async fn signed_in(app: &Instance, u: &User, project: Option<&str>) -> (Client, Value) {
        let mut c = Self::open(app).await;
        let mut m = json!({"type": "authenticate", "token": u.token, "clientType": "web"});
        if let Some(p) = project {
            m["projectId"] = json!(p);
        }
        c.send(m).await;
        let ok = c.expect("auth_success").await;
        (c, ok)
    }

    pub async fn send(&mut self, m: Value) {
        self.send_text(&m.to_string()).await;
    }

    pub async fn send_text(&mut self, t: &str) {
        self.ws.send(Message::Text(t.into())).await.unwrap();
    }

    /// The next message other than a heartbeat, or the close.
    pub async fn read(&mut self) -> Read {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(r) = self.frame().await {
                return r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no message but heartbeats for 60 s"
            );
        }
    }

    /// Reads until `n` heartbeats in all have arrived (answering each); nothing else may come.
    pub async fn heartbeats_until(&mut self, n: usize) {
        while self.heartbeats < n {
            if let Some(r) = self.frame().await {
                panic!("expected only heartbeats, got {r:?}");
            }
        }
    }

    /// The next frame: `None` for a heartbeat (counted, and answered unless `silent`).
    async fn frame(&mut self) -> Option<Read> {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .expect("a message within 60 s");
            let msg = match next {
                None | Some(Err(_)) => return Some(Read::Closed(None)),
                Some(Ok(m)) => m,
            };
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "heartbeat" {
                        self.heartbeats += 1;
                        assert!(v["timestamp"].is_string(), "{v}");
                        if !self.silent {
                            self.send(json!({"type": "pong", "timestamp": v["timestamp"]}))
                                .await;
                        }
                        return None;
                    }
                    return Some(Read::Msg(v));
                }
                Message::Close(f) => return Some(Read::Closed(f.map(|f| u16::from(f.code)))),
                _ => continue,
            }
        }
    }

    /// The next message, which must be of type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        match self.read().await {
            Read::Msg(v) if v["type"] == kind => v,
            other => panic!("expected {kind}, got {other:?}"),
        }
    }

    /// The next message must be an error with `code` (and whether it is recoverable).
    pub async fn expect_error(&mut self, code: &str, recoverable: bool) -> Value {
        let v = self.expect("error").await;
        assert_eq!(
            (v["error"].as_str(), v["recoverable"].as_bool()),
            (Some(code), Some(recoverable)),
            "{v}"
        );
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        v
    }

    /// The socket must close (after any messages), with `code`.
    pub async fn expect_close(&mut self, code: u16) {
        loop {
            match self.read().await {
                Read::Closed(c) => {
                    assert_eq!(c, Some(code));
                    return;
                }
                Read::Msg(_) => continue,
            }
        }
    }

    /// Asserts nothing but heartbeats arrived before now: a `ping` is answered by the next
    /// message (the hub answers in order, and every event published before the ping was sent
    /// is already on the socket).
    pub async fn expect_nothing_pending(&mut self) {
        self.send(json!({"type": "ping"})).await;
        let v = self.expect("pong").await;
        assert!(v["timestamp"].is_string());
    }

    /// Closes the socket from this side.
    pub async fn close(&mut self) {
        let _ = self.ws.close(None).await;
    }

    pub async fn subscribe(&mut self, project: &str) {
        self.send(json!({"type": "subscribe", "projectId": project}))
            .await;
        let v = self.expect("subscribed").await;
        assert_eq!(v["projectId"], project);
    }
}

/// Changes the ticket's title through the REST API, as `u`.
pub async fn patch_title(app: &Instance, u: &User, ticket: &str, title: &str) -> Value {
    let r = app
        .req(
            Method::PATCH,
            &format!("/api/orchestrator/tickets/{ticket}"),
        )
        .bearer_auth(&u.token)
        .json(&json!({ "title": title }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "PATCH ticket");
    r.json().await.unwrap()
}
