//! `CodeGeneratorAgent`: one object per app. It turns a prompt into an app: a blueprint from the
//! model, the app's sandbox brought up, then each phase streamed from the model, parsed as it
//! arrives, and every finished file written to the sandbox the moment its block closes; after
//! each phase the sandbox's errors go back to the model for bounded correction rounds. Follow-up
//! chat messages edit the app (diffs against the current files), queued while work runs.
//!
//! The work runs in the object's alarm handler, never inside a client's request: a request (or a
//! WebSocket command) changes the persisted run state and arms the alarm; the alarm's driver
//! does whatever [`RunState::next_work`] says until nothing is left. Progress is saved after
//! every file, and a heartbeat keeps an alarm armed while the driver works, so an object that is
//! evicted or a `wrangler dev` that is restarted mid-generation picks the run up where it was
//! (the interrupted unit is streamed again; blocks it had applied are skipped).
//!
//! Clients subscribe: `POST /chat` and `GET /events` answer with Server-Sent Events, and
//! WebSockets (hibernation API) carry the same events plus the client's commands. Every client
//! gets a `state` event first, then the stored events after the id it names, then live ones.
//! Events except live `file_chunk`s and `state`s are stored in the `events` table (their `seq`
//! is the SSE id).
//!
//! Storage: `run` (the state, one JSON row), `events`, `files` (the app's current files: the
//! edit context and what a fresh sandbox is restored from), `blobs` (contents already in R2).
//! Each completed phase or edit is a version: new contents go to R2 under
//! `apps/<app>/blobs/<sha256>` and a manifest under `apps/<app>/versions/<n>.json`; D1
//! `apps.files` / `apps.container_state` mirror the file list and the state.

use crate::domain::codegen::blueprint::{parse_blueprint, Blueprint, PhaseInput, PhaseStatus};
use crate::domain::codegen::events::{
    parse_command, parse_start_chat, AgentEvent, ClientCommand, RunOutcome, RunStatus,
    StateSnapshot,
};
use crate::domain::codegen::files_format::{Event as FileEvent, Parser};
use crate::domain::codegen::models::{ChatMessage, ModelOverride, Operation};
use crate::domain::codegen::phase_plan::{parse_phase_detail, PhaseDetail};
use crate::domain::codegen::prompts::{self, Diagnostic, FileContext, TemplateInfo};
use crate::domain::codegen::run::{
    blob_key, step, version_key, ResumeFilter, RunState, Step, Work,
};
use crate::domain::codegen::sse;
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::sandbox::{Command, State as SandboxState, Status as SandboxStatus};
use crate::domain::templates;
use crate::http::App;
use crate::services::llm::{generation_failed, Call, Cancel, Llm};
use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, SqlStorage,
    SqlStorageValue, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

pub const BINDING: &str = "CODEGEN";
/// How long a generation waits for its sandbox to become ready.
const SANDBOX_READY_TIMEOUT_MS: i64 = 240_000;
/// How long the type check after a phase may run.
const TYPECHECK_TIMEOUT_MS: u64 = 120_000;
/// While the driver works, an alarm stays armed this far ahead: if the object dies, the alarm
/// resumes the run.
const HEARTBEAT_MS: i64 = 15_000;
/// Files restored into a fresh sandbox per request, by size.
const RESTORE_BATCH_BYTES: usize = 512 * 1024;
/// Stored events kept for replay (older ones are pruned when a run ends; a client that missed
/// more than this starts from the `state` snapshot).
const KEPT_EVENTS: i64 = 5_000;
/// Phase name of follow-up edits in events.
const EDIT_PHASE: &str = "edit";

type Frame = std::result::Result<Vec<u8>, worker::Error>;

#[durable_object]
pub struct CodeGeneratorAgent {
    state: State,
    env: Env,
    /// Whether a driver works in this isolate.
    running: Cell<bool>,
    /// The driver's stop flag (its model calls check it between chunks).
    cancel: RefCell<Cancel>,
    /// SSE clients: every event until the run ends.
    streams: RefCell<Vec<UnboundedSender<Frame>>>,
    /// The run state (loaded once; every change is saved at once).
    run: RefCell<Option<RunState>>,
    /// The app's current files (loaded from `files` on first use).
    contents: RefCell<Option<BTreeMap<String, String>>>,
    ready: Cell<bool>,
    beat: Cell<i64>,
}

fn now() -> i64 {
    js_sys::Date::now() as i64
}

fn header(req: &Request, k: &str) -> Option<String> {
    req.headers().get(k).ok().flatten()
}

/// How a unit of work's model stream ended.
enum StreamEnd {
    Whole,
    /// `stop` was asked for.
    Stopped,
    /// Reported as an `error` event already.
    Failed,
}

/// How a step of the driver ended.
enum Flow {
    Continue,
    Stopped,
    Failed,
}

/// The unit whose phase status a correction loop drives.
#[derive(Clone, Copy)]
enum Unit {
    Phase(usize),
    Edit,
}

/// What a WebSocket carries across hibernation.
#[derive(Serialize, Deserialize)]
struct Socket {
    user_id: String,
    /// The session it was opened with (a command on a revoked session closes it).
    #[serde(default)]
    sid: String,
    /// When the token it was opened with expires (epoch seconds).
    exp: i64,
    origin: String,
}

/// The parameters the route passes on every call (ownership was checked there).
struct Requester {
    app_id: String,
    user_id: String,
    origin: String,
}

impl Requester {
    /// Records who the run works for and where (an alarm resumes it without a request).
    fn bind(&self, s: &mut RunState) {
        s.app_id = self.app_id.clone();
        s.user_id = self.user_id.clone();
        s.origin = Some(self.origin.clone());
    }

    fn from(req: &Request) -> Option<Self> {
        Some(Self {
            app_id: header(req, "X-App-Id")?,
            user_id: header(req, "X-User-Id")?,
            origin: header(req, "X-Origin")?,
        })
    }
}

impl CodeGeneratorAgent {
    // ----- storage -----------------------------------------------------------------------

    fn sql(&self) -> SqlStorage {
        let sql = self.state.storage().sql();
        if !self.ready.get() {
            for ddl in [
                "CREATE TABLE IF NOT EXISTS run (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, content TEXT NOT NULL, hash TEXT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS blobs (hash TEXT PRIMARY KEY)",
            ] {
                if let Err(e) = sql.exec(ddl, None) {
                    worker::console_error!("codegen: schema: {e}");
                }
            }
            self.ready.set(true);
        }
        sql
    }

    fn loaded(&self) {
        if self.run.borrow().is_some() {
            return;
        }
        #[derive(Deserialize)]
        struct Row {
            state: String,
        }
        let st = self
            .sql()
            .exec("SELECT state FROM run WHERE id = 1", None)
            .and_then(|c| c.to_array::<Row>())
            .ok()
            .and_then(|rows| {
                rows.first()
                    .and_then(|r| serde_json::from_str(&r.state).ok())
            })
            .unwrap_or_default();
        *self.run.borrow_mut() = Some(st);
    }

