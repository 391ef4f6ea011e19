//! Ticket generation on the Workers side: [`start`] hands a project's generation to its
//! `ProjectPlanner` object (a Durable Object driven by its alarm, resumable), and the adapters
//! that object runs the domain driver ([`crate::domain::orchestrator::generation::driver`]) over:
//! the project's D1 records and its app's saved files ([`D1Records`]), the LLM client
//! ([`PlannerModel`]) and the hub ([`HubPublisher`]).
//!
//! Invariants:
//! - every SQL statement of a generation is here, with bound parameters; the plan is written
//!   in one D1 batch (old tickets and dependencies out, new ones in, project to `review`), and
//!   only while the project is still `analyzing`;
//! - a start clears the project's recorded failure and step before the object has the job, so
//!   the project reads `running` from the moment the API answers;
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
use crate::services::db::{all, first, int, opt, run, stmt, text};
use crate::services::llm::{Call, Llm};
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
    status: String,
    app_id: Option<String>,
    stakeholder_user_id: String,
}

async fn project(db: &D1Database, id: &ProjectId) -> ApiResult<Option<ProjectRow>> {
    first(
        db,
        "SELECT title, description, source, status, app_id, stakeholder_user_id
         FROM orchestration_projects WHERE id = ?1",
        &[text(id.as_str())],
    )
    .await
}

/// Starts (or restarts) the analysis and ticket generation of `project`, which the caller has
/// already put in `analyzing`. `guidance` is the stakeholder's note on a regeneration.
pub async fn start(env: &Env, project_id: &ProjectId, guidance: Option<String>) -> ApiResult<()> {
    let db = env.d1(crate::http::DB_BINDING)?;
    let p = self::project(&db, project_id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    run(
        &db,
        "UPDATE orchestration_projects SET generation_error = NULL, generation_step = NULL,
             updated_at = unixepoch() WHERE id = ?1",
        &[text(project_id.as_str())],
    )
    .await?;
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

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
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
        let r = run(
            &self.db,
            "UPDATE orchestration_projects SET generation_step = ?2
             WHERE id = ?1 AND status = 'analyzing'",
            &[text(job.project_id.as_str()), text(step.as_str())],
        )
        .await;
        if let Err(e) = r {
            worker::console_warn!(
                "planner: recording step of {}: {}",
                job.project_id,
                e.message
            );
        }
    }

    async fn write(&self, job: &Job, plan: &Plan) -> Result<bool, ApiError> {
        let pid = job.project_id.as_str();
        match project(&self.db, &job.project_id).await? {
            Some(p) if p.status == "analyzing" => {}
            _ => return Ok(false),
        }
        let db = &self.db;
        let mut batch = vec![
            stmt(
                db,
                "DELETE FROM orchestration_ticket_dependencies WHERE ticket_id IN
                 (SELECT id FROM orchestration_tickets WHERE project_id = ?1)",
                &[text(pid)],
            )?,
            stmt(
                db,
                "DELETE FROM orchestration_tickets WHERE project_id = ?1",
                &[text(pid)],
            )?,
        ];
        for t in &plan.tickets {
            let p = &t.ticket;
            batch.push(stmt(
                db,
                "INSERT INTO orchestration_tickets (id, project_id, number, title, description,
                     type, priority, status, order_index, category, tags, estimated_hours,
                     affected_files, acceptance_criteria)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                &[
                    text(t.id.as_str()),
                    text(pid),
                    int(t.number.into()),
                    text(&p.title),
                    text(&p.description),
                    text(p.ticket_type.as_str()),
                    text(p.priority.as_str()),
                    text(t.status.as_str()),
                    int(t.order_index.into()),
                    opt(p.category.as_deref()),
                    text(json_text(&p.tags)),
                    p.estimated_hours
                        .map(|h| int(h.into()))
                        .unwrap_or(worker::wasm_bindgen::JsValue::NULL),
                    text(json_text(&p.affected_files)),
                    text(json_text(&p.acceptance_criteria)),
                ],
            )?);
        }
        for d in &plan.dependencies {
            batch.push(stmt(
                db,
                "INSERT INTO orchestration_ticket_dependencies
                     (id, ticket_id, depends_on_ticket_id, dependency_type)
                 VALUES (?1, ?2, ?3, ?4)",
                &[
                    text(random::id("dep")),
                    text(d.ticket_id.as_str()),
                    text(d.depends_on_ticket_id.as_str()),
                    text(d.kind.as_str()),
                ],
            )?);
        }
        batch.push(stmt(
            db,
            "UPDATE orchestration_projects SET status = 'review', analysis_result = ?2,
                 analyzed_at = unixepoch(), updated_at = unixepoch(), total_tickets = ?3,
                 completed_tickets = 0, generation_error = NULL, generation_step = NULL
             WHERE id = ?1",
            &[
                text(pid),
                text(json_text(&plan.analysis)),
                int(plan.tickets.len() as i64),
            ],
        )?);
        db.batch(batch).await?;
        Ok(true)
    }

    async fn fail(&self, job: &Job, error: &ApiError) -> Result<(), ApiError> {
        let e = serde_json::json!({"code": format!("{:?}", error.code), "message": error.message});
        run(
            &self.db,
            "UPDATE orchestration_projects SET generation_error = ?2, generation_step = NULL,
                 updated_at = unixepoch() WHERE id = ?1 AND status = 'analyzing'",
            &[text(job.project_id.as_str()), text(e.to_string())],
        )
        .await?;
        Ok(())
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
