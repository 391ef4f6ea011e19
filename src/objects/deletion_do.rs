//! `AppDeletion`: one object per deleted app (named by the app's id), running the app's
//! deletion plan ([`crate::domain::deletion`]) until it is complete: once inside the `DELETE`
//! request, then from its alarm with backoff. Its storage holds only the owner (so the alarm
//! knows whose deletion it runs); the progress lives in D1 (`app_deletions`), journalled after
//! every step. Its callers (the app and account routes) use [`send`].
//!
//! Invariants: nothing is erased unless D1 recorded the deletion (an alarm that finds no record
//! forgets everything and stops, so a deletion whose batch never committed erases nothing); one
//! attempt at a time per isolate; a finished deletion leaves this object empty (no storage, no
//! alarm).

use crate::domain::codegen::agent_call::{AgentCall, CALL_HEADER};
use crate::domain::deletion::{
    attempt, files_prefix, DeletionCall, Executor, Journal, Outcome, Progress, Step, APP_PLAN,
};
use crate::domain::deploy::call::{DeployCall, BINDING as DEPLOYER};
use crate::domain::error::ApiError;
use crate::domain::sandbox_call::{Owner, SandboxCall};
use crate::services::{db, r2, sandbox as sandbox_service};
use serde_json::json;
use std::cell::Cell;
use worker::{
    durable_object, D1Database, DurableObject, Env, Headers, Method, Request, RequestInit,
    Response, Result, State,
};

pub use crate::domain::deletion::BINDING;

/// The safety alarm armed before the deletion is recorded (the request normally runs or resumes
/// the plan long before it fires).
const SAFETY_MS: i64 = 60_000;
/// When an attempt could not even start (D1 unreachable): try again after this long.
const RETRY_FAULT_MS: i64 = 30_000;

/// Sends `call` to the deletion object of its app.
pub async fn send(env: &Env, call: &DeletionCall) -> Result<Response> {
    let headers = Headers::new();
    headers.set(CALL_HEADER, &call.to_json())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let req = Request::new_with_init("https://deletion/", &init)?;
    super::stub(env, BINDING, call.owner().app_id.as_str())?
        .fetch_with_request(req)
        .await
}

#[durable_object]
pub struct AppDeletion {
    state: State,
    env: Env,
    /// An attempt is under way in this isolate.
    busy: Cell<bool>,
}

fn now() -> i64 {
    js_sys::Date::now() as i64
}

fn fault(e: ApiError) -> worker::Error {
    worker::Error::RustError(e.message)
}

impl AppDeletion {
    async fn remember(&self, by: &Owner, alarm_at: i64) -> Result<()> {
        let storage = self.state.storage();
        storage.put("owner", by).await?;
        super::set_alarm_at(&storage, alarm_at).await
    }

    async fn forget(&self) -> Result<()> {
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await
    }

    /// One attempt at the plan (none when one is under way here: it schedules its own retry).
    async fn run(&self, by: &Owner) -> Result<Option<Progress>> {
        if self.busy.replace(true) {
            return Ok(None);
        }
        let r = self.attempt(by).await;
        self.busy.set(false);
        if let Err(e) = &r {
            worker::console_error!("deleting {}: {e}", by.app_id);
            super::set_alarm_at(&self.state.storage(), now() + RETRY_FAULT_MS).await?;
        }
        r
    }

    async fn attempt(&self, by: &Owner) -> Result<Option<Progress>> {
        let db = self.env.d1(db::BINDING)?;
        let Some(row) = db::app_deletion(&db, &by.app_id, &by.user_id)
            .await
            .map_err(fault)?
        else {
            self.forget().await?;
            return Ok(None);
        };
        let mut p = Progress::from_row(
            &row.next_step,
            row.holds_sandbox != 0.0,
            row.attempts as u32,
            row.last_error,
        );
        let plan = Plan {
            env: &self.env,
            db: &db,
            by,
        };
        match attempt(&mut p, &plan, &plan, now()).await {
            Outcome::Done => self.forget().await?,
            Outcome::RetryAt(at) => {
                worker::console_error!(
                    "deleting {} (attempt {}): {}; retrying",
                    by.app_id,
                    p.attempts,
                    p.last_error.as_deref().unwrap_or("progress not recorded")
                );
                super::set_alarm_at(&self.state.storage(), at).await?;
            }
        }
        Ok(Some(p))
    }