    fn read<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        self.loaded();
        f(self.run.borrow().as_ref().expect("loaded"))
    }

    /// Changes the run state and saves it.
    fn update<R>(&self, f: impl FnOnce(&mut RunState) -> R) -> R {
        self.loaded();
        let (r, text) = {
            let mut b = self.run.borrow_mut();
            let st = b.as_mut().expect("loaded");
            let r = f(st);
            (r, serde_json::to_string(&*st).unwrap_or_default())
        };
        if let Err(e) = self.sql().exec(
            "INSERT INTO run (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state",
            vec![SqlStorageValue::String(text)],
        ) {
            worker::console_error!("codegen: saving run state failed: {e}");
        }
        r
    }

    fn last_seq(&self) -> u64 {
        #[derive(Deserialize)]
        struct Row {
            seq: Option<f64>,
        }
        self.sql()
            .exec("SELECT MAX(seq) AS seq FROM events", None)
            .and_then(|c| c.to_array::<Row>())
            .ok()
            .and_then(|r| r.first().and_then(|r| r.seq))
            .unwrap_or(0.0) as u64
    }

    fn contents(&self) -> std::cell::RefMut<'_, BTreeMap<String, String>> {
        if self.contents.borrow().is_none() {
            #[derive(Deserialize)]
            struct Row {
                path: String,
                content: String,
            }
            let rows: Vec<Row> = self
                .sql()
                .exec("SELECT path, content FROM files", None)
                .and_then(|c| c.to_array())
                .unwrap_or_default();
            *self.contents.borrow_mut() =
                Some(rows.into_iter().map(|r| (r.path, r.content)).collect());
        }
        std::cell::RefMut::map(self.contents.borrow_mut(), |c| c.as_mut().expect("loaded"))
    }

    /// Stores a file's content (`Some((content, hash))`) or its deletion (`None`).
    fn store_file(&self, path: &str, content: Option<(&str, &str)>) {
        let sql = self.sql();
        let r = match content {
            Some((c, hash)) => sql.exec(
                "INSERT INTO files (path, content, hash) VALUES (?, ?, ?) ON CONFLICT (path) DO UPDATE SET content = excluded.content, hash = excluded.hash",
                vec![
                    SqlStorageValue::String(path.into()),
                    SqlStorageValue::String(c.into()),
                    SqlStorageValue::String(hash.into()),
                ],
            ),
            None => sql.exec("DELETE FROM files WHERE path = ?", vec![SqlStorageValue::String(path.into())]),
        };
        if let Err(e) = r {
            worker::console_error!("codegen: storing {path} failed: {e}");
        }
        let mut c = self.contents();
        match content {
            Some((text, _)) => c.insert(path.to_string(), text.to_string()),
            None => c.remove(path),
        };
    }

    // ----- clients -----------------------------------------------------------------------

    /// What a (re)connecting client draws first.
    fn snapshot(&self) -> StateSnapshot {
        let last = self.last_seq();
        self.read(|s| s.snapshot(&s.app_id, last))
    }

    fn state_event(&self) -> AgentEvent {
        AgentEvent::State(self.snapshot())
    }

    /// Stored events after `since`, as `(seq, event JSON)`.
    fn events_after(&self, since: u64, limit: u32) -> Vec<(u64, String)> {
        #[derive(Deserialize)]
        struct Row {
            seq: f64,
            json: String,
        }
        self.sql()
            .exec(
                "SELECT seq, json FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![
                    SqlStorageValue::Integer(since.min(i64::MAX as u64) as i64),
                    SqlStorageValue::Integer(limit as i64),
                ],
            )
            .and_then(|c| c.to_array::<Row>())
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.seq as u64, r.json))
            .collect()
    }

    /// Stores the event (except live chunks and states) and sends it to every client.
    fn emit(&self, ev: AgentEvent) {
        let live = matches!(ev, AgentEvent::FileChunk { .. } | AgentEvent::State(_));
        let json = ev.to_json();
        let seq = if live {
            None
        } else {
            #[derive(Deserialize)]
            struct Row {
                seq: f64,
            }
            self.sql()
                .exec(
                    "INSERT INTO events (json) VALUES (?) RETURNING seq",
                    vec![SqlStorageValue::String(json.clone())],
                )
                .and_then(|c| c.to_array::<Row>())
                .ok()
                .and_then(|r| r.first().map(|r| r.seq as u64))
        };
        let sse = match seq {
            Some(id) => ev.to_sse_with_id(id),
            None => ev.to_sse(),
        };
        self.streams
            .borrow_mut()
            .retain(|tx| tx.unbounded_send(Ok(sse.clone().into_bytes())).is_ok());
        let text = ws_text(&json, seq);
        for ws in self.state.get_websockets() {
            let _ = ws.send_with_str(&text);
        }
    }

    fn error(&self, e: &ApiError, recoverable: bool) {
        self.emit(AgentEvent::from_error(e, recoverable));
    }

    /// Ends every SSE stream (the run is over).
    fn close_streams(&self) {
        self.streams.borrow_mut().clear();
    }

    /// An SSE response: the state, the stored events after `since`, then (while the run is
    /// active) live events.
    fn subscribe(&self, since: Option<u64>) -> Result<Response> {
        let (tx, rx) = unbounded::<Frame>();
        let send = |s: String| {
            let _ = tx.unbounded_send(Ok(s.into_bytes()));
        };
        send(self.state_event().to_sse());
        if let Some(since) = since {
            for (seq, json) in self.events_after(since, 10_000) {
                if let Some(kind) = event_type(&json) {
                    send(sse::encode_event_with_id(seq, &kind, &json));
                }
            }
        }
        if self.read(RunState::is_active) {
            self.streams.borrow_mut().push(tx);
        }
        let headers = worker::Headers::new();
        headers.set("Content-Type", "text/event-stream; charset=utf-8")?;
        headers.set("Cache-Control", "no-cache")?;
        Ok(Response::from_stream(rx)?.with_headers(headers))
    }

    // ----- scheduling --------------------------------------------------------------------

    async fn arm(&self, at: i64) {
        if let Err(e) = super::set_alarm_at(&self.state.storage(), at).await {
            worker::console_error!("codegen: arming the alarm failed: {e}");
        }
    }

    /// Keeps an alarm armed a little ahead while the driver works (at most one write per few
    /// seconds).
    async fn heartbeat(&self) {
        let t = now();
        if t - self.beat.get() > HEARTBEAT_MS / 3 {
            self.beat.set(t);
            self.arm(t + HEARTBEAT_MS).await;
        }
    }

    /// Makes sure a driver will pick the work up: this isolate's if one runs, else the alarm's.
    async fn kick(&self) {
        if !self.running.get() {
            self.arm(now()).await;
        }
    }

    // ----- commands (from requests and WebSockets) ---------------------------------------

    fn begin(&self, c: &Requester, prompt: &str, config: Option<ModelOverride>) {
        self.update(|s| {
            s.start(prompt);
            c.bind(s);
            s.config = config;
        });
    }

    /// A chat message: a new app is planned from it; an existing app is edited (queued behind
    /// the work in progress). `Err`: the queue is full.
    fn chat_message(
        &self,
        c: &Requester,
        text: &str,
        config: Option<ModelOverride>,
    ) -> std::result::Result<(), ApiError> {
        let (active, has_app) = self.read(|s| (s.is_active(), s.has_app()));
        if !active && !has_app {
            self.begin(c, text, config);
            return Ok(());
        }
        self.update(|s| {
            c.bind(s);
            if !s.is_active() {
                s.config = config;
            }
            s.enqueue(text)
        })
        .map_err(|m| ApiError::new(429, ErrorCode::E003, m))?;
        if active {
            // Clients see the queue grow.
            self.emit(self.state_event());
        }
        Ok(())
    }

    async fn stop(&self) -> std::result::Result<(), String> {
        if !self.update(RunState::stop) {
            return Err("nothing to stop: no generation is running".into());
        }
        if self.running.get() {
            // The driver ends its stream and reports `done`.
            self.cancel.borrow().cancel();
        } else {
            self.emit(AgentEvent::Done {
                status: RunOutcome::Stopped,
            });
            self.close_streams();
        }
        Ok(())
    }

    async fn resume(&self, c: &Requester) -> std::result::Result<(), String> {
        self.update(|s| {
            s.resume()?;
            c.bind(s);
            Ok::<(), String>(())
        })?;
        self.kick().await;
        Ok(())
    }

    // ----- HTTP from the route -----------------------------------------------------------

    async fn chat(&self, mut req: Request) -> Result<Response> {
        let Some(c) = Requester::from(&req) else {
            return Response::error("missing run parameters", 400);
        };
        let body = req.bytes().await?;
        let start = match parse_start_chat(&body) {
            Ok(s) => s,
            Err(e) => return Ok(crate::http::error_response(&e)),
        };
        if let Err(e) = self.chat_message(&c, &start.message, start.config) {
            return Ok(crate::http::error_response(&e));
        }
        let resp = self.subscribe(None);
        self.kick().await;
        resp
    }

    fn since(req: &Request) -> Option<u64> {
        let q = req
            .url()
            .ok()?
            .query_pairs()
            .find(|(k, _)| k == "since")
            .and_then(|(_, v)| v.parse().ok());
        q.or_else(|| header(req, "Last-Event-ID").and_then(|v| v.trim().parse().ok()))
    }

    fn state_since(&self, req: &Request) -> Result<Response> {
        let since = Self::since(req).unwrap_or(0);
        let events: Vec<serde_json::Value> = self
            .events_after(since, 1000)
            .into_iter()
            .map(|(seq, j)| {
                let mut v: serde_json::Value = serde_json::from_str(&j).unwrap_or_default();
                v["id"] = json!(seq);
                v
            })
            .collect();
        let mut snap = serde_json::to_value(self.snapshot())?;
        if let Some(id) = header(req, "X-App-Id") {
            snap["appId"] = json!(id);
        }
        Response::from_json(
            &json!({ "state": snap, "events": events, "running": self.running.get() }),
        )
    }

    async fn open_socket(&self, req: &Request) -> Result<Response> {
        let (Some(c), Some(exp), Some(sid)) = (
            Requester::from(req),
            header(req, "X-Token-Exp").and_then(|v| v.parse::<i64>().ok()),
            header(req, "X-Session-Id"),
        ) else {
            return Response::error("missing socket parameters", 400);
        };
        let pair = WebSocketPair::new()?;
        let server = pair.server;
        self.state.accept_web_socket(&server);
        server.serialize_attachment(Socket {
            user_id: c.user_id.clone(),
            sid,
            exp,
            origin: c.origin.clone(),
        })?;
        if self.read(|s| s.app_id.is_empty()) {
            self.update(|s| s.app_id = c.app_id.clone());
        }
        // The state first, then what the client missed, then (through `emit`) live events.
        server.send_with_str(self.state_event().to_json())?;
        if let Some(since) = Self::since(req) {
            for (seq, json) in self.events_after(since, 10_000) {
                server.send_with_str(ws_text(&json, Some(seq)))?;
            }
        }
        if self.read(RunState::is_active) {
            self.kick().await;
        }
        Response::from_websocket(pair.client)
    }

    /// Whether the socket's session was not signed out; `None` when that cannot be checked.
    async fn session_live(&self, socket: &Socket) -> Option<bool> {
        let app = App::new(self.env.clone()).ok()?;
        let (kv, db) = (app.kv().ok()?, app.db().ok()?);
        crate::services::sessions::is_live(&kv, &db, &socket.sid, &socket.user_id)
            .await
            .ok()
    }

    async fn command(&self, ws: &WebSocket, text: &str) {
        let reply = |ev: AgentEvent| {
            let _ = ws.send_with_str(ev.to_json());
        };
        let refuse = |code: ErrorCode, m: String| {
            reply(AgentEvent::Error {
                code,
                message: m,
                recoverable: true,
            })
        };
        let socket: Option<Socket> = ws.deserialize_attachment().ok().flatten();
        let Some(socket) = socket else {
            let _ = ws.close(Some(1011), Some("lost its session"));
            return;
        };
        let live = if now() / 1000 < socket.exp {
            self.session_live(&socket).await
        } else {
            Some(false)
        };
        let Some(live) = live else {
            return refuse(
                ErrorCode::E000,
                "the session could not be checked; try again".into(),
            );
        };
        if !live {
            refuse(
                ErrorCode::E001,
                "the session expired or was signed out; sign in again".into(),
            );
            let _ = ws.close(Some(4001), Some("session ended"));
            return;
        }
        let cmd = match parse_command(text) {
            Ok(c) => c,
            Err(e) => return reply(AgentEvent::from_error(&e, true)),
        };
        let c = Requester {
            app_id: self.read(|s| s.app_id.clone()),
            user_id: socket.user_id,
            origin: socket.origin,
        };
        match cmd {
            ClientCommand::Generate { prompt, config } => {
                if self.read(RunState::is_active) {
                    return refuse(
                        ErrorCode::E005,
                        "a generation is already running; stop it first".into(),
                    );
                }
                let Some(prompt) = prompt.or_else(|| self.read(|s| s.prompt.clone())) else {
                    return refuse(
                        ErrorCode::E004,
                        "prompt is required: this app has no earlier prompt".into(),
                    );
                };
                self.begin(&c, &prompt, config);
                self.emit(self.state_event());
                self.kick().await;
            }
            ClientCommand::Message { text } => match self.chat_message(&c, &text, None) {
                Ok(()) => self.kick().await,
                Err(e) => reply(AgentEvent::from_error(&e, true)),
            },
            ClientCommand::Stop => {
                if let Err(m) = self.stop().await {
                    refuse(ErrorCode::E004, m);
                }
            }
            ClientCommand::Resume => match self.resume(&c).await {
                Ok(()) => self.emit(self.state_event()),
                Err(m) => refuse(ErrorCode::E004, m),
            },
            ClientCommand::Preview => {
                let Some(template) =
                    self.read(|s| s.blueprint.as_ref().map(|b| b.template.clone()))
                else {
                    return refuse(
                        ErrorCode::E004,
                        "nothing to preview yet: generate the app first".into(),
                    );
                };
                let app = match App::new(self.env.clone()) {
                    Ok(a) => a,
                    Err(e) => return refuse(ErrorCode::E000, format!("misconfigured: {e}")),
                };
                let w = Worker::new(self, app, Cancel::default());
                match w.ensure_sandbox(&template).await {
                    Ok(()) => match w.preview_url() {
                        Some(url) => reply(AgentEvent::PreviewReady { url }),
                        None => refuse(ErrorCode::E000, "no preview address".into()),
                    },
                    Err(e) => reply(AgentEvent::from_error(&e, true)),
                }
            }
        }
    }

    // ----- the driver --------------------------------------------------------------------

    /// Works until nothing is left (or the run stops or fails). Runs in the alarm handler.
    async fn drive(&self) {
        if self.running.get() || !self.read(RunState::is_active) {
            return;
        }
        let app = match App::new(self.env.clone()) {
            Ok(a) => a,
            Err(e) => {
                worker::console_error!("codegen: misconfigured: {e}");
                return;
            }
        };
        self.running.set(true);
        let cancel = Cancel::default();
        *self.cancel.borrow_mut() = cancel.clone();
        self.beat.set(0);
        let w = Worker::new(self, app, cancel);
        w.run().await;
        self.running.set(false);
        if self.read(RunState::is_active) {
            // Work arrived while the run was finishing.
            self.arm(now()).await;
        } else {
            self.close_streams();
            if let Err(e) = self.sql().exec(
                "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?",
                vec![SqlStorageValue::Integer(KEPT_EVENTS)],
            ) {
                worker::console_error!("codegen: pruning events failed: {e}");
            }
            let _ = self.state.storage().delete_alarm().await;
        }
    }
}

