//! `UserAppSandboxService`: one object per app sandbox. It owns the sandbox's lifecycle
//! ([`crate::domain::sandbox::Status`]), persisted in its SQLite storage so a restarted object
//! knows where it was, and it is the only path to the `byte-sandbox` agent that runs the app:
//! a Cloudflare Container in production, a local process in `make dev` (reached through
//! [`super::sandbox_agent`]).
//!
//! Contract ([`crate::domain::sandbox_call`], which also names the binding): every request is
//! one [`SandboxCall`], read from the `X-Byte-Call` header or, for a large one, from the body,
//! and parsed once (a malformed call is a 400). A call naming its user ([`CALLER_HEADER`]) is
//! first admitted ([`admit`]: the owner's, while active) or refused with a 404 whose
//! [`REFUSED_HEADER`] says why. Lifecycle calls are answered here with the
//! [`SandboxState`] (404: none); every other call becomes the agent request
//! [`SandboxCall::agent_route`] names, and the agent's answer goes back unchanged (streams and
//! WebSocket upgrades included). A preview call forwards the request it came on (method, body,
//! headers after the preview cookie policy).
//!
//! Storage ([`super::sandbox_storage`]): the state row and the owner's last activity, and the
//! admission of an owner's call, which reads them.
//!
//! Deletion ([`super::sandbox_retire`]): `retire` stops the sandbox for good and `erase` empties
//! the storage; a retired object refuses every other call and drops in-flight steps' outcomes.
//!
//! Invariants: lifecycle steps run from the alarm, one at a time, each idempotent and persisted
//! before the next, so an evicted object resumes where it stopped; a ready sandbox idle for
//! `SANDBOX_IDLE_TIMEOUT_SECONDS` is stopped by the alarm; each step is mirrored into the
//! owner's D1 row through `services::db` (the quota counts those rows). Every body it sends the
//! agent and every reply it reads is a `byte_protocol` type; only preview requests carry the
//! client's headers, and then only the app's own cookies (the preview cookie policy, see
//! `routes/preview.rs`).

use super::sandbox_agent::step;
use crate::domain::error::ApiError;
use crate::domain::sandbox::{
    install_failure, install_request, preview_label, server_down_reason, State as SandboxState,
    Status,
};
use crate::domain::sandbox_call::{Owner, SandboxCall, CALL_HEADER};
use byte_protocol::exec::ExecReply;
use byte_protocol::process::{ServerInfo, ServerStatus, StartRequest};
use byte_protocol::workspace::{CreateWorkspace, WorkspaceCreated};
use std::cell::{Cell, RefCell};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

const READY_TIMEOUT_MS: i64 = 90_000;

#[durable_object]
pub struct UserAppSandboxService {
    pub(super) state: State,
    pub(super) env: Env,
    pub(super) cached: RefCell<Option<SandboxState>>,
    /// The owner's last activity (see [`Self::touch`]); `None` until read.
    pub(super) owner_activity: std::cell::Cell<Option<i64>>,
    /// The app is deleted ([`SandboxCall::Retire`]): nothing is started, saved or forwarded.
    pub(super) retired: Cell<bool>,
    /// Lifecycle steps are running in this isolate (the alarm's [`Self::advance`]).
    pub(super) advancing: Cell<bool>,
}

pub(super) fn now() -> i64 {
    js_sys::Date::now() as i64
}

/// The deployment's configuration, parsed once per isolate (`SANDBOX_*` included); a malformed
/// one fails every call, naming the bad settings.
pub(super) fn config(env: &Env) -> Result<std::rc::Rc<crate::domain::config::Config>> {
    crate::http::config(env)
        .map_err(|e| worker::Error::RustError(format!("configuration error: {e}")))
}

impl UserAppSandboxService {
    pub(super) fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    /// Moves to `next` (if the lifecycle allows it), persists, mirrors to D1.
    async fn transition(
        &self,
        s: &mut SandboxState,
        next: Status,
        reason: Option<String>,
    ) -> Result<()> {
        if self.retired.get() {
            // The app was deleted while this step ran: its outcome is dropped.
            return Ok(());
        }
        // A step that ran long may have been overtaken (the owner stopped or re-created the
        // sandbox meanwhile): the persisted state wins and this step's outcome is dropped.
        // A stop always wins: it applies to whatever state is current (else a stop racing a
        // create step would be lost and the quota slot kept).
        if let Some(current) = self.load()? {
            if current.status != s.status && next != Status::Creating {
                *s = current;
                if next != Status::Stopped {
                    return Ok(());
                }
            }
        }
        if s.status != next && !s.status.can_move_to(next) {
            return Err(worker::Error::RustError(format!(
                "illegal sandbox transition {:?} → {next:?}",
                s.status
            )));
        }
        s.status = next;
        s.reason = reason;
        s.updated_at_ms = now();
        self.save(s)?;
        // The mirror is best effort: the object's own state is the truth, and the next step
        // writes it again.
        if let Ok(db) = self.env.d1(crate::services::db::BINDING) {
            if let Err(e) =
                crate::services::db::set_sandbox_status(&db, &s.app_id, &s.user_id, next).await
            {
                worker::console_error!("sandbox {}: D1 status not updated: {e:?}", s.app_id);
            }
        }
        Ok(())
    }

