//! Ticket generation on the Workers side: [`start`] hands a project's generation to its
//! `ProjectPlanner` object (a Durable Object driven by its alarm, resumable), and the adapters
//! that object runs the domain driver ([`crate::domain::orchestrator::generation::driver`]) over:
//! the project's D1 records and its app's saved files ([`D1Records`]), the LLM client
//! ([`PlannerModel`]) and the hub ([`HubPublisher`]).
//!
//! Invariants:
//! - the plan is written in one D1 batch (`orchestrator_db::store_generation`: old tickets and
//!   dependencies out, new ones in, project to `review`), only while the project is still
//!   `analyzing` with its generation running; a failure is recorded the same way
//!   (`generation_failed`), so a generation ends in exactly one of the two;
//! - the model works for the project's stakeholder: their limits, keys, model overrides and
//!   usage records (operation `ticket_generation`).

use crate::domain::codegen::driver::Model;
use crate::domain::codegen::events::CallUsage;
use crate::domain::codegen::models::{ChatMessage, Operation};
use crate::domain::codegen::run::{blob_key, versions_prefix, VersionManifest};
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::{AppId, ProjectId, UserId};
use crate::domain::orchestrator::generation::analysis::Source;
use crate::domain::orchestrator::generation::call::{PlannerCall, BINDING};
use crate::domain::orchestrator::generation::driver::{Hub, Job, Records, Step};
use crate::domain::orchestrator::generation::tickets::Plan;
use crate::domain::orchestrator::protocol::HubMessage;
use crate::domain::random;
use crate::http::App;
use crate::services::db::{all, first, text};
use crate::services::llm::{Call, Llm};
use crate::services::orchestrator_db::{self as odb, GeneratedTicket};
use serde::Deserialize;
use std::collections::BTreeMap;
use worker::{D1Database, Env, Method, Request, RequestInit};

/// Files of an app read for its analysis, and the bytes of one file and of all of them.
pub const MAX_SOURCE_FILES: usize = 400;
pub const MAX_SOURCE_FILE_BYTES: u64 = 200_000;
pub const MAX_SOURCE_BYTES: u64 = 4_000_000;

#[derive(Deserialize)]
struct ProjectRow {
    title: String,
    description: Option<String>,
    source: String,
    app_id: Option<String>,
    stakeholder_user_id: String,
}

async fn project(db: &D1Database, id: &ProjectId) -> ApiResult<Option<ProjectRow>> {
    first(
        db,
        "SELECT title, description, source, app_id, stakeholder_user_id
         FROM orchestration_projects WHERE id = ?1",
        &[text(id.as_str())],
    )
    .await
}

/// Starts (or restarts) the analysis and ticket generation of `project`, which the caller has
/// already put in `analyzing` with its generation `running` (error cleared). `guidance` is the
/// stakeholder's note on a regeneration.
pub async fn start(env: &Env, project_id: &ProjectId, guidance: Option<String>) -> ApiResult<()> {
    let db = env.d1(crate::http::DB_BINDING)?;
    let p = self::project(&db, project_id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    let job = Job::new(
        project_id.clone(),
        UserId::from(p.stakeholder_user_id),
        p.app_id.map(AppId::from),
        guidance,
        random::id("gen"),
    );
    let call = PlannerCall::Start { job };
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(call.to_json().into()));
    let req = Request::new_with_init("https://planner/", &init)?;
    let mut r = super::stub(env, BINDING, project_id.as_str())?
        .fetch_with_request(req)
        .await?;
    if r.status_code() != 202 {
        let body = r.text().await.unwrap_or_default();
        worker::console_error!("planner start {project_id}: {} {body}", r.status_code());
        return Err(ApiError::unavailable(
            "ticket generation could not be started",
        ));
    }
    Ok(())
}

/// The project's records in D1 and its app's saved files in R2.
pub struct D1Records<'a> {
    pub env: &'a Env,
    pub db: D1Database,
}

#[derive(Deserialize)]
struct Title {
    title: String,
}

impl D1Records<'_> {
    /// The app's latest saved version's files (text only, within the limits above).
    async fn app_files(&self, app_id: &str) -> Result<BTreeMap<String, String>, String> {
        let bucket = self.env.bucket("APP_FILES").map_err(|e| e.to_string())?;
        let listed = bucket
            .list()
            .prefix(versions_prefix(app_id))
            .limit(1000)
            .execute()
            .await
            .map_err(|e| e.to_string())?;
        // Zero-padded numbers list in order: the last key is the newest version.
        let Some(key) = listed.objects().last().map(|o| o.key()) else {
            return Ok(BTreeMap::new());
        };
        let Some(bytes) = super::r2::bucket_bytes(&bucket, &key).await? else {
            return Ok(BTreeMap::new());
        };
        let manifest = VersionManifest::parse(&bytes).map_err(|e| e.to_string())?;
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        for f in &manifest.files {
            if files.len() >= MAX_SOURCE_FILES {
                break;
            }
            if f.bytes > MAX_SOURCE_FILE_BYTES || total + f.bytes > MAX_SOURCE_BYTES {
                continue;
            }
            let Some(blob) = super::r2::bucket_bytes(&bucket, &blob_key(app_id, &f.hash)).await?
            else {
                continue;
            };
            if let Ok(s) = String::from_utf8(blob) {
                total += f.bytes;
                files.insert(f.path.clone(), s);
            }
        }
        Ok(files)
    }
}

