//! `OrchestratorWebSocket`: the orchestrator hub's objects, a shell around
//! [`crate::domain::orchestrator::hub`] (policy) and [`crate::domain::orchestrator::hub_call`]
//! (sharding). One class, two roles told apart by name and call:
//! - a **shard** (`shard:<k>`) holds client sockets with the hibernation API: each socket is
//!   tagged with its connection id and carries its [`Conn`] record as its attachment, so a woken
//!   object rebuilds its [`Hub`] from its sockets alone; the alarm runs the deadlines and
//!   heartbeats ([`Hub::tick`]);
//! - a project's **directory** (`project:<id>`, [`super::orchestrator_directory`]) lists the
//!   shards with subscribers of the project and forwards its events to them.
//!
//! Invariant: the hub (a `RefCell`) is never borrowed across an `await`: a message is decided,
//! its check runs with nothing borrowed, and its outcome is settled in a second borrow.

use crate::domain::orchestrator::hub::{
    timestamp, Check, Conn, Effects, Hub, HubPorts, Presence, Step, Who,
};
use crate::domain::orchestrator::hub_call::{
    directory_name, Delivered, HubCall, BINDING, CALL_HEADER,
};
use crate::domain::orchestrator::protocol::HubMessage;
use crate::domain::{ids::ProjectId, ids::UserId, random};
use crate::http::{header, App};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
    WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

#[durable_object]
pub struct OrchestratorWebSocket {
    pub(super) state: State,
    pub(super) env: Env,
    /// The shard's connections (`None` until first used after the object started or woke).
    hub: RefCell<Option<Hub>>,
    /// The sockets by connection id (rebuilt with the hub).
    sockets: RefCell<HashMap<String, WebSocket>>,
    /// This shard's number (from its connections' records).
    shard: Cell<Option<u32>>,
    /// The alarm as last set or read (`None` inside: none); unknown after a wake.
    alarm_at: Cell<Option<Option<i64>>>,
    /// The directory role's state ([`super::orchestrator_directory`]).
    pub(super) directory: RefCell<Option<crate::domain::orchestrator::hub::Directory>>,
}

fn now() -> i64 {
    js_sys::Date::now() as i64
}

/// Sends a hub call to the object `name` (a POST with the call as its body).
pub(super) async fn call(env: &Env, name: &str, c: &HubCall) -> Result<Response> {
    let headers = worker::Headers::new();
    headers.set("Content-Type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(c.to_json().into()));
    let req = Request::new_with_init("https://orchestrator-hub/", &init)?;
    super::stub(env, BINDING, name)?
        .fetch_with_request(req)
        .await
}

/// What a shard's checks need: the Worker's token keys, sessions, D1 and the directories.
struct Ports<'a> {
    env: &'a Env,
    shard: u32,
}

impl HubPorts for Ports<'_> {
    async fn verify(&self, token: &str) -> std::result::Result<Who, String> {
        let app = App::new(self.env.clone()).map_err(|_| "the service is misconfigured")?;
        let s = app
            .keys
            .verify(token, now())
            .map_err(|e| e.message.clone())?;
        let (kv, db) = match (app.kv(), app.db()) {
            (Ok(kv), Ok(db)) => (kv, db),
            _ => return Err("the session could not be checked".into()),
        };
        let who = Who {
            user: s.claims.user_id,
            session: s.claims.sid,
            expires_s: s.expires_at,
        };
        match crate::services::sessions::is_live(&kv, &db, &who.session, &who.user).await {
            Ok(true) => Ok(who),
            Ok(false) => Err("invalid authentication token: session revoked".into()),
            Err(_) => Err("the session could not be checked; try again".into()),
        }
    }

    async fn session_live(&self, who: &Who) -> std::result::Result<bool, ()> {
        let app = App::new(self.env.clone()).map_err(|_| ())?;
        let (kv, db) = (app.kv().map_err(|_| ())?, app.db().map_err(|_| ())?);
        crate::services::sessions::is_live(&kv, &db, &who.session, &who.user)
            .await
            .map_err(|_| ())
    }

    async fn can_view(&self, user: &UserId, p: &ProjectId) -> std::result::Result<bool, ()> {
        let db = self.env.d1(crate::http::DB_BINDING).map_err(|_| ())?;
        crate::services::orchestrator_access::can_view(&db, user, p)
            .await
            .map_err(|_| ())
    }

    async fn presence(&self, change: &Presence) -> std::result::Result<(), ()> {
        send_presence(self.env, self.shard, change).await
    }
}