    fn ws(s: &SandboxState) -> String {
        preview_label(s.app_id.as_str())
            .unwrap_or("invalid")
            .to_string()
    }

    /// Runs lifecycle steps until the sandbox is ready, failed or stopped.
    async fn advance(&self) -> Result<()> {
        let Some(mut s) = self.load()? else {
            return Ok(());
        };
        let ws = Self::ws(&s);
        loop {
            if self.retired.get() {
                return Ok(());
            }
            match s.status {
                Status::Creating => {
                    let body = CreateWorkspace {
                        template: Some(s.template.clone()),
                    };
                    let put = self
                        .call::<WorkspaceCreated>(
                            Method::Put,
                            &format!("/v1/workspaces/{ws}"),
                            Some(&body),
                        )
                        .await;
                    match step(put, "workspace creation failed") {
                        Ok(_) => self.transition(&mut s, Status::WritingFiles, None).await?,
                        Err(why) => return self.fail(&mut s, why).await,
                    }
                }
                // Template files were copied by the agent; generated files arrive through the API.
                Status::WritingFiles => self.transition(&mut s, Status::Installing, None).await?,
                Status::Installing => {
                    let body = install_request();
                    let ran = self
                        .call::<ExecReply>(
                            Method::Post,
                            &format!("/v1/workspaces/{ws}/exec"),
                            Some(&body),
                        )
                        .await;
                    match ran {
                        Ok(Ok(r)) if r.success() => {
                            self.transition(&mut s, Status::Starting, None).await?
                        }
                        Ok(Ok(r)) => {
                            worker::console_error!(
                                "sandbox {}: dependency install failed: {}",
                                s.app_id,
                                r.stderr
                            );
                            return self.fail(&mut s, install_failure(&r)).await;
                        }
                        Ok(Err(e)) => {
                            return self
                                .fail(&mut s, format!("dependency install could not run {e}"))
                                .await
                        }
                        Err(e) => {
                            return self
                                .fail(&mut s, format!("sandbox agent unreachable: {e}"))
                                .await
                        }
                    }
                }
                Status::Starting => {
                    let start = self
                        .call::<ServerInfo>(
                            Method::Post,
                            &format!("/v1/workspaces/{ws}/process/start"),
                            Some(&StartRequest::default()),
                        )
                        .await;
                    if let Err(why) = step(start, "dev server did not start") {
                        return self.fail(&mut s, why).await;
                    }
                    let deadline = now() + READY_TIMEOUT_MS;
                    loop {
                        if self.retired.get() {
                            return Ok(());
                        }
                        // An unreadable or refused answer counts as "not yet", until the deadline.
                        let status = self.server(&ws).await?.ok();
                        match status {
                            Some(p) if p.status == ServerStatus::Running => break,
                            Some(p) if p.status.is_down() => {
                                return self.fail(&mut s, server_down_reason(&p)).await
                            }
                            _ if now() > deadline => {
                                return self
                                    .fail(&mut s, "dev server did not become ready in time".into())
                                    .await
                            }
                            _ => worker::Delay::from(std::time::Duration::from_millis(250)).await,
                        }
                    }
                    s.last_activity_ms = now();
                    self.transition(&mut s, Status::Ready, None).await?;
                    self.schedule_idle(&s).await?;
                    return Ok(());
                }
                Status::Ready => {
                    let idle_ms = self.idle_timeout_ms()?;
                    if now() >= crate::domain::sandbox::idle_deadline(s.last_activity_ms, idle_ms) {
                        self.stop(&mut s, "stopped after being idle".into()).await?;
                    } else {
                        self.schedule_idle(&s).await?;
                    }
                    return Ok(());
                }
                Status::Failed | Status::Stopped => return Ok(()),
            }
        }
    }

    fn idle_timeout_ms(&self) -> Result<i64> {
        Ok(config(&self.env)?.sandbox_idle_timeout_ms)
    }

    async fn schedule_idle(&self, s: &SandboxState) -> Result<()> {
        let at = crate::domain::sandbox::idle_deadline(s.last_activity_ms, self.idle_timeout_ms()?)
            + 1000;
        super::set_alarm_at(&self.state.storage(), at).await
    }

