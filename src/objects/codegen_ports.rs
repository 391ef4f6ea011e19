//! The code generator's ports on the Workers side: the model through the LLM client
//! ([`LlmModel`]), the app's sandbox through its Durable Object ([`SandboxClient`], typed with
//! the shared sandbox protocol), and the connected clients ([`Clients`]: SSE streams and
//! hibernatable WebSockets).

use crate::domain::codegen::driver::{Cancel, Events, Model, Sandbox};
use crate::domain::codegen::events::{AgentEvent, CallUsage};
use crate::domain::codegen::fanout::FanOut;
use crate::domain::codegen::models::{ChatMessage, ModelOverride, Operation};
use crate::domain::codegen::prompts::Diagnostic;
use crate::domain::codegen::socket_fanout::{Sent, Socket, SocketFanOut};
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::ids::{AppId, UserId};
use crate::domain::sandbox::{install_request, Status as SandboxStatus};
use crate::domain::sandbox_call::{Owner, SandboxCall};
use crate::http::App;
use crate::services::llm::{Call, Llm, Outcome};
use crate::services::sandbox as sandbox_service;
use byte_protocol::{ErrorsReply, ExecReply, FileInput, RelPath, TypecheckRequest, WriteFiles};
use std::cell::RefCell;
use worker::{State, WebSocket};

/// How long a generation waits for its sandbox to become ready.
const SANDBOX_READY_TIMEOUT_MS: i64 = 240_000;
/// How long the type check after a phase may run.
const TYPECHECK_TIMEOUT_MS: u64 = 120_000;

/// The model, for one run: who it works for, its override, its stop flag.
pub struct LlmModel<'a> {
    pub app: &'a App,
    pub user_id: UserId,
    pub app_id: AppId,
    pub config: Option<ModelOverride>,
    pub cancel: Cancel,
}

impl LlmModel<'_> {
    fn call(&self, operation: Operation) -> Call<'_> {
        Call {
            user_id: &self.user_id,
            app_id: Some(&self.app_id),
            operation,
            overrides: self.config.as_ref(),
            cancel: Some(&self.cancel),
        }
    }
}

/// What a successful call used, for the run's token count.
fn usage_of(op: Operation, o: &Outcome) -> CallUsage {
    CallUsage {
        operation: op,
        provider: o.provider,
        model: o.model.clone(),
        prompt_tokens: o.usage.prompt_tokens,
        completion_tokens: o.usage.completion_tokens,
        total_tokens: o.usage.total_tokens,
    }
}

impl Model for LlmModel<'_> {
    async fn complete(
        &self,
        op: Operation,
        messages: &[ChatMessage],
    ) -> Result2<(String, CallUsage)> {
        let llm = Llm::new(&self.app.env, &self.app.cfg)?;
        let o = llm.complete(&self.call(op), messages).await?;
        let usage = usage_of(op, &o);
        Ok((o.text, usage))
    }

    async fn stream(
        &self,
        op: Operation,
        messages: &[ChatMessage],
        on_delta: &mut dyn FnMut(&str),
    ) -> Result2<CallUsage> {
        let llm = Llm::new(&self.app.env, &self.app.cfg)?;
        let o = llm.stream(&self.call(op), messages, on_delta).await?;
        Ok(usage_of(op, &o))
    }
}

type Result2<T> = std::result::Result<T, ApiError>;

/// The app's sandbox, through its `UserAppSandboxService` object: every operation is one typed
/// [`SandboxCall`] sent with [`crate::services::sandbox`], creation through its `start` (the
/// owner's quota, as for the API).
pub struct SandboxClient<'a> {
    pub app: &'a App,
    pub app_id: AppId,
    pub user_id: UserId,
    /// Where the API was reached (`scheme://host[:port]`), for preview addresses.
    pub origin: Option<String>,
}

fn unavailable(m: String) -> ApiError {
    ApiError::new(503, ErrorCode::E006, m)
}

impl SandboxClient<'_> {
    /// A call whose reply is read as `T`; `Err`: the agent's message, or why it was not reached.
    async fn reply<T: serde::de::DeserializeOwned>(
        &self,
        call: &SandboxCall,
    ) -> std::result::Result<T, String> {
        sandbox_service::reply(&self.app.env, &self.app_id, call).await
    }

    pub(super) async fn status(&self) -> Result2<Option<crate::domain::sandbox::State>> {
        sandbox_service::lifecycle(&self.app.env, &self.app_id, &SandboxCall::Status).await
    }
}