/// The `type` of a stored event's JSON (its SSE event name).
fn event_type(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Kind>(json).ok().map(|k| k.kind)
}

/// A WebSocket frame: the event's JSON (always an object), with its stored id when it has one.
fn ws_text(json: &str, seq: Option<u64>) -> String {
    match (seq, json.strip_prefix('{')) {
        (Some(id), Some(rest)) => format!("{{\"id\":{id},{rest}"),
        _ => json.to_string(),
    }
}

/// The driver of one run: the agent, the configuration, the stop flag.
struct Worker<'a> {
    agent: &'a CodeGeneratorAgent,
    app: App,
    cancel: Cancel,
    /// `package.json` changed since dependencies were last installed.
    deps_changed: Cell<bool>,
}

impl<'a> Worker<'a> {
    fn new(agent: &'a CodeGeneratorAgent, app: App, cancel: Cancel) -> Self {
        // A run picked up after an interruption may have written package.json unseen.
        let deps_changed = Cell::new(agent.read(|s| s.attempt.contains_key("package.json")));
        Self {
            agent,
            app,
            cancel,
            deps_changed,
        }
    }

    fn stopped(&self) -> bool {
        self.cancel.is_cancelled() || self.agent.read(|s| s.status == RunStatus::Stopped)
    }

    fn call<'c>(
        &'c self,
        operation: Operation,
        ids: &'c (String, String),
        config: Option<&'c ModelOverride>,
    ) -> Call<'c> {
        Call {
            user_id: &ids.0,
            app_id: Some(&ids.1),
            operation,
            overrides: config,
            cancel: Some(&self.cancel),
        }
    }

    fn ids(&self) -> (String, String) {
        self.agent.read(|s| (s.user_id.clone(), s.app_id.clone()))
    }

    fn preview_url(&self) -> Option<String> {
        let (origin, app_id) = self.agent.read(|s| (s.origin.clone(), s.app_id.clone()));
        let url = worker::Url::parse(&origin?).ok()?;
        crate::routes::sandbox::preview_url_at(&self.app, url.scheme(), url.port(), &app_id).ok()
    }

    fn max_corrections(&self) -> u32 {
        self.app.cfg.max_corrections
    }

    async fn run(&self) {
        let mut sandbox_ready = false;
        loop {
            self.agent.heartbeat().await;
            let work = self.agent.read(RunState::next_work);
            if !matches!(work, Work::Idle | Work::Plan | Work::Finish) && !sandbox_ready {
                let template = self
                    .agent
                    .read(|s| s.blueprint.as_ref().map(|b| b.template.clone()))
                    .unwrap_or_default();
                if let Err(e) = self.ensure_sandbox(&template).await {
                    self.agent.error(&e, false);
                    self.fail().await;
                    return;
                }
                sandbox_ready = true;
            }
            let flow = match work {
                Work::Idle => {
                    if self.agent.read(|s| s.status == RunStatus::Stopped) {
                        self.agent.emit(AgentEvent::Done {
                            status: RunOutcome::Stopped,
                        });
                    }
                    return;
                }
                Work::Plan => self.plan().await,
                Work::Phase(i) => self.phase(i).await,
                Work::NextMessage => {
                    self.agent.update(|s| {
                        s.start_next_edit();
                    });
                    Flow::Continue
                }
                Work::Edit => self.edit().await,
                Work::Finish => {
                    self.finish().await;
                    return;
                }
            };
            match flow {
                Flow::Continue => {}
                Flow::Stopped => {
                    self.agent.update(|s| s.status = RunStatus::Stopped);
                    self.mirror().await;
                    self.agent.emit(AgentEvent::Done {
                        status: RunOutcome::Stopped,
                    });
                    return;
                }
                Flow::Failed => {
                    self.fail().await;
                    return;
                }
            }
        }
    }

    async fn fail(&self) {
        // Queued messages stay queued: the next message (or generation) applies them.
        self.agent.update(|s| {
            s.status = RunStatus::Failed;
            s.current_phase = None;
        });
        self.mirror().await;
        self.agent.emit(AgentEvent::Done {
            status: RunOutcome::Failed,
        });
    }

    async fn finish(&self) {
        let url = self.preview_url();
        let status = self.agent.update(|s| {
            s.status = s.finished_status();
            s.current_phase = None;
            s.preview_url = url.clone();
            s.status
        });
        self.mirror().await;
        if let Some(url) = url {
            self.agent.emit(AgentEvent::PreviewReady { url });
        }
        self.agent.emit(AgentEvent::Done {
            status: if status == RunStatus::Complete {
                RunOutcome::Completed
            } else {
                RunOutcome::Stopped
            },
        });
    }

    // ----- planning ----------------------------------------------------------------------

    async fn plan(&self) -> Flow {
        let Some(prompt) = self.agent.read(|s| s.prompt.clone()) else {
            self.agent
                .error(&generation_failed("the run has no prompt"), false);
            return Flow::Failed;
        };
        self.agent.emit(AgentEvent::PhaseStart {
            phase: "planning".into(),
            message: "Planning the app".into(),
        });
        let llm = match Llm::new(&self.app) {
            Ok(l) => l,
            Err(e) => {
                self.agent.error(&e, false);
                return Flow::Failed;
            }
        };
        let infos: Vec<TemplateInfo<'_>> = templates::CATALOG
            .iter()
            .map(|t| TemplateInfo {
                name: t.name,
                description: t.description,
            })
            .collect();
        let names: Vec<&str> = templates::CATALOG.iter().map(|t| t.name).collect();
        let mut messages = prompts::blueprint_messages(&prompt, &infos);
        let ids = self.ids();
        let config = self.agent.read(|s| s.config.clone());
        for attempt in 0..2 {
            let out = match llm
                .complete(
                    &self.call(Operation::Blueprint, &ids, config.as_ref()),
                    &messages,
                )
                .await
            {
                Ok(o) => o,
                Err(_) if self.stopped() => return Flow::Stopped,
                Err(e) => {
                    self.agent.error(&e, false);
                    return Flow::Failed;
                }
            };
            match parse_blueprint(&out.text, &names) {
                Ok(b) => {
                    let summary =
                        format!("{}: {} phases on {}", b.title, b.phases.len(), b.template);
                    if self.stopped() {
                        return Flow::Stopped;
                    }
                    self.agent.update(|s| s.planned(b));
                    self.agent.emit(AgentEvent::PhaseComplete {
                        phase: "planning".into(),
                        message: summary,
                    });
                    return Flow::Continue;
                }
                Err(e) if attempt == 0 => prompts::blueprint_retry(&mut messages, &out.text, &e),
                Err(e) => {
                    self.agent.error(
                        &generation_failed(format!(
                            "the model did not produce a valid plan: {}",
                            e.problems.join("; ")
                        )),
                        false,
                    );
                }
            }
        }
        Flow::Failed
    }

    // ----- phases and edits --------------------------------------------------------------

    fn status_of(&self, unit: Unit) -> Option<PhaseStatus> {
        self.agent.read(|s| match unit {
            Unit::Phase(i) => s.phases.get(i).copied(),
            Unit::Edit => s.edit.as_ref().map(|e| e.status),
        })
    }

    /// Moves `unit` on; entering a new stream (implementing, a correction round) clears what
    /// the previous one applied.
    fn advance(&self, unit: Unit, input: PhaseInput) {
        let max = self.max_corrections();
        self.agent.update(|s| {
            let slot = match unit {
                Unit::Phase(i) => s.phases.get_mut(i),
                Unit::Edit => s.edit.as_mut().map(|e| &mut e.status),
            };
            let Some(p) = slot else { return };
            match p.next(input, max) {
                Ok(n) => {
                    *p = n;
                    if matches!(
                        n,
                        PhaseStatus::Implementing | PhaseStatus::Correcting { .. }
                    ) {
                        s.attempt.clear();
                    }
                }
                Err(e) => worker::console_error!("codegen: {e}"),
            }
        });
    }

    fn file_context(&self) -> Vec<(String, String)> {
        self.agent
            .contents()
            .iter()
            .map(|(p, c)| (p.clone(), c.clone()))
            .collect()
    }

    async fn phase(&self, i: usize) -> Flow {
        let Some(blueprint) = self.agent.read(|s| s.blueprint.clone()) else {
            return Flow::Failed;
        };
        let Some(plan) = blueprint.phases.get(i).cloned() else {
            return Flow::Failed;
        };
        let status = self.status_of(Unit::Phase(i));
        self.agent.update(|s| s.current_phase = Some(i));
        if status == Some(PhaseStatus::Planned) {
            self.agent.emit(AgentEvent::PhaseStart {
                phase: plan.name.clone(),
                message: plan.description.clone(),
            });
            match self.plan_phase(&blueprint, i).await {
                Ok(Some(detail)) => self.agent.update(|s| {
                    s.phase_details.insert(i, detail);
                }),
                Ok(None) => {}
                Err(flow) => return flow,
            }
            self.advance(Unit::Phase(i), PhaseInput::Start);
        } else {
            self.agent.emit(AgentEvent::PhaseStart {
                phase: plan.name.clone(),
                message: format!("Resuming {}", plan.name),
            });
        }
        if self.status_of(Unit::Phase(i)) == Some(PhaseStatus::Implementing) {
            let ctx = self.file_context();
            let files = FileContext::all(&ctx);
            let detail = self.agent.read(|s| s.phase_details.get(&i).cloned());
            let messages = prompts::phase_messages(
                &blueprint,
                i,
                detail.as_ref(),
                &files,
                prompts::DEFAULT_CONTEXT_BYTES,
            );
            match self
                .stream_files(Operation::Implementation, &messages)
                .await
            {
                StreamEnd::Whole => self.advance(Unit::Phase(i), PhaseInput::Implemented),
                StreamEnd::Stopped => return Flow::Stopped,
                StreamEnd::Failed => {
                    self.advance(Unit::Phase(i), PhaseInput::Abort);
                    self.mirror().await;
                    return Flow::Failed;
                }
            }
        }
        match self.correct(&blueprint, &plan.name, Unit::Phase(i)).await {
            Flow::Continue => {}
            other => return other,
        }
        self.save_version(&plan.name).await;
        self.mirror().await;
        let unresolved = self.status_of(Unit::Phase(i)) == Some(PhaseStatus::Failed);
        self.agent.emit(AgentEvent::PhaseComplete {
            phase: plan.name.clone(),
            message: if unresolved {
                format!("{} finished with unresolved errors", plan.name)
            } else {
                format!("{} complete", plan.name)
            },
        });
        Flow::Continue
    }

    /// Asks the model for phase `i`'s detailed plan. `Ok(None)`: its answer was not a usable
    /// plan, and the blueprint's plan of the phase is followed as it is.
    async fn plan_phase(
        &self,
        blueprint: &Blueprint,
        i: usize,
    ) -> std::result::Result<Option<PhaseDetail>, Flow> {
        let llm = match Llm::new(&self.app) {
            Ok(l) => l,
            Err(e) => {
                self.agent.error(&e, false);
                return Err(Flow::Failed);
            }
        };
        let existing: Vec<String> = self.agent.read(|s| s.files.keys().cloned().collect());
        let paths: Vec<&str> = existing.iter().map(String::as_str).collect();
        let messages = prompts::phase_plan_messages(blueprint, i, &paths);
        let ids = self.ids();
        let config = self.agent.read(|s| s.config.clone());
        match llm
            .complete(
                &self.call(Operation::PhasePlanning, &ids, config.as_ref()),
                &messages,
            )
            .await
        {
            Ok(out) => match parse_phase_detail(&out.text) {
                Ok(d) => Ok(Some(d)),
                Err(why) => {
                    worker::console_warn!(
                        "codegen: phase plan unusable ({why}); following the blueprint"
                    );
                    Ok(None)
                }
            },
            Err(_) if self.stopped() => Err(Flow::Stopped),
            Err(e) => {
                self.agent.error(&e, false);
                self.advance(Unit::Phase(i), PhaseInput::Abort);
                Err(Flow::Failed)
            }
        }
    }

    async fn edit(&self) -> Flow {
        let Some(edit) = self.agent.read(|s| s.edit.clone()) else {
            return Flow::Continue;
        };
        let blueprint = self.agent.read(|s| s.blueprint.clone());
        self.agent.update(|s| s.current_phase = None);
        if edit.status == PhaseStatus::Planned {
            self.advance(Unit::Edit, PhaseInput::Start);
            self.agent.emit(AgentEvent::PhaseStart {
                phase: EDIT_PHASE.into(),
                message: edit.message.clone(),
            });
        } else {
            self.agent.emit(AgentEvent::PhaseStart {
                phase: EDIT_PHASE.into(),
                message: format!("Resuming: {}", edit.message),
            });
        }
        if self.status_of(Unit::Edit) == Some(PhaseStatus::Implementing) {
            let ctx = self.file_context();
            let files = FileContext::all(&ctx);
            let messages = prompts::chat_edit_messages(
                &edit.message,
                blueprint.as_ref(),
                &files,
                prompts::DEFAULT_CONTEXT_BYTES,
            );
            match self.stream_files(Operation::ChatEdit, &messages).await {
                StreamEnd::Whole => self.advance(Unit::Edit, PhaseInput::Implemented),
                StreamEnd::Stopped => return Flow::Stopped,
                StreamEnd::Failed => {
                    self.advance(Unit::Edit, PhaseInput::Abort);
                    return Flow::Failed;
                }
            }
        }
        if let Some(b) = &blueprint {
            match self.correct(b, EDIT_PHASE, Unit::Edit).await {
                Flow::Continue => {}
                other => return other,
            }
        } else {
            self.advance(Unit::Edit, PhaseInput::ValidationPassed);
        }
        self.save_version(EDIT_PHASE).await;
        self.mirror().await;
        self.agent.emit(AgentEvent::PhaseComplete {
            phase: EDIT_PHASE.into(),
            message: format!("Applied: {}", edit.message),
        });
        Flow::Continue
    }

    /// Checks the sandbox after `unit` (the dev server's errors, then `tsc`'s); while some
    /// remain, up to the configured bound of correction rounds goes back to the model; what
    /// remains after the last is reported and the run goes on.
    async fn correct(&self, blueprint: &Blueprint, name: &str, unit: Unit) -> Flow {
        let max = self.max_corrections();
        let mut errors: Option<Vec<Diagnostic>> = None;
        loop {
            if self.stopped() {
                return Flow::Stopped;
            }
            self.agent.heartbeat().await;
            match self.status_of(unit) {
                Some(PhaseStatus::Validating { .. }) => {
                    let mut found = self.install().await;
                    if found.is_empty() {
                        found = self.diagnostics().await;
                    }
                    if found.is_empty() {
                        self.advance(unit, PhaseInput::ValidationPassed);
                        return Flow::Continue;
                    }
                    self.advance(unit, PhaseInput::ValidationFailed);
                    if self.status_of(unit) == Some(PhaseStatus::Failed) {
                        let list: Vec<String> = found
                            .iter()
                            .take(5)
                            .map(|d| {
                                format!(
                                    "{}:{} {}",
                                    d.file.as_deref().unwrap_or("?"),
                                    d.line.unwrap_or(0),
                                    d.message
                                )
                            })
                            .collect();
                        self.agent.error(
                            &ApiError::new(
                                502,
                                ErrorCode::E005,
                                format!(
                                    "phase \"{name}\" still has {} error(s) after {max} correction rounds: {}",
                                    found.len(),
                                    list.join("; ")
                                ),
                            ),
                            true,
                        );
                        return Flow::Continue;
                    }
                    if let Some(d) = found.first() {
                        worker::console_log!(
                            "codegen: \"{name}\" has {} error(s); correcting. First: {}:{} [{}] {}",
                            found.len(),
                            d.file.as_deref().unwrap_or("?"),
                            d.line.unwrap_or(0),
                            d.kind,
                            d.message.lines().next().unwrap_or_default()
                        );
                    }
                    errors = Some(found);
                }
                Some(PhaseStatus::Correcting { round }) => {
                    let found = match errors.take() {
                        Some(e) => e,
                        // Resumed inside a round: the sandbox says what is still wrong.
                        None => self.diagnostics().await,
                    };
                    let ctx = self.file_context();
                    let files = FileContext::all(&ctx);
                    let plan = match unit {
                        Unit::Phase(i) => blueprint.phases.get(i).cloned(),
                        Unit::Edit => None,
                    }
                    .unwrap_or_else(|| {
                        crate::domain::codegen::blueprint::PhasePlan {
                            name: name.to_string(),
                            kind: crate::domain::codegen::blueprint::PhaseKind::Core,
                            description: "a follow-up edit".into(),
                            files: Vec::new(),
                        }
                    });
                    let messages = prompts::correction_messages(
                        blueprint,
                        &plan,
                        round,
                        max,
                        &found,
                        &files,
                        prompts::DEFAULT_CONTEXT_BYTES,
                    );
                    match self
                        .stream_files(Operation::ErrorCorrection, &messages)
                        .await
                    {
                        StreamEnd::Whole => self.advance(unit, PhaseInput::CorrectionApplied),
                        StreamEnd::Stopped => return Flow::Stopped,
                        StreamEnd::Failed => {
                            self.advance(unit, PhaseInput::Abort);
                            return Flow::Failed;
                        }
                    }
                }
                // Implemented or already decided.
                _ => return Flow::Continue,
            }
        }
    }

    // ----- model output ------------------------------------------------------------------

    /// Streams one model call's output through the files parser; each block that closes is
    /// applied (written to the sandbox) while the rest is still arriving. A unit streamed again
    /// after an interruption skips the blocks it had applied.
    async fn stream_files(&self, operation: Operation, messages: &[ChatMessage]) -> StreamEnd {
        let llm = match Llm::new(&self.app) {
            Ok(l) => l,
            Err(e) => {
                self.agent.error(&e, false);
                return StreamEnd::Failed;
            }
        };
        let filter = RefCell::new(ResumeFilter::new(&self.agent.read(|s| s.attempt.clone())));
        let ids = self.ids();
        let config = self.agent.read(|s| s.config.clone());
        let (ftx, mut frx) = unbounded::<FileEvent>();
        let producer = async move {
            let mut parser = Parser::new();
            let mut on_delta = |d: &str| {
                for e in parser.feed_str(d) {
                    let _ = ftx.unbounded_send(e);
                }
            };
            let call = self.call(operation, &ids, config.as_ref());
            let r = llm.stream(&call, messages, &mut on_delta).await;
            let tail = parser.finish();
            if r.is_ok() {
                if let Ok(events) = &tail {
                    for e in events.iter().cloned() {
                        let _ = ftx.unbounded_send(e);
                    }
                }
            }
            drop(ftx);
            (r, tail)
        };
        let consumer = async {
            while let Some(e) = frx.next().await {
                if self.stopped() {
                    continue;
                }
                self.apply(e, &filter).await;
            }
        };
        let ((result, tail), ()) = futures_util::join!(producer, consumer);
        if self.stopped() {
            return StreamEnd::Stopped;
        }
        match (result, tail) {
            (Err(e), _) => {
                self.agent.error(&e, false);
                StreamEnd::Failed
            }
            (Ok(_), Err(e)) => {
                self.agent.error(
                    &generation_failed(format!(
                        "the model's output was cut off ({e}); the unfinished file was not written"
                    )),
                    false,
                );
                StreamEnd::Failed
            }
            (Ok(_), Ok(_)) => StreamEnd::Whole,
        }
    }

    async fn apply(&self, e: FileEvent, filter: &RefCell<ResumeFilter>) {
        let s = step(e, |p| self.agent.contents().get(p).cloned());
        let Some(s) = s else { return };
        if filter.borrow_mut().skip(&s) {
            return;
        }
        match s {
            Step::Emit(ev) => self.agent.emit(ev),
            Step::Write { path, content } => match self.write_file(&path, &content).await {
                Ok(()) => {
                    if path == "package.json" {
                        self.deps_changed.set(true);
                    }
                    // File, run state and event are written in one turn: stored together.
                    let hash = self.agent.update(|s| s.record_write(&path, &content));
                    self.agent.store_file(&path, Some((&content, &hash)));
                    self.agent.emit(AgentEvent::FileGenerated { path, content });
                    self.agent.heartbeat().await;
                }
                Err(why) => self.agent.error(
                    &ApiError::new(
                        502,
                        ErrorCode::E005,
                        format!("{path} was not written: {why}"),
                    ),
                    true,
                ),
            },
            Step::Delete { path } => match self.delete_file(&path).await {
                Ok(()) => {
                    self.agent.store_file(&path, None);
                    self.agent.update(|s| s.record_delete(&path));
                    self.agent.emit(AgentEvent::FileDeleted { path });
                }
                Err(why) => self.agent.error(
                    &ApiError::new(
                        502,
                        ErrorCode::E005,
                        format!("{path} was not deleted: {why}"),
                    ),
                    true,
                ),
            },
        }
    }

    // ----- the sandbox -------------------------------------------------------------------

    async fn sandbox(&self, method: Method, path: &str, body: Option<String>) -> Result<Response> {
        let mut init = RequestInit::new();
        init.with_method(method);
        if let Some(b) = body {
            let h = worker::Headers::new();
            h.set("Content-Type", "application/json")?;
            init.with_headers(h).with_body(Some(b.into()));
        }
        let req = Request::new_with_init(&format!("https://sandbox{path}"), &init)?;
        let app_id = self.agent.read(|s| s.app_id.clone());
        super::stub(&self.agent.env, super::sandbox_do::BINDING, &app_id)?
            .fetch_with_request(req)
            .await
    }

    async fn sandbox_command(&self, cmd: &Command) -> Result<Option<SandboxState>> {
        let mut r = self
            .sandbox(Method::Post, "/command", Some(serde_json::to_string(cmd)?))
            .await?;
        match r.status_code() {
            200 => Ok(Some(r.json().await?)),
            _ => Ok(None),
        }
    }

    /// Brings the app's sandbox up (creating it from `template` and restoring the app's files
    /// if it is not active) and waits until it is ready.
    async fn ensure_sandbox(&self, template: &str) -> std::result::Result<(), ApiError> {
        let unavailable = |m: String| ApiError::new(503, ErrorCode::E006, m);
        let (app_id, user_id) = self.agent.read(|s| (s.app_id.clone(), s.user_id.clone()));
        let current = self
            .sandbox_command(&Command::Status)
            .await
            .map_err(|e| unavailable(format!("sandbox unreachable: {e}")))?;
        let fresh = !current.as_ref().is_some_and(|s| s.status.is_active());
        if fresh {
            let db = self.app.db()?;
            let max = self.app.cfg.max_sandboxes_per_user;
            if !crate::services::db::claim_sandbox(&db, &app_id, &user_id, template, max).await? {
                return Err(ApiError::new(
                    403,
                    ErrorCode::E006,
                    format!("sandbox limit reached: at most {max} sandboxes may run at once; stop one to start another"),
                ));
            }
            self.sandbox_command(&Command::Create {
                app_id: app_id.clone(),
                user_id: user_id.clone(),
                template: template.to_string(),
            })
            .await
            .map_err(|e| unavailable(format!("sandbox unreachable: {e}")))?;
        }
        let deadline = now() + SANDBOX_READY_TIMEOUT_MS;
        loop {
            self.agent.heartbeat().await;
            let s = self
                .sandbox_command(&Command::Status)
                .await
                .map_err(|e| unavailable(format!("sandbox unreachable: {e}")))?
                .ok_or_else(|| unavailable("the sandbox disappeared".into()))?;
            match s.status {
                SandboxStatus::Ready => break,
                SandboxStatus::Failed | SandboxStatus::Stopped => {
                    return Err(unavailable(format!(
                        "the sandbox is {}: {}",
                        s.status.as_str(),
                        s.reason.unwrap_or_default()
                    )))
                }
                _ if now() > deadline => {
                    return Err(unavailable(
                        "the sandbox did not become ready in time".into(),
                    ))
                }
                _ => worker::Delay::from(std::time::Duration::from_millis(500)).await,
            }
        }
        if fresh {
            self.restore().await.map_err(unavailable)?;
            if self.agent.contents().contains_key("package.json") {
                // The template's dependencies were installed; the app's may differ.
                self.deps_changed.set(true);
                let errors = self.install().await;
                if let Some(e) = errors.first() {
                    return Err(unavailable(format!(
                        "installing the app's dependencies failed: {}",
                        e.message
                    )));
                }
            }
        }
        Ok(())
    }

    /// Installs dependencies when `package.json` changed; a failure is a diagnostic for the
    /// correction loop (the model can fix a bad version or a misspelt package).
    async fn install(&self) -> Vec<Diagnostic> {
        if !self.deps_changed.get() {
            return Vec::new();
        }
        let body = json!({
            "command": super::sandbox_do::INSTALL_COMMAND,
            "timeoutMs": super::sandbox_do::INSTALL_TIMEOUT_MS,
        })
        .to_string();
        let failed = |message: String| {
            vec![Diagnostic {
                file: Some("package.json".into()),
                line: None,
                column: None,
                message,
                kind: "install".into(),
            }]
        };
        match self.sandbox(Method::Post, "/proxy/exec", Some(body)).await {
            Ok(mut r) if r.status_code() == 200 => {
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                if v["exitCode"] == 0 {
                    self.deps_changed.set(false);
                    Vec::new()
                } else if v["timedOut"] == true {
                    failed("npm install timed out".into())
                } else {
                    // The end of npm's report says what went wrong.
                    let err = v["stderr"].as_str().unwrap_or_default();
                    let tail: Vec<&str> = err.lines().rev().take(15).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    failed(format!("npm install failed:\n{}", tail.join("\n")))
                }
            }
            Ok(r) => failed(format!("npm install could not run ({})", r.status_code())),
            Err(e) => failed(format!("npm install could not run: {e}")),
        }
    }

    /// Writes every stored file into a fresh sandbox, in batches.
    async fn restore(&self) -> std::result::Result<(), String> {
        let files = self.file_context();
        let mut batch: Vec<serde_json::Value> = Vec::new();
        let mut size = 0;
        let mut it = files.into_iter().peekable();
        while let Some((path, content)) = it.next() {
            size += content.len();
            batch.push(json!({ "path": path, "content": content }));
            if size >= RESTORE_BATCH_BYTES || it.peek().is_none() {
                let body = json!({ "files": std::mem::take(&mut batch) }).to_string();
                size = 0;
                match self.sandbox(Method::Post, "/proxy/files", Some(body)).await {
                    Ok(r) if r.status_code() == 200 => {}
                    Ok(r) => {
                        return Err(format!(
                            "restoring the app's files failed ({})",
                            r.status_code()
                        ))
                    }
                    Err(e) => return Err(format!("restoring the app's files failed: {e}")),
                }
            }
        }
        Ok(())
    }

    /// Writes one file to the sandbox; the agent's error message on refusal.
    async fn write_file(&self, path: &str, content: &str) -> std::result::Result<(), String> {
        let body = json!({ "files": [{ "path": path, "content": content }] }).to_string();
        match self.sandbox(Method::Post, "/proxy/files", Some(body)).await {
            Ok(r) if r.status_code() == 200 => Ok(()),
            Ok(mut r) => {
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                Err(v["error"]["message"]
                    .as_str()
                    .unwrap_or("the sandbox refused the file")
                    .to_string())
            }
            Err(e) => Err(format!("sandbox unreachable: {e}")),
        }
    }

    async fn delete_file(&self, path: &str) -> std::result::Result<(), String> {
        match self
            .sandbox(
                Method::Delete,
                &format!(
                    "/proxy/files?path={}",
                    crate::domain::input::percent_encode(path)
                ),
                None,
            )
            .await
        {
            Ok(r) if matches!(r.status_code(), 204 | 404) => Ok(()),
            Ok(r) => Err(format!("the sandbox answered {}", r.status_code())),
            Err(e) => Err(format!("sandbox unreachable: {e}")),
        }
    }

    async fn diagnostics(&self) -> Vec<Diagnostic> {
        #[derive(Deserialize)]
        struct Errors {
            #[serde(default)]
            errors: Vec<Diagnostic>,
        }
        let errors = match self.sandbox(Method::Get, "/proxy/errors", None).await {
            Ok(mut r) if r.status_code() == 200 => r
                .json::<Errors>()
                .await
                .map(|e| e.errors)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if !errors.is_empty() {
            return errors;
        }
        // The dev server is happy: the type checker has the last word.
        let body = json!({ "timeoutMs": TYPECHECK_TIMEOUT_MS }).to_string();
        match self
            .sandbox(Method::Post, "/proxy/typecheck", Some(body))
            .await
        {
            Ok(mut r) if r.status_code() == 200 => r
                .json::<Errors>()
                .await
                .map(|e| e.errors)
                .unwrap_or_default(),
            Ok(r) => {
                worker::console_warn!("codegen: typecheck unavailable ({})", r.status_code());
                Vec::new()
            }
            Err(e) => {
                worker::console_warn!("codegen: typecheck unavailable: {e}");
                Vec::new()
            }
        }
    }

    // ----- saving ------------------------------------------------------------------------

    /// Saves a version: contents not yet in R2, then the manifest. A storage failure is logged;
    /// generation goes on (the files are in the object's storage and the sandbox).
    async fn save_version(&self, label: &str) {
        let r = async {
            let bucket = self.agent.env.bucket("APP_FILES")?;
            let (app_id, files, next) = self
                .agent
                .read(|s| (s.app_id.clone(), s.files.clone(), s.version + 1));
            #[derive(Deserialize)]
            struct Row {
                hash: String,
            }
            let stored: std::collections::BTreeSet<String> = self
                .agent
                .sql()
                .exec("SELECT hash FROM blobs", None)?
                .to_array::<Row>()?
                .into_iter()
                .map(|r| r.hash)
                .collect();
            for (path, f) in &files {
                if stored.contains(&f.hash) {
                    continue;
                }
                let Some(content) = self.agent.contents().get(path).cloned() else {
                    continue;
                };
                bucket
                    .put(blob_key(&app_id, &f.hash), content)
                    .execute()
                    .await?;
                self.agent.sql().exec(
                    "INSERT OR IGNORE INTO blobs (hash) VALUES (?)",
                    vec![SqlStorageValue::String(f.hash.clone())],
                )?;
            }
            let manifest = json!({
                "appId": app_id,
                "version": next,
                "label": label,
                "createdAt": now(),
                "files": files.iter().map(|(p, f)| json!({"path": p, "hash": f.hash, "bytes": f.bytes})).collect::<Vec<_>>(),
            });
            let meta: std::collections::HashMap<String, String> = [
                ("version".to_string(), next.to_string()),
                ("label".to_string(), label.to_string()),
                ("createdAt".to_string(), now().to_string()),
                ("files".to_string(), files.len().to_string()),
            ]
            .into();
            bucket
                .put(version_key(&app_id, next), manifest.to_string())
                .custom_metadata(meta)
                .execute()
                .await?;
            self.agent.update(|s| s.version = next);
            Ok::<(), worker::Error>(())
        }
        .await;
        if let Err(e) = r {
            worker::console_error!("codegen: saving a version to R2 failed: {e}");
        }
    }

    /// Mirrors the app's file list and generation state to D1.
    async fn mirror(&self) {
        let last = self.agent.last_seq();
        let (files, gen, app_id, user_id) = self.agent.read(|st| {
            let files: Vec<serde_json::Value> = st
                .files
                .iter()
                .map(|(p, f)| json!({"path": p, "bytes": f.bytes, "hash": f.hash}))
                .collect();
            let snap = st.snapshot(&st.app_id, last);
            (
                json!(files).to_string(),
                json!({ "generation": snap }).to_string(),
                st.app_id.clone(),
                st.user_id.clone(),
            )
        });
        let r = async {
            self.app
                .db()
                .map_err(|e| worker::Error::RustError(e.message))?
                .prepare("UPDATE apps SET files = ?1, container_state = ?2, updated_at = unixepoch() WHERE id = ?3 AND user_id = ?4")
                .bind(&[files.into(), gen.into(), app_id.into(), user_id.into()])?
                .run()
                .await
        }
        .await;
        if let Err(e) = r {
            worker::console_error!("codegen: saving the app's files to D1 failed: {e}");
        }
    }
}