    /// Fails the sandbox: the full reason goes to the log; the state (which its owner reads)
    /// keeps a summary without the agent's or npm's raw text, paths or addresses.
    async fn fail(&self, s: &mut SandboxState, reason: String) -> Result<()> {
        worker::console_error!("sandbox {} failed: {reason}", s.app_id);
        let public = match reason.strip_prefix("sandbox agent unreachable") {
            Some(_) => "sandbox agent unreachable".to_string(),
            None => crate::domain::error::summarize_upstream(&reason),
        };
        self.transition(s, Status::Failed, Some(public)).await
    }

    async fn stop(&self, s: &mut SandboxState, reason: String) -> Result<()> {
        let ws = Self::ws(s);
        let _ = self
            .call::<ServerInfo>(
                Method::Post,
                &format!("/v1/workspaces/{ws}/process/stop"),
                None::<&()>,
            )
            .await;
        self.stop_container()?;
        self.transition(s, Status::Stopped, Some(reason)).await?;
        self.state.storage().delete_alarm().await
    }

    /// A lifecycle call, answered with the state (404: no sandbox).
    async fn lifecycle(&self, call: SandboxCall) -> Result<Response> {
        match call {
            SandboxCall::Create {
                by: Owner { app_id, user_id },
                template,
            } => {
                let mut s = match self.load()? {
                    Some(s) if s.status.is_active() => return Response::from_json(&s),
                    Some(mut s) => {
                        s.template = template;
                        s
                    }
                    None => SandboxState {
                        app_id,
                        user_id,
                        template,
                        status: Status::Stopped,
                        reason: None,
                        instance_type: config(&self.env)?.sandbox_instance_type.as_str().into(),
                        updated_at_ms: now(),
                        last_activity_ms: now(),
                    },
                };
                s.last_activity_ms = now();
                self.set_owner_activity(s.last_activity_ms)?;
                self.transition(&mut s, Status::Creating, None).await?;
                // The alarm drives the steps, so they survive this request and an eviction.
                super::set_alarm_at(&self.state.storage(), now()).await?;
                Response::from_json(&s)
            }
            SandboxCall::Status => match self.load()? {
                Some(mut s) => {
                    if s.status == Status::Ready {
                        self.check_server(&mut s).await?;
                    }
                    Response::from_json(&s)
                }
                None => Response::error("no sandbox", 404),
            },
            SandboxCall::Stop => match self.load()? {
                Some(mut s) if s.status != Status::Stopped => {
                    self.stop(&mut s, "stopped by the owner".into()).await?;
                    Response::from_json(&s)
                }
                Some(s) => Response::from_json(&s),
                None => Response::error("no sandbox", 404),
            },
            other => Response::error(format!("{} is not a lifecycle call", other.to_json()), 400),
        }
    }

    /// A ready sandbox whose dev server died is reported as failed with the exit code (and the
    /// agent does not restart it behind anyone's back); re-creating it starts it again.
    async fn check_server(&self, s: &mut SandboxState) -> Result<()> {
        let ws = Self::ws(s);
        match self.server(&ws).await {
            Ok(Ok(p)) if p.status.is_down() => self.fail(s, server_down_reason(&p)).await,
            Ok(_) => Ok(()),
            Err(e) => {
                self.fail(s, format!("sandbox agent unreachable: {e}"))
                    .await
            }
        }
    }

    /// Reads the request's call: the header's, else the body's (parsed once either way).
    async fn serve(&self, mut req: Request) -> Result<Response> {
        let raw = match req.headers().get(CALL_HEADER)? {
            Some(h) => h.into_bytes(),
            None => req.bytes().await?,
        };
        let call = match SandboxCall::parse(&raw) {
            Ok(c) => c,
            Err(e) => return Ok(crate::http::error_response(&ApiError::validation(e))),
        };
        if call.is_erasure() {
            return self.erasure(call).await;
        }
        if let Some(refused) = self.refuse_caller(&req)? {
            return Ok(refused);
        }
        if self.retired.get() {
            return Response::error("no sandbox (the app is deleted)", 404);
        }
        if call.is_lifecycle() {
            return self.lifecycle(call).await;
        }
        let Some(s) = self.load()? else {
            return Response::error("no sandbox", 404);
        };
        match call.agent_route(&Self::ws(&s)) {
            Some(route) => self.forward(req, route).await,
            None => Response::error("not a workspace call", 400),
        }
    }
}

impl DurableObject for UserAppSandboxService {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            cached: RefCell::new(None),
            owner_activity: std::cell::Cell::new(None),
            retired: Cell::new(false),
            advancing: Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        self.serve(req).await
    }

    async fn alarm(&self) -> Result<Response> {
        if self.retired.get() {
            return Response::ok("");
        }
        self.advancing.set(true);
        let advanced = self.advance().await;
        self.advancing.set(false);
        advanced?;
        Response::ok("")
    }
}