impl Sandbox for SandboxClient<'_> {
    async fn ensure(&self, template: &str) -> Result2<bool> {
        let mut current = self.status().await?;
        if current
            .as_ref()
            .is_some_and(|s| s.status.is_active() && s.template != template)
        {
            // Made from another template (prepared while the blueprint was written): replaced.
            sandbox_service::lifecycle(&self.app.env, &self.app_id, &SandboxCall::Stop).await?;
            current = self.status().await?;
        }
        let fresh = !current.as_ref().is_some_and(|s| s.status.is_active());
        if fresh {
            let by = Owner {
                app_id: self.app_id.clone(),
                user_id: self.user_id.clone(),
            };
            let (env, cfg) = (&self.app.env, &self.app.cfg);
            let max = cfg.max_sandboxes_per_user;
            sandbox_service::start(env, &self.app.db()?, max, &by, template).await?;
        }
        let deadline = super::codegen_store::now() + SANDBOX_READY_TIMEOUT_MS;
        loop {
            let s = self
                .status()
                .await?
                .ok_or_else(|| unavailable("the sandbox disappeared".into()))?;
            match s.status {
                SandboxStatus::Ready => return Ok(fresh),
                SandboxStatus::Failed | SandboxStatus::Stopped => {
                    return Err(unavailable(format!(
                        "the sandbox is {}: {}",
                        s.status.as_str(),
                        s.reason.unwrap_or_default()
                    )))
                }
                _ if super::codegen_store::now() > deadline => {
                    return Err(unavailable(
                        "the sandbox did not become ready in time".into(),
                    ))
                }
                _ => worker::Delay::from(std::time::Duration::from_millis(500)).await,
            }
        }
    }

    async fn write(&self, files: &[(String, String)]) -> std::result::Result<(), String> {
        let call = SandboxCall::WriteFiles(WriteFiles {
            files: files
                .iter()
                .map(|(p, c)| FileInput::text(p.clone(), c.clone()))
                .collect(),
        });
        self.reply::<serde_json::Value>(&call).await.map(|_| ())
    }

    async fn delete(&self, path: &str) -> std::result::Result<(), String> {
        let path = RelPath::parse(path).map_err(|e| e.to_string())?;
        let call = SandboxCall::DeleteFile { path };
        match sandbox_service::send(&self.app.env, &self.app_id, &call).await {
            Ok(r) if matches!(r.status_code(), 204 | 404) => Ok(()),
            Ok(r) => Err(format!("the sandbox answered {}", r.status_code())),
            Err(e) => Err(format!("sandbox unreachable: {e}")),
        }
    }

    async fn install(&self) -> std::result::Result<(), String> {
        let r: ExecReply = self
            .reply(&SandboxCall::Exec(install_request()))
            .await
            .map_err(|e| format!("npm install could not run: {e}"))?;
        if r.exit_code == Some(0) {
            Ok(())
        } else if r.timed_out {
            Err("npm install timed out".into())
        } else {
            // The end of npm's report says what went wrong: all of it goes to the model (the
            // driver shows users a summary, `driver::user_text`).
            let code = r
                .exit_code
                .map(|c| format!("exit {c}"))
                .unwrap_or_else(|| "killed".into());
            Err(format!(
                "npm install failed ({code}):\n{}",
                r.stderr_tail(15).join("\n")
            ))
        }
    }

    async fn errors(&self) -> Vec<Diagnostic> {
        self.reply::<ErrorsReply>(&SandboxCall::Errors { since: None })
            .await
            .map(|r| r.errors)
            .unwrap_or_default()
    }

    async fn typecheck(&self) -> Vec<Diagnostic> {
        let call = SandboxCall::Typecheck(TypecheckRequest {
            timeout_ms: Some(TYPECHECK_TIMEOUT_MS),
        });
        match self.reply::<ErrorsReply>(&call).await {
            Ok(r) => r.errors,
            Err(e) => {
                worker::console_warn!("codegen: typecheck unavailable: {e}");
                Vec::new()
            }
        }
    }

    fn preview_url(&self) -> Option<String> {
        let api = worker::Url::parse(self.origin.as_deref()?).ok()?;
        let domain = &self.app.cfg.preview_domain;
        sandbox_service::preview_url(&self.app.keys, domain, &api, &self.app_id).ok()
    }
}

