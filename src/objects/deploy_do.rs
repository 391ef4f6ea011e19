//! `AppDeployer`: one object per app, a shell around the deploy driver
//! ([`crate::domain::deploy::pipeline`]). It serialises the app's deployments: a deploy or
//! rollback records a `building` row and the job in storage, arms the alarm and answers; the
//! alarm runs the job. A second deploy while one is under way is a 409. A watchdog alarm is
//! armed while a job runs, so a job whose isolate died is run again from the start (every step
//! is idempotent: the blobs are content-addressed, the records keyed by number).

use crate::domain::deploy::call::{app_url, DeployCall};
use crate::domain::deploy::pipeline::{AppHosting, DeployFailure, Deployer, Job};
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::sandbox_call::Owner;
use crate::http::{error_response, json, App};
use crate::services::deploy::{self as ports, AgentEvents, D1Records, R2Artifacts, SandboxBuilder};
use crate::services::hosting::Hosted;
use crate::services::{deployments, now_ms, r2};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

/// A running job re-arms its watchdog this far ahead (a build may take minutes).
const WATCHDOG_MS: i64 = 60_000;

/// The job in storage while a deployment is under way.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredJob {
    by: Owner,
    number: u32,
    url: String,
    created_at: i64,
    /// A rollback republishes this deployment's artifact.
    rollback_of: Option<u32>,
}

#[durable_object]
pub struct AppDeployer {
    state: State,
    env: Env,
    /// A job runs in this isolate.
    busy: Cell<bool>,
}

fn conflict(number: u32) -> ApiError {
    ApiError::new(
        409,
        ErrorCode::E007,
        format!("deployment #{number} of this app is still under way; wait for it to finish"),
    )
}

impl AppDeployer {
    async fn job(&self) -> Result<Option<StoredJob>> {
        self.state.storage().get::<StoredJob>("job").await
    }

    async fn serve(&self, mut req: Request) -> Result<Response> {
        let body = req.bytes().await?;
        let call = match DeployCall::parse(&body) {
            Ok(c) => c,
            Err(e) => return Response::error(e, 400),
        };
        let app = match App::new(self.env.clone()) {
            Ok(a) => a,
            Err(e) => {
                worker::console_error!("misconfigured: {e}");
                return Ok(error_response(&ApiError::unavailable(
                    "service misconfigured",
                )));
            }
        };
        let r = match call {
            DeployCall::Deploy { by, origin } => self.start(&app, by, &origin, None).await,
            DeployCall::Rollback { by, origin, number } => {
                self.start(&app, by, &origin, Some(number)).await
            }
            DeployCall::Undeploy { by } => self.undeploy(&app, &by).await,
            DeployCall::Erase { by } => self.erase(&app, &by).await,
        };
        Ok(r.unwrap_or_else(|e| error_response(&e)))
    }

    /// Records the deployment and its job, and arms the alarm.
    async fn start(
        &self,
        app: &App,
        by: Owner,
        origin: &str,
        rollback_of: Option<u32>,
    ) -> std::result::Result<Response, ApiError> {
        if let Some(j) = self.job().await? {
            return Err(conflict(j.number));
        }
        let db = app.db()?;
        if let Some(n) = rollback_of {
            // Only a deployment that once served has an artifact to republish.
            deployments::get(&db, by.app_id.as_str(), n)
                .await?
                .filter(|d| d.content_hash.is_some())
                .ok_or_else(|| ApiError::not_found("deployment"))?;
        }
        // No job here means no deployment is under way: a `building` row is an orphan.
        deployments::fail_orphans(&db, by.app_id.as_str()).await?;
        let url = app_url(by.app_id.as_str(), &app.cfg.deploy.domain, origin)
            .ok_or_else(|| ApiError::not_found("app"))?;
        let Some(dep) =
            deployments::start(&db, by.app_id.as_str(), by.user_id.as_str(), rollback_of).await?
        else {
            return Err(ApiError::new(
                409,
                ErrorCode::E007,
                "another deployment of this app is under way",
            ));
        };
        let job = StoredJob {
            by,
            number: dep.number,
            url,
            created_at: now_ms(),
            rollback_of,
        };
        let storage = self.state.storage();
        storage.put("job", &job).await?;
        super::set_alarm_at(&storage, now_ms()).await?;
        json(202, &dep)
    }