async fn send_presence(env: &Env, shard: u32, p: &Presence) -> std::result::Result<(), ()> {
    let c = HubCall::Presence {
        project: p.project.clone(),
        shard,
        present: p.present,
        version: p.version,
    };
    match call(env, &directory_name(&p.project), &c).await {
        Ok(r) if r.status_code() == 200 => Ok(()),
        Ok(r) => {
            worker::console_error!("hub: directory answered {}", r.status_code());
            Err(())
        }
        Err(e) => {
            worker::console_error!("hub: directory unreachable: {e}");
            Err(())
        }
    }
}

impl OrchestratorWebSocket {
    /// Runs `f` on the hub, loading it from the sockets' records first if needed.
    fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> R {
        let mut slot = self.hub.borrow_mut();
        let hub = slot.get_or_insert_with(|| {
            let timing = crate::http::config(&self.env)
                .map(|c| c.hub.timing)
                .unwrap_or_default();
            let mut hub = Hub::new(timing);
            let mut sockets = self.sockets.borrow_mut();
            let mut conns = Vec::new();
            for ws in self.state.get_websockets() {
                if let Ok(Some(c)) = ws.deserialize_attachment::<Conn>() {
                    self.shard.set(Some(c.shard));
                    sockets.insert(c.id.clone(), ws);
                    conns.push(c);
                }
            }
            hub.load(conns);
            hub
        });
        f(hub)
    }

    /// Makes sure the alarm fires by the hub's next deadline.
    async fn schedule(&self) {
        let Some(due) = self.with_hub(|h| h.next_due(now())) else {
            return;
        };
        let storage = self.state.storage();
        let current = match self.alarm_at.get() {
            Some(a) => a,
            None => storage.get_alarm().await.ok().flatten(),
        };
        if current.is_some_and(|a| a <= due) {
            self.alarm_at.set(Some(current));
            return;
        }
        match super::set_alarm_at(&storage, due).await {
            Ok(()) => self.alarm_at.set(Some(Some(due))),
            Err(e) => worker::console_error!("hub: could not set the alarm: {e}"),
        }
    }

    async fn presences(&self, changes: &[Presence]) {
        let Some(shard) = self.shard.get() else {
            return;
        };
        for p in changes {
            let _ = send_presence(&self.env, shard, p).await;
        }
    }

    fn socket(&self, id: &str) -> Option<WebSocket> {
        self.sockets.borrow().get(id).cloned()
    }

    /// Carries out what the hub decided for connection `id`.
    async fn apply(&self, id: &str, e: Effects) {
        if let Some(ws) = self.socket(id) {
            for m in &e.send {
                let _ = ws.send_with_str(to_json(m));
            }
            if let Some(conn) = &e.save {
                if let Err(err) = ws.serialize_attachment(conn) {
                    worker::console_error!("hub: could not store a connection: {err}");
                }
            }
            if let Some((code, reason)) = &e.close {
                let _ = ws.close(Some(*code), Some(reason.as_str()));
                self.sockets.borrow_mut().remove(id);
            }
        }
        self.presences(&e.presence).await;
        self.schedule().await;
    }

    /// A client message, then whatever of the connection's waited behind it.
    async fn message(&self, id: &str, text: &str) {
        let mut step = self.with_hub(|h| h.receive(id, text, now()));
        loop {
            let effects = match step {
                Step::Queued => return,
                Step::Done(e) => e,
                Step::Check(check) => {
                    let shard = self.shard.get().unwrap_or_default();
                    let ports = Ports {
                        env: &self.env,
                        shard,
                    };
                    let outcome = Check::run(check, &ports).await;
                    self.with_hub(|h| h.settle(outcome, now()))
                }
            };
            self.apply(id, effects).await;
            match self.with_hub(|h| h.next_queued(id)) {
                Some(next) => step = self.with_hub(|h| h.process(id, &next, now())),
                None => return,
            }
        }
    }