    async fn serve(&self, mut req: Request) -> Result<Response> {
        let raw = match req.headers().get(CALL_HEADER)? {
            Some(h) => h.into_bytes(),
            None => req.bytes().await?,
        };
        let call = match DeletionCall::parse(&raw) {
            Ok(c) => c,
            Err(e) => return Response::error(e, 400),
        };
        match call {
            DeletionCall::DeleteApp { by } => {
                self.remember(&by, now() + SAFETY_MS).await?;
                let db = self.env.d1(db::BINDING)?;
                let first = APP_PLAN[0].name();
                if !db::schedule_app_deletion(&db, &by.app_id, &by.user_id, first)
                    .await
                    .map_err(fault)?
                {
                    // Deleted meanwhile: a pending deletion is resumed, else nothing is left.
                    match db::app_deletion(&db, &by.app_id, &by.user_id)
                        .await
                        .map_err(fault)?
                    {
                        Some(_) => super::set_alarm_at(&self.state.storage(), now()).await?,
                        None => self.forget().await?,
                    }
                    return Response::error("no such app", 404);
                }
                // The app is deleted whatever this attempt does: a failed one retries by alarm.
                let p = self.run(&by).await.unwrap_or(None);
                Response::from_json(&json!({
                    "done": p.as_ref().is_some_and(|p| p.next.is_none() && p.last_error.is_none()),
                    "lastError": p.and_then(|p| p.last_error),
                }))
            }
            DeletionCall::Prepare { by } => {
                self.remember(&by, now() + SAFETY_MS).await?;
                Response::ok("prepared")
            }
            DeletionCall::Resume { by } => {
                self.remember(&by, now()).await?;
                Response::ok("resumed")
            }
        }
    }
}

/// The plan's adapters for one app: its other objects, R2, and the D1 journal.
struct Plan<'a> {
    env: &'a Env,
    db: &'a D1Database,
    by: &'a Owner,
}

/// A 2xx answer is success; anything else says why not.
async fn answered(r: Result<Response>) -> std::result::Result<(), String> {
    let mut r = r.map_err(|e| format!("unreachable: {e}"))?;
    let status = r.status_code();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = r.text().await.unwrap_or_default();
    Err(format!(
        "{status} {}",
        body.chars().take(300).collect::<String>()
    ))
}

async fn to_deployer(env: &Env, call: &DeployCall) -> Result<Response> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(call.to_json().into()));
    let req = Request::new_with_init("https://deployer/", &init)?;
    super::stub(env, DEPLOYER, call.owner().app_id.as_str())?
        .fetch_with_request(req)
        .await
}

impl Executor for Plan<'_> {
    async fn run(&self, step: Step) -> std::result::Result<(), String> {
        let app_id = &self.by.app_id;
        match step {
            Step::EraseGenerator => {
                let call = AgentCall::Erase {
                    app_id: app_id.clone(),
                };
                answered(crate::services::deploy::to_agent(self.env, &call).await).await
            }
            Step::StopSandbox => {
                let call = SandboxCall::Retire {
                    app_id: app_id.clone(),
                };
                answered(sandbox_service::send(self.env, app_id, &call).await).await
            }
            Step::EraseSandbox => {
                answered(sandbox_service::send(self.env, app_id, &SandboxCall::Erase).await).await
            }
            Step::Undeploy => {
                let call = DeployCall::Erase {
                    by: self.by.clone(),
                };
                answered(to_deployer(self.env, &call).await).await
            }
            Step::DeleteFiles => {
                r2::delete_prefix(self.env, "APP_FILES", &files_prefix(app_id.as_str()))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

impl Journal for Plan<'_> {
    async fn record(&self, p: &Progress) -> std::result::Result<(), String> {
        db::record_app_deletion(
            self.db,
            &self.by.app_id,
            &self.by.user_id,
            p.next_name(),
            p.holds_sandbox,
            p.attempts,
            p.last_error.as_deref(),
        )
        .await
        .map_err(|e| e.message)
    }

    async fn finish(&self) -> std::result::Result<(), String> {
        db::finish_app_deletion(self.db, &self.by.app_id, &self.by.user_id)
            .await
            .map_err(|e| e.message)
    }
}

impl DurableObject for AppDeletion {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            busy: Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        self.serve(req).await
    }

    async fn alarm(&self) -> Result<Response> {
        if let Some(by) = self.state.storage().get::<Owner>("owner").await? {
            self.run(&by).await?;
        }
        Response::ok("")
    }
}