impl DurableObject for CodeGeneratorAgent {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            running: Cell::new(false),
            cancel: RefCell::new(Cancel::default()),
            streams: RefCell::new(Vec::new()),
            run: RefCell::new(None),
            contents: RefCell::new(None),
            ready: Cell::new(false),
            beat: Cell::new(0),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/chat") => self.chat(req).await,
            (Method::Get, "/state") => self.state_since(&req),
            (Method::Get, "/events") => {
                let r = self.subscribe(Some(Self::since(&req).unwrap_or(0)));
                if self.read(RunState::is_active) {
                    self.kick().await;
                }
                r
            }
            (Method::Get, "/ws") => self.open_socket(&req).await,
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if self.running.get() {
            // The driver is at work here: keep the watchdog armed.
            self.arm(now() + HEARTBEAT_MS).await;
            return Response::ok("running");
        }
        self.drive().await;
        Response::ok("idle")
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        match message {
            WebSocketIncomingMessage::String(text) => self.command(&ws, &text).await,
            WebSocketIncomingMessage::Binary(_) => {
                let _ = ws.send_with_str(
                    AgentEvent::Error {
                        code: ErrorCode::E004,
                        message: "commands are JSON text messages".into(),
                        recoverable: true,
                    }
                    .to_json(),
                );
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        let code = if (1000..5000).contains(&code) && code != 1005 && code != 1006 {
            code as u16
        } else {
            1000
        };
        let _ = ws.close(Some(code), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, _error: worker::Error) -> Result<()> {
        Ok(())
    }
}