impl Records for D1Records<'_> {
    async fn source(&self, job: &Job) -> Result<Source, ApiError> {
        let p = project(&self.db, &job.project_id)
            .await?
            .ok_or_else(|| ApiError::not_found("project"))?;
        let previous: Vec<Title> = all(
            &self.db,
            "SELECT title FROM orchestration_tickets WHERE project_id = ?1
             ORDER BY order_index, number",
            &[text(job.project_id.as_str())],
        )
        .await?;
        let files = match &p.app_id {
            Some(app) => self.app_files(app).await.map_err(|e| {
                worker::console_error!("planner: reading the files of {app}: {e}");
                ApiError::unavailable("the app's files could not be read")
            })?,
            None => BTreeMap::new(),
        };
        Ok(Source {
            title: p.title,
            description: p.description,
            kind: p.source,
            files,
            previous_tickets: previous.into_iter().map(|t| t.title).collect(),
        })
    }

    async fn step(&self, job: &Job, step: Step) {
        if let Err(e) = odb::generation_step(&self.db, &job.project_id, step.as_str()).await {
            worker::console_warn!(
                "planner: recording step of {}: {}",
                job.project_id,
                e.message
            );
        }
    }

    async fn write(&self, job: &Job, plan: &Plan) -> Result<bool, ApiError> {
        // The plan's order is its numbering; `store_generation` numbers in the order given and
        // derives the same initial statuses.
        let tickets: Vec<GeneratedTicket<'_>> = plan
            .tickets
            .iter()
            .map(|t| GeneratedTicket {
                id: &t.id,
                title: &t.ticket.title,
                description: &t.ticket.description,
                kind: t.ticket.ticket_type,
                priority: t.ticket.priority,
                category: t.ticket.category.as_deref(),
                tags: &t.ticket.tags,
                estimated_hours: t.ticket.estimated_hours,
                affected_files: &t.ticket.affected_files,
                acceptance_criteria: &t.ticket.acceptance_criteria,
            })
            .collect();
        let deps: Vec<_> = plan
            .dependencies
            .iter()
            .map(|d| (d.ticket_id.clone(), d.depends_on_ticket_id.clone(), d.kind))
            .collect();
        let analysis = serde_json::to_string(&plan.analysis).unwrap_or_else(|_| "null".into());
        odb::store_generation(&self.db, &job.project_id, &analysis, &tickets, &deps).await
    }

    async fn fail(&self, job: &Job, error: &ApiError) -> Result<(), ApiError> {
        let code = format!("{:?}", error.code);
        odb::generation_failed(&self.db, &job.project_id, &code, &error.message).await
    }
}

/// The model, through the LLM client, for the project's stakeholder.
pub struct PlannerModel<'a> {
    pub app: &'a App,
    pub user_id: UserId,
    pub app_id: Option<AppId>,
}

impl Model for PlannerModel<'_> {
    async fn complete(
        &self,
        op: Operation,
        messages: &[ChatMessage],
    ) -> Result<(String, CallUsage), ApiError> {
        let llm = Llm::new(&self.app.env, &self.app.cfg)?;
        let call = Call {
            user_id: &self.user_id,
            app_id: self.app_id.as_ref(),
            operation: op,
            overrides: None,
            cancel: None,
        };
        let o = llm.complete(&call, messages).await?;
        let usage = CallUsage {
            operation: op,
            provider: o.provider,
            model: o.model.clone(),
            prompt_tokens: o.usage.prompt_tokens,
            completion_tokens: o.usage.completion_tokens,
            total_tokens: o.usage.total_tokens,
        };
        Ok((o.text, usage))
    }

    async fn stream(
        &self,
        op: Operation,
        messages: &[ChatMessage],
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<CallUsage, ApiError> {
        let (text, usage) = self.complete(op, messages).await?;
        on_delta(&text);
        Ok(usage)
    }
}

/// The orchestrator hub.
pub struct HubPublisher<'a> {
    pub env: &'a Env,
}

impl Hub for HubPublisher<'_> {
    async fn publish(&self, message: HubMessage) {
        super::orchestrator_hub::publish(self.env, &message).await;
    }
}