/// Connected clients: SSE streams (until the run ends; bounded queues, a consumer that falls
/// behind is dropped with [`lagged_event`]) and the object's WebSockets (each bounded by what
/// it has not acknowledged, [`SocketFanOut`]; one that falls behind is dropped with
/// [`socket_lagged_event`]).
pub struct Clients<'a> {
    pub state: &'a State,
    pub streams: &'a RefCell<FanOut>,
    pub sockets: &'a RefCell<SocketFanOut>,
}

/// The tag prefix that names one socket (its key in [`SocketFanOut`]).
pub const SOCKET_TAG: &str = "ws:";

/// A fresh socket key, given to the socket as its tag when it is accepted.
pub fn new_socket_key() -> String {
    use crate::domain::random;
    format!("{SOCKET_TAG}{}", random::hex(&random::bytes::<12>()))
}

/// One of the object's WebSockets, keyed by its tag.
pub struct Tagged<'a> {
    pub ws: WebSocket,
    pub state: &'a State,
}

impl Socket for Tagged<'_> {
    fn key(&self) -> Option<String> {
        socket_key(self.state, &self.ws)
    }
    fn send(&self, text: &str) {
        let _ = self.ws.send_with_str(text);
    }
    fn close(&self, code: u16, reason: &str) {
        let _ = self.ws.close(Some(code), Some(reason));
    }
}

/// The socket's key (from its tags).
pub fn socket_key(state: &State, ws: &WebSocket) -> Option<String> {
    state
        .get_tags(ws)
        .into_iter()
        .find(|t| t.starts_with(SOCKET_TAG))
}

/// The last event of a WebSocket dropped for leaving too many messages unacknowledged.
pub fn socket_lagged_event(cap: u64) -> AgentEvent {
    AgentEvent::Error {
        code: ErrorCode::E003,
        message: format!(
            "this socket left more than {cap} messages unacknowledged and was closed; \
             reconnect with ?since=<last event id> to resume"
        ),
        recoverable: true,
    }
}

impl Clients<'_> {
    /// Sends one event to one socket, within its bound.
    pub fn send_to(&self, ws: &WebSocket, ev: &AgentEvent) -> Sent {
        let mut sockets = self.sockets.borrow_mut();
        let cap = sockets.cap();
        let tagged = Tagged {
            ws: ws.clone(),
            state: self.state,
        };
        sockets.send(&tagged, &ev.to_json(), || {
            socket_lagged_event(cap).to_json()
        })
    }
}

/// The last event of an SSE stream dropped for falling too far behind.
pub fn lagged_event(cap: usize) -> AgentEvent {
    AgentEvent::Error {
        code: ErrorCode::E003,
        message: format!(
            "this event stream fell more than {cap} events behind and was closed; reconnect \
             with Last-Event-ID to resume"
        ),
        recoverable: true,
    }
}

/// A WebSocket frame: the event's JSON (always an object), with its stored id when it has one.
pub fn ws_text(json: &str, seq: Option<u64>) -> String {
    match (seq, json.strip_prefix('{')) {
        (Some(id), Some(rest)) => format!("{{\"id\":{id},{rest}"),
        _ => json.to_string(),
    }
}

impl Events for Clients<'_> {
    fn send(&self, ev: &AgentEvent, id: Option<u64>) {
        let sse = match id {
            Some(id) => ev.to_sse_with_id(id),
            None => ev.to_sse(),
        };
        let mut streams = self.streams.borrow_mut();
        let cap = streams.cap();
        let dropped = streams.publish(sse.as_bytes(), || lagged_event(cap).to_sse().into_bytes());
        if dropped > 0 {
            worker::console_warn!("codegen: dropped {dropped} SSE client(s) that fell behind");
        }
        let text = ws_text(&ev.to_json(), id);
        let sockets: Vec<Tagged> = self
            .state
            .get_websockets()
            .into_iter()
            .map(|ws| Tagged {
                ws,
                state: self.state,
            })
            .collect();
        let mut fanout = self.sockets.borrow_mut();
        let cap = fanout.cap();
        let dropped = fanout.publish(&sockets, &text, || socket_lagged_event(cap).to_json());
        if dropped > 0 {
            worker::console_warn!(
                "codegen: dropped {dropped} WebSocket client(s) that left {cap} messages unacknowledged"
            );
        }
    }

    fn log(&self, line: &str) {
        worker::console_log!("{line}");
    }
}
