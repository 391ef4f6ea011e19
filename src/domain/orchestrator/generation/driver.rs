//! The ticket generation driver: one [`Job`] (a project's analysis and ticket generation) run
//! over small ports, so a whole generation, its feedback round and its resumption after a crash
//! run on the host with in-memory fakes. The `ProjectPlanner` Durable Object implements the
//! ports (the LLM client, D1, the hub, its own storage) and calls [`Planner::run`] from its alarm.
//!
//! Steps (spec: AI Ticket Generation), each announced as `analysis_progress` and recorded as the
//! project's generation step: `analyze_structure` and `identify_features` (the deterministic
//! [`super::analysis`]), `generate_tickets` (the model, [`super::tickets`]), `create_plan`
//! (ordering, derived dependencies, one D1 batch, then `tickets_generated`).
//!
//! Invariants:
//! - resumable, a step already done is not redone: the job is saved after the analysis, after
//!   each answer of the model and once the plan is made; a resumed job continues from the last
//!   save (so at most the one model call under way when it was interrupted is made again), and
//!   writing the plan is idempotent (the project's tickets are replaced by the plan's, whose ids
//!   are fixed in the saved job);
//! - the model gets at most [`MAX_ANSWERS`] answers: an unusable one (malformed, or an invalid
//!   graph) goes back once with the exact problem; a second unusable answer fails the
//!   generation with E005;
//! - a generation ends in exactly one of `tickets_generated` (project in `review`) or
//!   `generation_failed` (project stays `analyzing`, its error recorded).

use super::analysis::{self, AnalysisResult, Source};
use super::tickets::{self, Plan};
use crate::domain::codegen::driver::{generation_failed, Model};
use crate::domain::codegen::models::{ChatMessage, Operation};
use crate::domain::error::ApiError;
use crate::domain::ids::{AppId, ProjectId, TicketId, UserId};
use crate::domain::orchestrator::model::ProjectStatus;
use crate::domain::orchestrator::protocol::HubMessage;
use serde::{Deserialize, Serialize};
use strum::IntoStaticStr;

/// Answers the model may give per generation (the first, and one after feedback).
pub const MAX_ANSWERS: usize = 2;
/// Longest stakeholder guidance accepted (the API checks it; the job trusts it).
pub const MAX_GUIDANCE_CHARS: usize = 2_000;

/// A step of a generation, as announced and recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Step {
    AnalyzeStructure,
    IdentifyFeatures,
    GenerateTickets,
    CreatePlan,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The analysis step's result, kept so a resumed job does not read the app again (its source
/// without the files, which the result and the context sum up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analyzed {
    pub source: Source,
    pub result: AnalysisResult,
    /// What the prompt shows of the app ([`analysis::context`]).
    pub context: String,
}

/// An answer of the model that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub answer: String,
    pub problem: String,
}

/// One generation of a project, as stored by its planner object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub project_id: ProjectId,
    /// Who the model works for (the stakeholder: their limits, keys and usage).
    pub user_id: UserId,
    pub app_id: Option<AppId>,
    pub guidance: Option<String>,
    /// Tells this generation from a later one of the same project (a restart replaces the job).
    pub run: String,
    #[serde(default)]
    pub analyzed: Option<Analyzed>,
    #[serde(default)]
    pub rejected: Vec<Rejected>,
    #[serde(default)]
    pub plan: Option<Plan>,
}

impl Job {
    pub fn new(
        project_id: ProjectId,
        user_id: UserId,
        app_id: Option<AppId>,
        guidance: Option<String>,
        run: String,
    ) -> Self {
        Self {
            project_id,
            user_id,
            app_id,
            guidance: guidance.filter(|g| !g.trim().is_empty()),
            run,
            analyzed: None,
            rejected: Vec::new(),
            plan: None,
        }
    }
}

/// The project's records (D1) and its app's files.
#[allow(async_fn_in_trait)]
pub trait Records {
    /// The project as created and its app's latest saved files.
    async fn source(&self, job: &Job) -> Result<Source, ApiError>;
    /// Records the step under way (best effort: it only informs readers).
    async fn step(&self, job: &Job, step: Step);
    /// Replaces the project's tickets and dependencies with the plan's and moves the project to
    /// `review`, all at once; idempotent. `Ok(false)`: the project is gone or no longer
    /// `analyzing` (nothing was written).
    async fn write(&self, job: &Job, plan: &Plan) -> Result<bool, ApiError>;
    /// Records the failure on the project (which stays `analyzing`).
    async fn fail(&self, job: &Job, error: &ApiError) -> Result<(), ApiError>;
}

/// The job's own storage (the planner object's).
#[allow(async_fn_in_trait)]
pub trait JobStore {
    /// Saves the job's progress; `Ok(false)`: the job was replaced by a newer one (this run
    /// must stop without writing anything).
    async fn save(&self, job: &Job) -> Result<bool, ApiError>;
}

/// The orchestrator hub.
#[allow(async_fn_in_trait)]
pub trait Hub {
    async fn publish(&self, message: HubMessage);
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Generated {
        total_tickets: u32,
    },
    Failed(ApiError),
    /// Replaced by a newer job, or the project left `analyzing`: nothing more was written.
    Abandoned,
}

