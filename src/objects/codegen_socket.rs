//! The code generator's WebSockets (hibernation API): opening one for the owner (the state
//! first, then the stored events after the id it names, then live events through the driver's
//! event port), and the client's commands (`generate`, `message`, `stop`, `resume`, `preview`),
//! each checked against the session the socket was opened with (a command after sign-out or
//! token expiry gets E001 and the socket closes). A message over
//! [`crate::domain::codegen::events::MAX_COMMAND_BYTES`] gets E004 and the socket closes with
//! 1009 (message too big), unparsed.
//!
//! Every socket is tagged with its own key when accepted, and everything sent to it after its
//! opening replay is counted against what it acknowledged (`ack`, handled before any session
//! check: it changes nothing but the count) by the object's
//! [`crate::domain::codegen::socket_fanout::SocketFanOut`].

use super::codegen_do::CodeGeneratorAgent;
use super::codegen_ports::{new_socket_key, socket_key, ws_text};
use super::codegen_store::now;
use crate::domain::codegen::agent_call::Requester;
use crate::domain::codegen::driver::{Cancel, Driver, Sandbox};
use crate::domain::codegen::events::{
    check_command_size, parse_command, AgentEvent, ClientCommand, CLOSE_TOO_BIG,
};
use crate::domain::codegen::run::RunState;
use crate::domain::error::ErrorCode;
use crate::http::App;
use worker::{Response, Result, WebSocket, WebSocketPair};

impl CodeGeneratorAgent {
    /// Accepts the client's WebSocket: its requester rides along as the socket's attachment.
    pub(super) async fn open_socket(&self, by: Requester, since: Option<u64>) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        let server = pair.server;
        let key = new_socket_key();
        self.state.accept_websocket_with_tags(&server, &[&key]);
        server.serialize_attachment(&by)?;
        if self.read(|s| s.app_id.as_str().is_empty()) {
            self.update(|s| s.app_id = by.app_id.clone());
        }
        // The state first, then what the client missed, then (through the event port) live ones.
        server.send_with_str(self.state_event().to_json())?;
        let mut replayed = 1;
        if let Some(since) = since {
            for (seq, json) in self.replay(since, 10_000) {
                server.send_with_str(ws_text(&json, Some(seq)))?;
                replayed += 1;
            }
        }
        // The opening messages are outside the socket's bound (storage bounds them).
        self.sockets.borrow_mut().open(&key, replayed);
        if self.read(RunState::is_active) {
            self.kick().await;
        }
        Response::from_websocket(pair.client)
    }

    /// Whether the socket's session was not signed out; `None` when that cannot be checked.
    async fn session_live(&self, by: &Requester) -> Option<bool> {
        let app = App::new(self.env.clone()).ok()?;
        let (kv, db) = (app.kv().ok()?, app.db().ok()?);
        crate::services::sessions::is_live(&kv, &db, &by.session_id, &by.user_id)
            .await
            .ok()
    }

    /// A socket closed or failed: its count goes.
    pub(super) fn socket_gone(&self, ws: &WebSocket) {
        if let Some(key) = socket_key(&self.state, ws) {
            self.sockets.borrow_mut().forget(&key);
        }
    }

    pub(super) async fn command(&self, ws: &WebSocket, text: &str) {
        let clients = self.clients();
        let reply = |ev: AgentEvent| {
            clients.send_to(ws, &ev);
        };
        let refuse = |code: ErrorCode, m: String| {
            reply(AgentEvent::Error {
                code,
                message: m,
                recoverable: true,
            })
        };
        if oversized(ws, text.len()) {
            return;
        }
        let parsed = parse_command(text);
        if let Ok(ClientCommand::Ack { received }) = parsed {
            if let Some(key) = socket_key(&self.state, ws) {
                self.sockets.borrow_mut().ack(&key, received);
            }
            return;
        }
        let by: Option<Requester> = ws.deserialize_attachment().ok().flatten();
        let Some(mut by) = by else {
            let _ = ws.close(Some(1011), Some("lost its session"));
            return;
        };
        let live = if now() / 1000 < by.token_exp {
            self.session_live(&by).await
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
        let cmd = match parsed {
            Ok(c) => c,
            Err(e) => return reply(AgentEvent::from_error(&e, true)),
        };
        by.app_id = self.read(|s| s.app_id.clone());
        let c = by;
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
            ClientCommand::Ack { .. } => {}
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
                let (model, sandbox) = self.ports(&app, Cancel::default());
                let driver = Driver::new(
                    &model,
                    &sandbox,
                    &self.store,
                    &clients,
                    Cancel::default(),
                    app.cfg.max_corrections,
                );
                match driver.ensure_sandbox(&template).await {
                    Ok(()) => match sandbox.preview_url() {
                        Some(url) => reply(AgentEvent::PreviewReady { url }),
                        None => refuse(ErrorCode::E000, "no preview address".into()),
                    },
                    Err(e) => reply(AgentEvent::from_error(&e, true)),
                }
            }
        }
    }
}

/// Refuses a client message of `len` bytes over the limit: an E004 error event, then the socket
/// closes with 1009. Returns whether it did.
pub(super) fn oversized(ws: &WebSocket, len: usize) -> bool {
    match check_command_size(len) {
        Ok(()) => false,
        Err(e) => {
            let _ = ws.send_with_str(AgentEvent::from_error(&e, false).to_json());
            let _ = ws.close(Some(CLOSE_TOO_BIG), Some("message too big"));
            true
        }
    }
}

/// The close code to echo for a client's close (reserved codes become a normal closure).
pub(super) fn echo_close_code(code: usize) -> u16 {
    if (1000..5000).contains(&code) && code != 1005 && code != 1006 {
        code as u16
    } else {
        1000
    }
}
