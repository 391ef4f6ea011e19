//! `CodeGeneratorAgent`: one object per app, a shell around the code generator's driver
//! ([`crate::domain::codegen::driver`], where the generation logic and its guarantees live). It
//! translates requests, WebSocket commands and alarms to and from the driver; storage is in
//! [`super::codegen_store`], the model, sandbox and client ports in [`super::codegen_ports`].
//!
//! The work runs in the object's alarm handler, never inside a client's request: a request (or a
//! WebSocket command) changes the persisted run state and arms the alarm; the alarm runs the
//! driver until nothing is left. A heartbeat keeps an alarm armed while it works, so an object
//! that is evicted or a `wrangler dev` that is restarted mid-generation picks the run up where it
//! was.
//!
//! Deletion erases the object ([`super::codegen_erase`]); a retired object answers nothing. A
//! ticket's implementation rides on a run ([`super::codegen_tickets`]).
//!
//! Clients subscribe: `POST /chat` and `GET /events` answer with Server-Sent Events, and
//! WebSockets (hibernation API) carry the same events plus the client's commands. Every client
//! gets a `state` event first, then the stored events after the id it names, then live ones.

use super::codegen_ports::{Clients, LlmModel, SandboxClient};
use super::codegen_socket::echo_close_code;
use super::codegen_store::{now, AgentStore, HEARTBEAT_MS};
use crate::domain::codegen::agent_call::{AgentCall, Requester, CALL_HEADER};
use crate::domain::codegen::driver::{publish, Cancel, Driver, Store};
use crate::domain::codegen::events::{AgentEvent, RunOutcome};
use crate::domain::codegen::fanout::FanOut;
use crate::domain::codegen::models::ModelOverride;
use crate::domain::codegen::run::RunState;
use crate::domain::codegen::socket_fanout::SocketFanOut;
use crate::domain::error::{ApiError, ErrorCode};
use crate::http::App;
use std::cell::{Cell, RefCell};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage,
};

pub use crate::domain::codegen::agent_call::BINDING;

#[durable_object]
pub struct CodeGeneratorAgent {
    pub(super) state: State,
    pub(super) env: Env,
    /// Whether a driver works in this isolate.
    pub(super) running: Cell<bool>,
    /// The driver's stop flag (its model calls check it between chunks).
    pub(super) cancel: RefCell<Cancel>,
    /// The app is deleted ([`AgentCall::Erase`]): no call, command or alarm does anything.
    pub(super) retired: Cell<bool>,
    /// SSE clients: every event until the run ends (bounded queues).
    pub(super) streams: RefCell<FanOut>,
    /// WebSockets' unacknowledged counts (bounded).
    pub(super) sockets: RefCell<SocketFanOut>,
    pub(super) store: AgentStore,
}

fn header(req: &Request, k: &str) -> Option<String> {
    req.headers().get(k).ok().flatten()
}

impl CodeGeneratorAgent {
    pub(super) fn read<R>(&self, f: impl FnOnce(&RunState) -> R) -> R {
        self.store.read(f)
    }

    pub(super) fn update<R>(&self, f: impl FnOnce(&mut RunState) -> R) -> R {
        self.store.update(f)
    }