    /// Runs the stored job (from the alarm).
    async fn run(&self) -> Result<()> {
        let Some(job) = self.job().await? else {
            return Ok(());
        };
        let storage = self.state.storage();
        if self.busy.replace(true) {
            // The job runs here still (a build may outlast the watchdog): keep one armed, so
            // a job whose isolate dies later is run again.
            return super::set_alarm_at(&storage, now_ms() + WATCHDOG_MS).await;
        }
        super::set_alarm_at(&storage, now_ms() + WATCHDOG_MS).await?;
        let outcome = self.work(&job).await;
        self.busy.set(false);
        if let Err(e) = outcome {
            worker::console_error!("deploy: job {} of {}: {e}", job.number, job.by.app_id);
        }
        storage.delete("job").await?;
        storage.delete_alarm().await?;
        Ok(())
    }

    async fn work(&self, job: &StoredJob) -> std::result::Result<(), String> {
        let app = App::new(self.env.clone())?;
        let db = app.db().map_err(|e| e.message)?;
        let bucket = self.env.bucket(ports::BUCKET).map_err(|e| e.to_string())?;
        let builder = SandboxBuilder {
            env: &self.env,
            by: job.by.clone(),
            timeout_ms: app.cfg.deploy.build_timeout_ms,
        };
        let artifacts = R2Artifacts {
            bucket: bucket.clone(),
        };
        let records = D1Records {
            db: &db,
            app_id: job.by.app_id.to_string(),
        };
        let events = AgentEvents {
            env: &self.env,
            app_id: job.by.app_id.to_string(),
        };
        let spec = Job {
            app_id: job.by.app_id.to_string(),
            number: job.number,
            created_at: job.created_at,
            url: job.url.clone(),
        };
        let hosting = Hosted::of(&app);
        let d = Deployer {
            builder: &builder,
            artifacts: &artifacts,
            hosting: &hosting,
            records: &records,
            events: &events,
        };
        let result = match job.rollback_of {
            None => d.deploy(&spec).await.map(|_| ()),
            Some(n) => match ports::load(&bucket, job.by.app_id.as_str(), n).await {
                Ok(Some((m, b))) => d.rollback(&spec, m, b).await.map(|_| ()),
                Ok(None) => Err(DeployFailure::new(format!(
                    "deployment #{n} has no stored artifact"
                ))),
                Err(e) => Err(DeployFailure::new(format!(
                    "reading deployment #{n} failed: {e}"
                ))),
            },
        };
        if let Err(f) = &result {
            // A rollback that could not even read its artifact never reached the driver's
            // records: record it here (a no-op when the driver already did).
            let _ = deployments::mark_failed(&db, job.by.app_id.as_str(), job.number, f).await;
        }
        Ok(())
    }

    async fn undeploy(&self, app: &App, by: &Owner) -> std::result::Result<Response, ApiError> {
        if let Some(j) = self.job().await? {
            return Err(conflict(j.number));
        }
        let db = app.db()?;
        if deployments::live(&db, by.app_id.as_str()).await?.is_none() {
            return Err(ApiError::not_found("deployment (the app is not deployed)"));
        }
        Hosted::of(app)
            .unpublish(by.app_id.as_str())
            .await
            .map_err(|f| ApiError::new(502, ErrorCode::E007, f.message))?;
        deployments::undeploy(&db, by.app_id.as_str()).await?;
        json(200, &serde_json::json!({ "undeployed": true }))
    }

    /// The app is deleted: wait for a running job, unpublish, delete the artifacts, forget.
    async fn erase(&self, app: &App, by: &Owner) -> std::result::Result<Response, ApiError> {
        if self.busy.get() {
            return Ok(Response::error("a deployment is still running", 409)?);
        }
        Hosted::of(app)
            .unpublish(by.app_id.as_str())
            .await
            .map_err(|f| ApiError::new(502, ErrorCode::E007, f.message))?;
        r2::delete_prefix(
            &self.env,
            ports::BUCKET,
            &crate::domain::deploy::manifest::prefix(by.app_id.as_str()),
        )
        .await?;
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await?;
        Ok(Response::ok("erased")?)
    }
}

impl DurableObject for AppDeployer {
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
