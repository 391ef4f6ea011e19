//! `ProjectPlanner`: one object per orchestration project, a shell around the ticket generation
//! driver ([`crate::domain::orchestrator::generation::driver`]). A start stores the job (replacing
//! any earlier one), arms the alarm and answers 202; the alarm runs the job. The job is saved in
//! the object's storage after each step, so a job whose isolate died is picked up by the
//! watchdog alarm and continued from its last step (a step already done is not redone).
//!
//! Invariants: one job per project (a newer start replaces the stored job; the older run then
//! stops at its next save without writing); the job leaves storage only when its run ended.

use crate::domain::error::ApiError;
use crate::domain::ids::TicketId;
use crate::domain::orchestrator::generation::call::PlannerCall;
use crate::domain::orchestrator::generation::driver::{Job, JobStore, Outcome, Planner};
use crate::http::App;
use crate::services::now_ms;
use crate::services::orchestrator_planner::{D1Records, HubPublisher, PlannerModel};
use std::cell::Cell;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// A running job re-arms its watchdog this far ahead (a model call may take minutes).
const WATCHDOG_MS: i64 = 60_000;
const JOB: &str = "job";

#[durable_object]
pub struct ProjectPlanner {
    state: State,
    env: Env,
    /// A job runs in this isolate.
    busy: Cell<bool>,
}

/// The job storage port: saves only while the stored job is this run's.
struct Storage<'a> {
    storage: worker::Storage,
    run: &'a str,
}

impl JobStore for Storage<'_> {
    async fn save(&self, job: &Job) -> std::result::Result<bool, ApiError> {
        let stored = self.storage.get::<Job>(JOB).await?;
        if stored.is_some_and(|j| j.run != self.run) {
            return Ok(false);
        }
        self.storage.put(JOB, job).await?;
        Ok(true)
    }
}

impl ProjectPlanner {
    async fn job(&self) -> Result<Option<Job>> {
        self.state.storage().get::<Job>(JOB).await
    }

    async fn serve(&self, mut req: Request) -> Result<Response> {
        let body = req.bytes().await?;
        match PlannerCall::parse(&body) {
            Ok(PlannerCall::Start { job }) => {
                let storage = self.state.storage();
                storage.put(JOB, &job).await?;
                super::set_alarm_at(&storage, now_ms()).await?;
                Response::ok("started").map(|r| r.with_status(202))
            }
            Err(e) => Response::error(e, 400),
        }
    }

    /// Runs the stored job, then any job stored meanwhile (from the alarm).
    async fn run(&self) -> Result<()> {
        let storage = self.state.storage();
        if self.busy.replace(true) {
            // A job runs here still: keep a watchdog armed, so a job whose isolate dies later
            // is continued.
            return super::set_alarm_at(&storage, now_ms() + WATCHDOG_MS).await;
        }
        let outcome = self.drain().await;
        self.busy.set(false);
        outcome
    }

    async fn drain(&self) -> Result<()> {
        let storage = self.state.storage();
        while let Some(mut job) = self.job().await? {
            super::set_alarm_at(&storage, now_ms() + WATCHDOG_MS).await?;
            let run = job.run.clone();
            match self.work(&mut job).await {
                Ok(Outcome::Failed(e)) => worker::console_warn!(
                    "planner: generation of {} failed: {}",
                    job.project_id,
                    e.message
                ),
                Ok(_) => {}
                Err(e) => {
                    // Misconfigured (no D1, no configuration): keep the job for the watchdog.
                    worker::console_error!("planner: {}: {e}", job.project_id);
                    return Ok(());
                }
            }
            // Forget the job unless a newer one replaced it meanwhile (then run that).
            if self.job().await?.is_some_and(|j| j.run == run) {
                storage.delete(JOB).await?;
            }
        }
        storage.delete_alarm().await?;
        Ok(())
    }

    async fn work(&self, job: &mut Job) -> std::result::Result<Outcome, String> {
        let app = App::new(self.env.clone())?;
        let db = app.db().map_err(|e| e.message)?;
        let model = PlannerModel {
            app: &app,
            user_id: job.user_id.clone(),
            app_id: job.app_id.clone(),
        };
        let records = D1Records { env: &self.env, db };
        let run = job.run.clone();
        let store = Storage {
            storage: self.state.storage(),
            run: &run,
        };
        let hub = HubPublisher { env: &self.env };
        let new_id = TicketId::generate;
        let planner = Planner {
            model: &model,
            records: &records,
            store: &store,
            hub: &hub,
            new_id: &new_id,
        };
        Ok(planner.run(job).await)
    }
}

impl DurableObject for ProjectPlanner {
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
        self.run().await?;
        Response::ok("")
    }
}