    /// The client's upgrade: a new, unauthenticated connection.
    async fn open(&self, req: &Request, shard: u32, cookie: Option<Who>) -> Result<Response> {
        if !header(req, "Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            return Response::error("a WebSocket upgrade is expected", 426);
        }
        let id = random::id("conn");
        let conn = self.with_hub(|h| h.open(&id, shard, cookie, now()));
        self.shard.set(Some(shard));
        let pair = WebSocketPair::new()?;
        self.state.accept_websocket_with_tags(&pair.server, &[&id]);
        pair.server.serialize_attachment(&conn)?;
        self.sockets.borrow_mut().insert(id, pair.server);
        self.schedule().await;
        Response::from_websocket(pair.client)
    }

    /// An event for this shard's subscribers of `project`.
    fn deliver(&self, project: &ProjectId, messages: &[String]) -> Result<Response> {
        let (ids, present, version) = self.with_hub(|h| {
            let (ids, present, version) = h.deliver(project, now());
            let ids: Vec<String> = ids.into_iter().map(str::to_string).collect();
            (ids, present, version)
        });
        let sockets = self.sockets.borrow();
        let mut sent = 0;
        for id in &ids {
            if let Some(ws) = sockets.get(id) {
                if messages.iter().all(|m| ws.send_with_str(m).is_ok()) {
                    sent += 1;
                }
            }
        }
        Response::from_json(&Delivered {
            sockets: sent,
            present,
            version,
        })
    }

    fn gone(&self, ws: &WebSocket) -> Vec<Presence> {
        let Ok(Some(c)) = ws.deserialize_attachment::<Conn>() else {
            return Vec::new();
        };
        let gone = self.with_hub(|h| h.closed(&c.id, now()));
        self.sockets.borrow_mut().remove(&c.id);
        gone
    }
}

fn to_json(m: &HubMessage) -> String {
    serde_json::to_string(m).expect("hub messages serialize")
}

impl DurableObject for OrchestratorWebSocket {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            hub: RefCell::new(None),
            sockets: RefCell::new(HashMap::new()),
            shard: Cell::new(None),
            alarm_at: Cell::new(None),
            directory: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let raw = match header(&req, CALL_HEADER) {
            Some(h) => h.into_bytes(),
            None => req.bytes().await?,
        };
        let call = match HubCall::parse(&raw) {
            Ok(c) => c,
            Err(e) => return Response::error(e, 400),
        };
        match call {
            HubCall::Open { shard, cookie } => self.open(&req, shard, cookie).await,
            HubCall::Deliver { project, messages } => self.deliver(&project, &messages),
            HubCall::Presence {
                shard,
                present,
                version,
                ..
            } => self.presence(shard, present, version),
            HubCall::Publish { project, messages } => self.publish(&project, messages).await,
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(Some(None));
        let t = self.with_hub(|h| h.tick(now()));
        if !t.heartbeat.is_empty() {
            let beat = to_json(&HubMessage::Heartbeat {
                timestamp: timestamp(now()),
            });
            let sockets = self.sockets.borrow();
            for id in &t.heartbeat {
                if let Some(ws) = sockets.get(id) {
                    let _ = ws.send_with_str(&beat);
                }
            }
        }
        for (id, err, code, reason) in &t.close {
            if let Some(ws) = self.sockets.borrow_mut().remove(id) {
                let _ = ws.send_with_str(to_json(err));
                let _ = ws.close(Some(*code), Some(reason.as_str()));
            }
        }
        self.presences(&t.presence).await;
        self.schedule().await;
        Response::ok("ticked")
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        // Loads the hub (and so this socket's entry) if the object just woke.
        self.with_hub(|_| ());
        let Ok(Some(conn)) = ws.deserialize_attachment::<Conn>() else {
            let _ = ws.close(Some(1011), Some("lost its connection record"));
            return Ok(());
        };
        let text = match message {
            WebSocketIncomingMessage::String(t) => t,
            // Binary frames are read as text: JSON in one is accepted, anything else refused.
            WebSocketIncomingMessage::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        };
        self.message(&conn.id, &text).await;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        let gone = self.gone(&ws);
        let code = if (1000..5000).contains(&code) && code != 1005 && code != 1006 {
            code as u16
        } else {
            1000
        };
        let _ = ws.close(Some(code), Some("closed"));
        self.presences(&gone).await;
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        let gone = self.gone(&ws);
        self.presences(&gone).await;
        Ok(())
    }
}