    pub(super) fn clients(&self) -> Clients<'_> {
        Clients {
            state: &self.state,
            streams: &self.streams,
            sockets: &self.sockets,
        }
    }

    /// Stores the event (unless live) and sends it to every client.
    pub(super) fn emit(&self, ev: AgentEvent) {
        publish(&self.store, &self.clients(), ev);
    }

    /// What a (re)connecting client draws first.
    pub(super) fn state_event(&self) -> AgentEvent {
        let last = self.store.last_seq();
        self.fresh(AgentEvent::State(
            self.read(|s| s.snapshot(s.app_id.as_str(), last)),
        ))
    }

    /// Ends every SSE stream (the run is over).
    pub(super) fn close_streams(&self) {
        self.streams.borrow_mut().close();
    }

    /// Makes sure a driver will pick the work up: this isolate's if one runs, else the alarm's.
    pub(super) async fn kick(&self) {
        if !self.running.get() {
            self.store.arm(now()).await;
        }
    }

    // ----- commands (from requests and WebSockets) ---------------------------------------

    pub(super) fn begin(&self, c: &Requester, prompt: &str, config: Option<ModelOverride>) {
        self.update(|s| {
            s.start(prompt);
            c.bind(s);
            s.config = config;
        });
    }

    /// A chat message: a new app is planned from it; an existing app is edited (queued behind
    /// the work in progress). `Err`: the queue is full.
    pub(super) fn chat_message(
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

    pub(super) async fn stop(&self) -> std::result::Result<(), String> {
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
            if self.read(|s| s.ticket.is_some()) {
                // The alarm reports the ticket's run as ended.
                self.store.arm(now()).await;
            }
        }
        Ok(())
    }

    pub(super) async fn resume(&self, c: &Requester) -> std::result::Result<(), String> {
        self.update(|s| {
            s.resume()?;
            c.bind(s);
            Ok::<(), String>(())
        })?;
        self.kick().await;
        Ok(())
    }

    // ----- calls from the route -------------------------------------------------------------

    async fn call(&self, mut req: Request) -> Result<Response> {
        let raw = match header(&req, CALL_HEADER) {
            Some(h) => h.into_bytes(),
            None => req.bytes().await?,
        };
        let call = match AgentCall::parse(&raw) {
            Ok(c) => c,
            Err(e) => return Response::error(e, 400),
        };
        if self.retired.get() && !matches!(call, AgentCall::Erase { .. }) {
            return Response::error("the app is deleted", 404);
        }
        match call {
            AgentCall::Erase { .. } => self.erase().await,
            AgentCall::Chat { by, chat } => {
                if let Err(e) = self.chat_message(&by, &chat.message, chat.config) {
                    return Ok(crate::http::error_response(&e));
                }
                let resp = self.subscribe(None);
                self.kick().await;
                resp
            }
            AgentCall::State { by, since } => self.state_since(&by, since),
            AgentCall::Events { since, .. } => {
                let r = self.subscribe(Some(since));
                if self.read(RunState::is_active) {
                    self.kick().await;
                }
                r
            }
            AgentCall::Socket { by, since } => self.open_socket(by, since).await,
            AgentCall::Implement { by, job } => self.implement(&by, job).await,
            AgentCall::PrepareDeploy { by } => self.prepare_deploy(&by).await,
            AgentCall::Publish { event, .. } => self.publish_event(event),
        }
    }

    /// The ports of a run for `app`.
    pub(super) fn ports<'a>(
        &self,
        app: &'a App,
        cancel: Cancel,
    ) -> (LlmModel<'a>, SandboxClient<'a>) {
        let (user_id, app_id, origin, config) = self.read(|s| {
            (
                s.user_id.clone(),
                s.app_id.clone(),
                s.origin.clone(),
                s.config.clone(),
            )
        });
        (
            LlmModel {
                app,
                user_id: user_id.clone(),
                app_id: app_id.clone(),
                config,
                cancel,
            },
            SandboxClient {
                app,
                app_id,
                user_id,
                origin,
            },
        )
    }

    /// Works until nothing is left (or the run stops or fails). Runs in the alarm handler.
    async fn drive(&self) {
        if self.running.get() {
            return;
        }
        let app = match App::new(self.env.clone()) {
            Ok(a) => a,
            Err(e) => {
                worker::console_error!("codegen: misconfigured: {e}");
                return;
            }
        };
        if !self.read(RunState::is_active) {
            // A ticket's run that ended before its report was done (a restart, a retry).
            if !self.settle_ticket(&app).await {
                self.store.disarm().await;
            }
            return;
        }
        self.running.set(true);
        let cancel = Cancel::default();
        *self.cancel.borrow_mut() = cancel.clone();
        self.store.reset_heartbeat();
        let (model, sandbox) = self.ports(&app, cancel.clone());
        let clients = self.clients();
        Driver::new(
            &model,
            &sandbox,
            &self.store,
            &clients,
            cancel,
            app.cfg.max_corrections,
        )
        .run()
        .await;
        self.running.set(false);
        if self.read(RunState::is_active) {
            // Work arrived while the run was finishing.
            self.store.arm(now()).await;
        } else {
            self.close_streams();
            self.store.prune_events();
            // The run's end is where a ticket's implementation is reported.
            if !self.settle_ticket(&app).await {
                self.store.disarm().await;
            }
        }
    }
}

impl DurableObject for CodeGeneratorAgent {
    fn new(state: State, env: Env) -> Self {
        let store = AgentStore::new(state.storage(), env.clone());
        Self {
            state,
            env,
            running: Cell::new(false),
            retired: Cell::new(false),
            cancel: RefCell::new(Cancel::default()),
            streams: RefCell::new(FanOut::default()),
            sockets: RefCell::new(SocketFanOut::default()),
            store,
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        self.call(req).await
    }

    async fn alarm(&self) -> Result<Response> {
        if self.retired.get() {
            return Response::ok("deleted");
        }
        if self.running.get() {
            // The driver is at work here: keep the watchdog armed.
            self.store.arm(now() + HEARTBEAT_MS).await;
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
        if self.retired.get() {
            let _ = ws.close(Some(1001), Some("the app was deleted"));
            return Ok(());
        }
        match message {
            WebSocketIncomingMessage::String(text) => self.command(&ws, &text).await,
            WebSocketIncomingMessage::Binary(b)
                if super::codegen_socket::oversized(&ws, b.len()) => {}
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
        self.socket_gone(&ws);
        let _ = ws.close(Some(echo_close_code(code)), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.socket_gone(&ws);
        Ok(())
    }
}