/// A generation over its ports.
pub struct Planner<'a, M, R, S, H> {
    pub model: &'a M,
    pub records: &'a R,
    pub store: &'a S,
    pub hub: &'a H,
    /// Mints the tickets' ids (random in production, counted in tests).
    pub new_id: &'a dyn Fn() -> TicketId,
}

enum Stop {
    Failed(ApiError),
    Abandoned,
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::Failed(e)
    }
}

impl<M: Model, R: Records, S: JobStore, H: Hub> Planner<'_, M, R, S, H> {
    /// Runs `job` from where it stands to its end, and reports the end to the hub (and, for a
    /// failure, to the project's records).
    pub async fn run(&self, job: &mut Job) -> Outcome {
        match self.steps(job).await {
            Ok(total_tickets) => {
                self.hub
                    .publish(HubMessage::ProjectStatusChanged {
                        project_id: job.project_id.clone(),
                        old_status: ProjectStatus::Analyzing,
                        new_status: ProjectStatus::Review,
                    })
                    .await;
                self.hub
                    .publish(HubMessage::TicketsGenerated {
                        project_id: job.project_id.clone(),
                        total_tickets,
                    })
                    .await;
                Outcome::Generated { total_tickets }
            }
            Err(Stop::Abandoned) => Outcome::Abandoned,
            Err(Stop::Failed(e)) => {
                // Recording the failure is what lets the project be generated again; should
                // it fail too, the error still reaches the hub's subscribers.
                let _ = self.records.fail(job, &e).await;
                self.hub
                    .publish(HubMessage::GenerationFailed {
                        project_id: job.project_id.clone(),
                        code: format!("{:?}", e.code),
                        message: e.message.clone(),
                    })
                    .await;
                Outcome::Failed(e)
            }
        }
    }

    async fn progress(&self, job: &Job, step: Step, message: String) {
        self.records.step(job, step).await;
        self.hub
            .publish(HubMessage::AnalysisProgress {
                project_id: job.project_id.clone(),
                step: step.as_str().to_string(),
                message,
            })
            .await;
    }

    async fn save(&self, job: &Job) -> Result<(), Stop> {
        match self.store.save(job).await? {
            true => Ok(()),
            false => Err(Stop::Abandoned),
        }
    }

    async fn steps(&self, job: &mut Job) -> Result<u32, Stop> {
        if job.analyzed.is_none() {
            self.progress(
                job,
                Step::AnalyzeStructure,
                "Parsing the file tree, identifying the stack, extracting dependencies".into(),
            )
            .await;
            let source = self.records.source(job).await?;
            let result = analysis::analyze(&source);
            self.progress(
                job,
                Step::IdentifyFeatures,
                format!(
                    "{} files: {} components, {} routes, {} API endpoints",
                    result.file_count,
                    result.components.len(),
                    result.routes.len(),
                    result.api_endpoints.len()
                ),
            )
            .await;
            let context = analysis::context(&source);
            // The files are summed up in the analysis and the context: the saved job stays
            // small (an object's stored value is bounded) without them.
            let mut source = source;
            source.files.clear();
            job.analyzed = Some(Analyzed {
                source,
                result,
                context,
            });
            self.save(job).await?;
        }
        if job.plan.is_none() {
            let analyzed = job.analyzed.clone().expect("analysed above");
            let answer = loop {
                if job.rejected.len() >= MAX_ANSWERS {
                    let last = job.rejected.last().map(|r| r.problem.as_str());
                    return Err(Stop::Failed(generation_failed(format!(
                        "the model's tickets were unusable {MAX_ANSWERS} times; the last problem: {}",
                        last.unwrap_or_default()
                    ))));
                }
                let message = match job.rejected.len() {
                    0 => "Breaking the work down into tickets".to_string(),
                    _ => "Asking the model to fix its tickets".to_string(),
                };
                self.progress(job, Step::GenerateTickets, message).await;
                let mut messages = tickets::messages(
                    &analyzed.source,
                    &analyzed.result,
                    &analyzed.context,
                    job.guidance.as_deref(),
                );
                for r in &job.rejected {
                    messages.push(ChatMessage::assistant(r.answer.clone()));
                    messages.push(ChatMessage::user(tickets::feedback(&r.problem)));
                }
                let (text, _usage) = self
                    .model
                    .complete(Operation::TicketGeneration, &messages)
                    .await?;
                match tickets::parse_answer(&text) {
                    Ok(a) => break a,
                    Err(problem) => {
                        job.rejected.push(Rejected {
                            answer: text,
                            problem,
                        });
                        self.save(job).await?;
                    }
                }
            };
            self.progress(
                job,
                Step::CreatePlan,
                format!(
                    "Ordering {} tickets, finding parallel work and file conflicts",
                    answer.tickets.len()
                ),
            )
            .await;
            job.plan = Some(tickets::plan(analyzed.result, answer, self.new_id));
            self.save(job).await?;
        }
        let plan = job.plan.as_ref().expect("planned above");
        if !self.records.write(job, plan).await? {
            return Err(Stop::Abandoned);
        }
        Ok(plan.tickets.len() as u32)
    }
}
