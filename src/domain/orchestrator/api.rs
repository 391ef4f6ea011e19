//! The orchestrator's REST shapes (the wire contract of issue 13): the rows as D1 returns them,
//! the Project / Ticket / Dependency objects built from them, and the parsing of every request
//! body and query into typed values (per-field 400 errors, all at once, as `domain::input` does
//! elsewhere).
//!
//! Invariants: every object is camelCase JSON with times in unix seconds; a stored JSON column
//! that does not parse reads as its empty value (never a 500); user text only reaches SQL as a
//! bound parameter (the list filters compile to [`SqlArg`]s).

use super::lifecycle::{self, ProjectAction, TicketContext};
use super::model::{Priority, ProjectSource, ProjectStatus, TicketStatus, TicketType};
use crate::domain::apps::{like_pattern, SqlArg};
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::{AppId, ProjectId, TicketId, UserId};
use crate::domain::input::{JsonObject, Patch, Query};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 1000;
pub const MAX_SEARCH: usize = 200;
pub const MAX_GUIDANCE: usize = 2000;
/// A ticket's description (written by the model, refined by people) is longer than a project's.
pub const MAX_TICKET_DESCRIPTION: usize = 10_000;
pub const MAX_CATEGORY: usize = 100;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 50;
pub const MAX_CRITERIA: usize = 50;
pub const MAX_CRITERION_CHARS: usize = 500;
pub const MAX_FILES: usize = 200;
pub const MAX_PATH_CHARS: usize = 500;
pub const MAX_BRANCH: usize = 200;
pub const MAX_HOURS: u64 = 10_000;
pub const MAX_GITHUB_URL: usize = 300;

// ---------------------------------------------------------------- rows

/// A row of `orchestration_projects` as D1 returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub app_id: Option<AppId>,
    pub title: String,
    pub description: Option<String>,
    pub source: ProjectSource,
    pub status: ProjectStatus,
    pub github_repo_url: Option<String>,
    pub github_repo_name: Option<String>,
    pub github_default_branch: Option<String>,
    pub stakeholder_user_id: UserId,
    pub analysis_result: Option<String>,
    pub generation_state: GenerationState,
    pub generation_step: Option<String>,
    pub generation_error: Option<String>,
    pub total_tickets: f64,
    pub completed_tickets: f64,
    pub created_at: f64,
    pub updated_at: f64,
    pub analyzed_at: Option<f64>,
    pub approved_at: Option<f64>,
    pub completed_at: Option<f64>,
}

/// The columns of [`ProjectRecord`], for `SELECT {PROJECT_COLUMNS} FROM orchestration_projects p`.
pub const PROJECT_COLUMNS: &str = "p.id, p.app_id, p.title, p.description, p.source, p.status, \
    p.github_repo_url, p.github_repo_name, p.github_default_branch, p.stakeholder_user_id, \
    p.analysis_result, p.generation_state, p.generation_step, p.generation_error, \
    p.total_tickets, p.completed_tickets, p.created_at, p.updated_at, p.analyzed_at, \
    p.approved_at, p.completed_at";

/// A row of `orchestration_tickets` as D1 returns it, with its project's status and whether
/// every `blocks` dependency is completed (both computed by the query: see [`TICKET_COLUMNS`]).
#[derive(Debug, Clone, Deserialize)]
pub struct TicketRecord {
    pub id: TicketId,
    pub project_id: ProjectId,
    pub number: f64,
    pub title: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: TicketType,
    pub priority: Priority,
    pub status: TicketStatus,
    pub order_index: f64,
    pub category: Option<String>,
    pub tags: Option<String>,
    pub branch_name: Option<String>,
    pub pr_url: Option<String>,
    pub commit_count: f64,
    pub estimated_hours: Option<f64>,
    pub actual_hours: Option<f64>,
    pub affected_files: Option<String>,
    pub acceptance_criteria: Option<String>,
    pub assignee_user_id: Option<UserId>,
    pub created_at: f64,
    pub updated_at: f64,
    pub started_at: Option<f64>,
    pub completed_at: Option<f64>,
    #[serde(default)]
    pub implementation_state: Option<ImplementationState>,
    #[serde(default)]
    pub implementation_error: Option<String>,
    pub project_status: ProjectStatus,
    /// The numbers of the unfinished `blocks` dependencies, comma-separated (`NULL`: none).
    pub open_blockers: Option<String>,
}

/// The columns of [`TicketRecord`], for `SELECT … FROM orchestration_tickets t JOIN
/// orchestration_projects p ON p.id = t.project_id`.
pub const TICKET_COLUMNS: &str = "t.id, t.project_id, t.number, t.title, t.description, t.type, \
    t.priority, t.status, t.order_index, t.category, t.tags, t.branch_name, t.pr_url, \
    t.commit_count, t.estimated_hours, t.actual_hours, t.affected_files, t.acceptance_criteria, \
    t.assignee_user_id, t.created_at, t.updated_at, t.started_at, t.completed_at, \
    t.implementation_state, t.implementation_error, p.status AS project_status, \
    (SELECT group_concat(b.number, ',') FROM orchestration_ticket_dependencies d \
       JOIN orchestration_tickets b ON b.id = d.depends_on_ticket_id \
       WHERE d.ticket_id = t.id AND d.dependency_type = 'blocks' AND b.status != 'completed') \
       AS open_blockers";

/// A row of `orchestration_ticket_dependencies`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// The ticket that depends.
    #[schema(value_type = String)]
    #[serde(alias = "ticket_id")]
    pub ticket_id: TicketId,
    /// The ticket it depends on (for `blocks`: to be completed before it starts).
    #[schema(value_type = String)]
    #[serde(alias = "depends_on_ticket_id")]
    pub depends_on_ticket_id: TicketId,
    #[serde(rename = "type", alias = "dependency_type")]
    pub kind: super::model::DependencyType,
}

fn list_of(text: &Option<String>) -> Vec<String> {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

fn secs(v: f64) -> i64 {
    v as i64
}

// ---------------------------------------------------------------- objects

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GenerationState {
    Idle,
    Running,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GenerationError {
    pub code: String,
    pub message: String,
}

/// The project's ticket generation (run by the planner object).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Generation {
    pub state: GenerationState,
    /// The step a running generation is at.
    pub step: Option<String>,
    /// Why the last generation failed.
    pub error: Option<GenerationError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PackageDependency {
    pub name: String,
    pub version: String,
}

/// What the analysis found in the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisResult {
    pub summary: String,
    pub stack: Vec<String>,
    pub dependencies: Vec<PackageDependency>,
    pub components: Vec<String>,
    pub routes: Vec<String>,
    pub api_endpoints: Vec<String>,
    pub file_count: u64,
}

/// The contract's Project object.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    #[schema(value_type = String)]
    pub id: ProjectId,
    #[schema(value_type = Option<String>)]
    pub app_id: Option<AppId>,
    pub title: String,
    pub description: Option<String>,
    pub source: ProjectSource,
    pub status: ProjectStatus,
    pub github_repo_url: Option<String>,
    /// `owner/repo`.
    pub github_repo_name: Option<String>,
    pub github_default_branch: String,
    #[schema(value_type = String)]
    pub stakeholder_user_id: UserId,
    pub analysis_result: Option<AnalysisResult>,
    pub generation: Generation,
    pub total_tickets: u32,
    pub completed_tickets: u32,
    /// The actions `PATCH` accepts now.
    pub allowed_actions: Vec<ProjectAction>,
    pub created_at: i64,
    pub updated_at: i64,
    pub analyzed_at: Option<i64>,
    pub approved_at: Option<i64>,
    pub completed_at: Option<i64>,
}

impl ProjectRecord {
    pub fn view(&self) -> Project {
        Project {
            id: self.id.clone(),
            app_id: self.app_id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            source: self.source,
            status: self.status,
            github_repo_url: self.github_repo_url.clone(),
            github_repo_name: self.github_repo_name.clone(),
            github_default_branch: self
                .github_default_branch
                .clone()
                .unwrap_or_else(|| "main".into()),
            stakeholder_user_id: self.stakeholder_user_id.clone(),
            analysis_result: self
                .analysis_result
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            generation: Generation {
                state: self.generation_state,
                step: self.generation_step.clone(),
                error: self
                    .generation_error
                    .as_deref()
                    .and_then(|t| serde_json::from_str(t).ok()),
            },
            total_tickets: self.total_tickets as u32,
            completed_tickets: self.completed_tickets as u32,
            allowed_actions: lifecycle::allowed_actions(self.status),
            created_at: secs(self.created_at),
            updated_at: secs(self.updated_at),
            analyzed_at: self.analyzed_at.map(secs),
            approved_at: self.approved_at.map(secs),
            completed_at: self.completed_at.map(secs),
        }
    }
}

/// Where a ticket's implementation by the code generator is (`POST …/tickets/:id/implement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImplementationState {
    Running,
    Succeeded,
    Failed,
}

impl ImplementationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ImplementationState::Running => "running",
            ImplementationState::Succeeded => "succeeded",
            ImplementationState::Failed => "failed",
        }
    }
}

/// A ticket's implementation by the code generator.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Implementation {
    pub state: ImplementationState,
    /// Why the last run failed (nothing was committed).
    pub error: Option<String>,
}

/// The contract's Ticket object.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    #[schema(value_type = String)]
    pub id: TicketId,
    #[schema(value_type = String)]
    pub project_id: ProjectId,
    /// 1, 2, … within the project, stable.
    pub number: u32,
    pub title: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: TicketType,
    pub priority: Priority,
    pub status: TicketStatus,
    pub order_index: i64,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub branch_name: Option<String>,
    pub pr_url: Option<String>,
    pub commit_count: u32,
    pub estimated_hours: Option<u32>,
    pub actual_hours: Option<u32>,
    pub affected_files: Vec<String>,
    pub acceptance_criteria: Vec<String>,
    #[schema(value_type = Option<String>)]
    pub assignee_user_id: Option<UserId>,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// The statuses a `PATCH` may move it to now.
    pub allowed_transitions: Vec<TicketStatus>,
    /// Its implementation by the code generator, once asked for.
    pub implementation: Option<Implementation>,
}

impl TicketRecord {
    pub fn context(&self) -> TicketContext {
        TicketContext {
            project: self.project_status,
            blockers_done: self.open_blockers.as_deref().unwrap_or("").is_empty(),
        }
    }

    /// The unfinished blockers as `#3, #5` (sorted by number).
    pub fn open_blockers_text(&self) -> String {
        let mut n: Vec<u64> = self
            .open_blockers
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        n.sort_unstable();
        n.iter()
            .map(|n| format!("#{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn view(&self) -> Ticket {
        Ticket {
            id: self.id.clone(),
            project_id: self.project_id.clone(),
            number: self.number as u32,
            title: self.title.clone(),
            description: self.description.clone(),
            kind: self.kind,
            priority: self.priority,
            status: self.status,
            order_index: self.order_index as i64,
            category: self.category.clone(),
            tags: list_of(&self.tags),
            branch_name: self.branch_name.clone(),
            pr_url: self.pr_url.clone(),
            commit_count: self.commit_count as u32,
            estimated_hours: self.estimated_hours.map(|h| h as u32),
            actual_hours: self.actual_hours.map(|h| h as u32),
            affected_files: list_of(&self.affected_files),
            acceptance_criteria: list_of(&self.acceptance_criteria),
            assignee_user_id: self.assignee_user_id.clone(),
            created_at: secs(self.created_at),
            updated_at: secs(self.updated_at),
            started_at: self.started_at.map(secs),
            completed_at: self.completed_at.map(secs),
            allowed_transitions: lifecycle::ticket_targets(self.status, self.context()),
            implementation: self.implementation_state.map(|state| Implementation {
                state,
                error: self.implementation_error.clone(),
            }),
        }
    }

    pub fn plan_ticket(&self) -> super::plan::PlanTicket {
        super::plan::PlanTicket {
            id: self.id.clone(),
            number: self.number as u32,
            order_index: self.order_index as i64,
            estimated_hours: self.estimated_hours.map(|h| h as u32),
            status: self.status,
        }
    }
}

/// `GET /api/orchestrator/projects/:id`: the project's fields at the top level, with its
/// tickets (by order), dependencies and plan.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectDetail {
    #[serde(flatten)]
    pub project: Project,
    pub tickets: Vec<Ticket>,
    pub dependencies: Vec<Dependency>,
    pub plan: super::plan::Plan,
}

impl ProjectDetail {
    pub fn new(p: &ProjectRecord, tickets: &[TicketRecord], deps: Vec<Dependency>) -> Self {
        let plan_tickets: Vec<_> = tickets.iter().map(TicketRecord::plan_ticket).collect();
        let blocks: Vec<_> = deps
            .iter()
            .filter(|d| d.kind == super::model::DependencyType::Blocks)
            .map(|d| super::plan::Blocks {
                ticket: d.ticket_id.clone(),
                blocker: d.depends_on_ticket_id.clone(),
            })
            .collect();
        Self {
            project: p.view(),
            tickets: tickets.iter().map(TicketRecord::view).collect(),
            plan: super::plan::compute(&plan_tickets, &blocks),
            dependencies: deps,
        }
    }
}

// ---------------------------------------------------------------- requests

/// A GitHub repository named by its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubRepo {
    pub owner: String,
    pub name: String,
}

impl GithubRepo {
    /// `https://github.com/<owner>/<repo>` (an optional `.git` or trailing `/` is dropped).
    pub fn parse(url: &str) -> Result<Self, &'static str> {
        const WANT: &str = "must be https://github.com/<owner>/<repo>";
        let rest = url.strip_prefix("https://github.com/").ok_or(WANT)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let rest = rest.strip_suffix(".git").unwrap_or(rest);
        let (owner, name) = rest.split_once('/').ok_or(WANT)?;
        let owner_ok = !owner.is_empty()
            && owner.len() <= 39
            && !owner.starts_with('-')
            && !owner.ends_with('-')
            && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let name_ok = !name.is_empty()
            && name.len() <= 100
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if owner_ok && name_ok {
            Ok(Self {
                owner: owner.to_string(),
                name: name.to_string(),
            })
        } else {
            Err(WANT)
        }
    }

    pub fn url(&self) -> String {
        format!("https://github.com/{}/{}", self.owner, self.name)
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// `POST /api/orchestrator/projects`, validated (the app's ownership is the handler's check).
#[derive(Debug, Clone, PartialEq)]
pub struct NewProject {
    pub source: ProjectSource,
    pub app_id: Option<AppId>,
    pub github: Option<GithubRepo>,
    /// `None`: the app's title or the repository's name.
    pub title: Option<String>,
    pub description: Option<String>,
}

fn nonempty(p: Patch<String>) -> Option<String> {
    match p {
        Patch::Value(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

impl NewProject {
    pub fn parse(mut o: JsonObject) -> ApiResult<Self> {
        let sources: Vec<(&str, ProjectSource)> = ProjectSource::all()
            .into_iter()
            .map(|s| (s.as_str(), s))
            .collect();
        let source = match o.enumeration("source", &sources) {
            Patch::Value(s) => Some(s),
            Patch::Null | Patch::Absent => {
                o.error("source", "is required: one of app, github, new");
                None
            }
        };
        let app_id = o.string("appId", 64);
        let github_url = o.string("githubUrl", MAX_GITHUB_URL);
        let title = nonempty(o.string("title", MAX_TITLE));
        let description = nonempty(o.string("description", MAX_DESCRIPTION));
        let app_id = match (source, nonempty(app_id)) {
            (Some(ProjectSource::App), None) => {
                o.error("appId", "is required when source is app");
                None
            }
            (Some(ProjectSource::App), Some(id)) => match AppId::parse(&id) {
                Some(id) => Some(id),
                None => {
                    o.error("appId", "is not one of your apps");
                    None
                }
            },
            (Some(_), Some(_)) => {
                o.error("appId", "is only allowed when source is app");
                None
            }
            _ => None,
        };
        let github = match (source, nonempty(github_url)) {
            (Some(ProjectSource::Github), None) => {
                o.error(
                    "githubUrl",
                    "is required when source is github: https://github.com/<owner>/<repo>",
                );
                None
            }
            (Some(ProjectSource::Github), Some(url)) => match GithubRepo::parse(&url) {
                Ok(r) => Some(r),
                Err(m) => {
                    o.error("githubUrl", m);
                    None
                }
            },
            (Some(_), Some(_)) => {
                o.error("githubUrl", "is only allowed when source is github");
                None
            }
            _ => None,
        };
        if source == Some(ProjectSource::New) && title.is_none() {
            o.error("title", "is required when source is new");
        }
        o.finish()?;
        Ok(Self {
            source: source.ok_or_else(ApiError::internal)?,
            app_id,
            github,
            title,
            description,
        })
    }
}

/// `PATCH /api/orchestrator/projects/:id`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectChange {
    pub action: ProjectAction,
    pub guidance: Option<String>,
}

impl ProjectChange {
    pub fn parse(mut o: JsonObject) -> ApiResult<Self> {
        let action = match o.enumeration("action", &ProjectAction::ALL) {
            Patch::Value(a) => Some(a),
            _ => {
                o.error("action", "is required: one of approve, regenerate, archive");
                None
            }
        };
        let guidance = nonempty(o.string("guidance", MAX_GUIDANCE));
        if guidance.is_some() && action.is_some_and(|a| a != ProjectAction::Regenerate) {
            o.error("guidance", "is only allowed with the regenerate action");
        }
        o.finish()?;
        Ok(Self {
            action: action.ok_or_else(ApiError::internal)?,
            guidance,
        })
    }
}

/// `PATCH /api/orchestrator/tickets/:id`: every field optional, at least one present.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TicketPatch {
    pub status: Option<TicketStatus>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<Priority>,
    pub kind: Option<TicketType>,
    pub estimated_hours: Patch<u32>,
    pub actual_hours: Patch<u32>,
    pub branch_name: Patch<String>,
    pub acceptance_criteria: Option<Vec<String>>,
    pub affected_files: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub category: Patch<String>,
}

fn vocabulary<T: Copy + Into<&'static str>>(all: Vec<T>) -> Vec<(&'static str, T)> {
    all.into_iter().map(|v| (v.into(), v)).collect()
}

/// A nullable whole number of hours.
fn hours(o: &mut JsonObject, field: &str) -> Patch<u32> {
    match o.take_raw(field) {
        Patch::Absent => Patch::Absent,
        Patch::Null => Patch::Null,
        Patch::Value(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(h) if h <= MAX_HOURS => Patch::Value(h as u32),
            _ => {
                o.error(
                    field,
                    format!("must be a whole number of hours from 0 to {MAX_HOURS}"),
                );
                Patch::Absent
            }
        },
        Patch::Value(_) => {
            o.error(field, "must be a number of hours or null");
            Patch::Absent
        }
    }
}

/// A git branch name: no spaces, control characters or the sequences git refuses.
pub fn valid_branch(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+".contains(c))
}

impl TicketPatch {
    pub fn parse(mut o: JsonObject) -> ApiResult<Self> {
        let status = match o.enumeration("status", &vocabulary(TicketStatus::all())) {
            Patch::Value(s) => Some(s),
            Patch::Null => {
                o.error("status", "must be a ticket status");
                None
            }
            Patch::Absent => None,
        };
        let required = |o: &mut JsonObject, field: &str, max: usize| match o.string(field, max) {
            Patch::Value(s) if !s.is_empty() => Some(s),
            Patch::Absent => None,
            _ => {
                o.error(field, "must not be empty");
                None
            }
        };
        let title = required(&mut o, "title", MAX_TITLE);
        let description = required(&mut o, "description", MAX_TICKET_DESCRIPTION);
        let priority = match o.enumeration("priority", &vocabulary(Priority::all())) {
            Patch::Value(p) => Some(p),
            Patch::Null => {
                o.error("priority", "must be a priority");
                None
            }
            Patch::Absent => None,
        };
        let kind = match o.enumeration("type", &vocabulary(TicketType::all())) {
            Patch::Value(p) => Some(p),
            Patch::Null => {
                o.error("type", "must be a ticket type");
                None
            }
            Patch::Absent => None,
        };
        let estimated_hours = hours(&mut o, "estimatedHours");
        let actual_hours = hours(&mut o, "actualHours");
        let branch_name = match o.string("branchName", MAX_BRANCH) {
            Patch::Value(b) if b.is_empty() => Patch::Null,
            Patch::Value(b) if !valid_branch(&b) => {
                o.error(
                    "branchName",
                    "must be a git branch name (letters, digits, - _ . / +; no spaces or ..)",
                );
                Patch::Absent
            }
            other => other,
        };
        let list = |o: &mut JsonObject, field: &str, items: usize, chars: usize| match o
            .string_list(field, items, chars)
        {
            Patch::Value(v) => Some(v),
            Patch::Null => Some(Vec::new()),
            Patch::Absent => None,
        };
        let acceptance_criteria = list(
            &mut o,
            "acceptanceCriteria",
            MAX_CRITERIA,
            MAX_CRITERION_CHARS,
        );
        let affected_files = list(&mut o, "affectedFiles", MAX_FILES, MAX_PATH_CHARS);
        let tags = list(&mut o, "tags", MAX_TAGS, MAX_TAG_CHARS);
        let category = match o.string("category", MAX_CATEGORY) {
            Patch::Value(c) if c.is_empty() => Patch::Null,
            other => other,
        };
        o.finish()?;
        let p = Self {
            status,
            title,
            description,
            priority,
            kind,
            estimated_hours,
            actual_hours,
            branch_name,
            acceptance_criteria,
            affected_files,
            tags,
            category,
        };
        if p == Self::default() {
            return Err(ApiError::validation(
                "nothing to update: give at least one of status, title, description, priority, type, \
                 estimatedHours, actualHours, branchName, acceptanceCriteria, affectedFiles, tags, category",
            ));
        }
        Ok(p)
    }
}

/// `POST /api/orchestrator/tickets/:id/assign`: `None` is the caller.
pub fn parse_assignee(mut o: JsonObject) -> ApiResult<Option<UserId>> {
    let user = match nonempty(o.string("userId", 64)) {
        Some(u) => match UserId::parse(&u) {
            Some(u) => Some(u),
            None => {
                o.error("userId", "is not a member of this project");
                None
            }
        },
        None => None,
    };
    o.finish()?;
    Ok(user)
}

/// `GET /api/orchestrator/projects` filters.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectQuery {
    pub status: Option<ProjectStatus>,
    pub search: Option<String>,
}

impl ProjectQuery {
    pub fn parse(query: &str) -> ApiResult<Self> {
        let mut q = Query::parse(query);
        let status = match q.get("status").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match ProjectStatus::from_str(s) {
                Ok(s) => Some(s),
                Err(_) => {
                    let names: Vec<&str> =
                        ProjectStatus::all().iter().map(|s| s.as_str()).collect();
                    q.error("status", format!("must be one of: {}", names.join(", ")));
                    None
                }
            },
        };
        let search = q.string("search", MAX_SEARCH);
        q.finish()?;
        Ok(Self { status, search })
    }

    /// The extra `WHERE` clauses over `p` and their arguments, numbered from `first`.
    pub fn clauses(&self, first: usize) -> (String, Vec<SqlArg>) {
        let mut sql = String::new();
        let mut args = Vec::new();
        if let Some(s) = self.status {
            args.push(SqlArg::Text(s.as_str().into()));
            sql += &format!(" AND p.status = ?{}", first + args.len() - 1);
        }
        if let Some(term) = &self.search {
            args.push(SqlArg::Text(like_pattern(term)));
            let n = first + args.len() - 1;
            sql += &format!(
                " AND (p.title LIKE ?{n} ESCAPE '\\' OR p.description LIKE ?{n} ESCAPE '\\')"
            );
        }
        (sql, args)
    }
}

/// `GET /api/orchestrator/tickets` filters.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketQuery {
    pub project: Option<ProjectId>,
    /// Empty: every status.
    pub statuses: Vec<TicketStatus>,
    pub assigned_to_me: bool,
}

impl TicketQuery {
    pub fn parse(query: &str) -> ApiResult<Self> {
        let mut q = Query::parse(query);
        let project = match q.get("projectId").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match ProjectId::parse(s) {
                Some(p) => Some(p),
                None => {
                    q.error("projectId", "is not a project id");
                    None
                }
            },
        };
        let mut statuses = Vec::new();
        let mut bad = Vec::new();
        let values: Vec<String> = q
            .get_all("status")
            .into_iter()
            .chain(q.get_all("status[]"))
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        for v in values {
            match TicketStatus::from_str(&v) {
                Ok(s) if !statuses.contains(&s) => statuses.push(s),
                Ok(_) => {}
                Err(_) => bad.push(v),
            }
        }
        if !bad.is_empty() {
            let names: Vec<&str> = TicketStatus::all().iter().map(|s| s.as_str()).collect();
            q.error(
                "status",
                format!(
                    "unknown status {}; each must be one of: {}",
                    bad.join(", "),
                    names.join(", ")
                ),
            );
        }
        let assigned_to_me = q.boolean("assignedToMe");
        q.finish()?;
        Ok(Self {
            project,
            statuses,
            assigned_to_me,
        })
    }

    /// The extra `WHERE` clauses over `t` and their arguments, numbered from `first`.
    pub fn clauses(&self, first: usize, caller: &UserId) -> (String, Vec<SqlArg>) {
        let mut sql = String::new();
        let mut args = Vec::new();
        if let Some(p) = &self.project {
            args.push(SqlArg::Text(p.to_string()));
            sql += &format!(" AND t.project_id = ?{}", first + args.len() - 1);
        }
        if !self.statuses.is_empty() {
            // Statuses come from a closed enum: inlined, never user text.
            let list: Vec<String> = self.statuses.iter().map(|s| format!("'{s}'")).collect();
            sql += &format!(" AND t.status IN ({})", list.join(", "));
        }
        if self.assigned_to_me {
            args.push(SqlArg::Text(caller.to_string()));
            sql += &format!(" AND t.assignee_user_id = ?{}", first + args.len() - 1);
        }
        (sql, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::input::parse_object;
    use serde_json::json;

    fn body(v: serde_json::Value) -> JsonObject {
        parse_object(v.to_string().as_bytes()).unwrap()
    }

    const APP: &str = "app_0123456789abcdef0123456789abcdef";

    #[test]
    fn new_project_per_source() {
        let p = NewProject::parse(body(json!({"source": "app", "appId": APP}))).unwrap();
        assert_eq!(p.app_id.as_ref().map(|a| a.as_str()), Some(APP));
        assert_eq!((p.title, p.github), (None, None));
        let p = NewProject::parse(body(json!({
            "source": "github", "githubUrl": "https://github.com/acme/shop.git", "title": " Shop "
        })))
        .unwrap();
        let g = p.github.unwrap();
        assert_eq!(
            (g.url(), g.full_name(), p.title.as_deref()),
            (
                "https://github.com/acme/shop".into(),
                "acme/shop".into(),
                Some("Shop")
            )
        );
        let p = NewProject::parse(body(
            json!({"source": "new", "title": "T", "description": "D"}),
        ))
        .unwrap();
        assert_eq!(p.description.as_deref(), Some("D"));
    }

    #[test]
    fn new_project_refusals_name_every_field() {
        let e = NewProject::parse(body(json!({"source": "svn"}))).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.fields["source"].contains("app, github, new"));
        let e = NewProject::parse(body(json!({}))).unwrap_err();
        assert!(e.fields["source"].contains("required"));
        let e = NewProject::parse(body(json!({
            "source": "app", "title": "t".repeat(201), "description": "d".repeat(1001), "extra": 1
        })))
        .unwrap_err();
        for f in ["appId", "title", "description", "extra"] {
            assert!(e.fields.contains_key(f), "{f}: {e:?}");
        }
        assert_eq!(e.fields["title"], "must be at most 200 characters");
        let e = NewProject::parse(body(json!({"source": "app", "appId": "nope"}))).unwrap_err();
        assert_eq!(e.fields["appId"], "is not one of your apps");
        let e = NewProject::parse(body(json!({"source": "github"}))).unwrap_err();
        assert!(e.fields["githubUrl"].contains("required"));
        let e = NewProject::parse(body(
            json!({"source": "new", "appId": APP, "githubUrl": "https://github.com/a/b"}),
        ))
        .unwrap_err();
        for f in ["appId", "githubUrl", "title"] {
            assert!(e.fields.contains_key(f), "{f}: {e:?}");
        }
    }

    #[test]
    fn github_urls() {
        for ok in [
            "https://github.com/acme/shop",
            "https://github.com/acme/shop/",
            "https://github.com/a-b/x.y_z-1",
            "https://github.com/acme/shop.git",
        ] {
            assert!(GithubRepo::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://github.com/acme/shop",
            "https://gitlab.com/acme/shop",
            "https://github.com/acme",
            "https://github.com/acme/shop/tree/main",
            "https://github.com/-acme/shop",
            "https://github.com/acme/..",
            "https://github.com/ac me/shop",
            "https://github.com//shop",
            "https://github.com/acme/shop?x=1",
            "github.com/acme/shop",
        ] {
            assert!(GithubRepo::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn project_change() {
        let c = ProjectChange::parse(body(
            json!({"action": "regenerate", "guidance": "More tests"}),
        ))
        .unwrap();
        assert_eq!(c.guidance.as_deref(), Some("More tests"));
        let e =
            ProjectChange::parse(body(json!({"action": "approve", "guidance": "x"}))).unwrap_err();
        assert!(e.fields["guidance"].contains("regenerate"));
        let e = ProjectChange::parse(body(json!({"action": "launch"}))).unwrap_err();
        assert!(e.fields["action"].contains("approve, regenerate, archive"));
        let e = ProjectChange::parse(body(
            json!({"action": "regenerate", "guidance": "g".repeat(2001)}),
        ))
        .unwrap_err();
        assert!(e.fields.contains_key("guidance"));
        assert!(ProjectChange::parse(body(json!({}))).is_err());
    }

    #[test]
    fn ticket_patch() {
        let p = TicketPatch::parse(body(json!({
            "status": "in_progress", "branchName": "feature/auth", "actualHours": 4,
            "estimatedHours": null, "tags": ["a"], "category": "", "acceptanceCriteria": null
        })))
        .unwrap();
        assert_eq!(p.status, Some(TicketStatus::InProgress));
        assert_eq!(p.branch_name, Patch::Value("feature/auth".into()));
        assert_eq!(p.actual_hours, Patch::Value(4));
        assert_eq!(p.estimated_hours, Patch::Null);
        assert_eq!(p.category, Patch::Null);
        assert_eq!(p.acceptance_criteria, Some(vec![]));
        assert!(TicketPatch::parse(body(json!({})))
            .unwrap_err()
            .message
            .contains("nothing"));
        let e = TicketPatch::parse(body(json!({
            "status": "done", "title": "", "priority": "urgent", "type": "epic",
            "estimatedHours": -1, "actualHours": 1.5, "branchName": "a b", "tags": [1],
            "affectedFiles": "x", "assigneeUserId": "u"
        })))
        .unwrap_err();
        for f in [
            "status",
            "title",
            "priority",
            "type",
            "estimatedHours",
            "actualHours",
            "branchName",
            "tags",
            "affectedFiles",
            "assigneeUserId",
        ] {
            assert!(e.fields.contains_key(f), "{f}: {e:?}");
        }
        assert!(e.fields["status"].contains("pending, ready"));
    }

    #[test]
    fn branch_names() {
        for ok in ["main", "feature/user-auth", "ticket-12_fix.v2", "a+b"] {
            assert!(valid_branch(ok), "{ok}");
        }
        for bad in [
            "", "a b", "a..b", "-x", "x/", "x.lock", "a@{b", "é", "/x", "a//b",
        ] {
            assert!(!valid_branch(bad), "{bad}");
        }
    }

    #[test]
    fn assignee() {
        assert_eq!(parse_assignee(body(json!({}))).unwrap(), None);
        let u = "usr_0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse_assignee(body(json!({"userId": u}))).unwrap(),
            Some(UserId::from(u))
        );
        assert!(parse_assignee(body(json!({"userId": "bob"})))
            .unwrap_err()
            .fields
            .contains_key("userId"));
    }

    #[test]
    fn queries() {
        let q = ProjectQuery::parse("status=review&search=50%25_off").unwrap();
        assert_eq!(q.status, Some(ProjectStatus::Review));
        let (sql, args) = q.clauses(3);
        assert_eq!(
            sql,
            " AND p.status = ?3 AND (p.title LIKE ?4 ESCAPE '\\' OR p.description LIKE ?4 ESCAPE '\\')"
        );
        assert_eq!(args[1], SqlArg::Text("%50\\%\\_off%".into()));
        let e =
            ProjectQuery::parse(&format!("status=done&search={}", "x".repeat(201))).unwrap_err();
        assert!(e.fields.contains_key("status") && e.fields.contains_key("search"));

        let p = "prj_0123456789abcdef0123456789abcdef";
        let q = TicketQuery::parse(&format!(
            "projectId={p}&status=ready&status=review,in_progress&status=ready&assignedToMe=true"
        ))
        .unwrap();
        assert_eq!(
            q.statuses,
            vec![
                TicketStatus::Ready,
                TicketStatus::Review,
                TicketStatus::InProgress
            ]
        );
        let (sql, args) = q.clauses(2, &UserId::from("usr_1"));
        assert_eq!(
            sql,
            " AND t.project_id = ?2 AND t.status IN ('ready', 'review', 'in_progress') AND t.assignee_user_id = ?3"
        );
        assert_eq!(args.len(), 2);
        let q = TicketQuery::parse("status[]=blocked").unwrap();
        assert_eq!(q.statuses, vec![TicketStatus::Blocked]);
        let e = TicketQuery::parse("projectId=x&status=ready,done&assignedToMe=yes").unwrap_err();
        for f in ["projectId", "status", "assignedToMe"] {
            assert!(e.fields.contains_key(f), "{f}");
        }
        assert!(e.fields["status"].contains("done"));
        assert_eq!(TicketQuery::parse("").unwrap().statuses, vec![]);
    }

    #[test]
    fn records_read_as_the_contract_writes_them() {
        let row = json!({
            "id": "prj_1", "app_id": null, "title": "T", "description": null, "source": "new",
            "status": "review", "github_repo_url": null, "github_repo_name": null,
            "github_default_branch": null, "stakeholder_user_id": "usr_1",
            "analysis_result": "{\"summary\":\"s\",\"stack\":[\"react\"],\"dependencies\":[{\"name\":\"react\",\"version\":\"18\"}],\"components\":[],\"routes\":[],\"apiEndpoints\":[],\"fileCount\":3}",
            "generation_state": "failed", "generation_step": null,
            "generation_error": "{\"code\":\"E005\",\"message\":\"m\"}",
            "total_tickets": 2.0, "completed_tickets": 1.0, "created_at": 100.0,
            "updated_at": 101.0, "analyzed_at": 100.0, "approved_at": null, "completed_at": null
        });
        let r: ProjectRecord = serde_json::from_value(row).unwrap();
        let v = serde_json::to_value(r.view()).unwrap();
        assert_eq!(v["githubDefaultBranch"], "main");
        assert_eq!(v["analysisResult"]["apiEndpoints"], json!([]));
        assert_eq!(v["analysisResult"]["fileCount"], 3);
        assert_eq!(
            v["generation"],
            json!({"state": "failed", "step": null, "error": {"code": "E005", "message": "m"}})
        );
        assert_eq!(
            v["allowedActions"],
            json!(["approve", "regenerate", "archive"])
        );
        assert_eq!(
            (v["createdAt"].clone(), v["totalTickets"].clone()),
            (json!(100), json!(2))
        );

        let t = json!({
            "id": "tkt_1", "project_id": "prj_1", "number": 3.0, "title": "T", "description": "D",
            "type": "feature", "priority": "high", "status": "assigned", "order_index": 2.0,
            "category": null, "tags": "[\"x\"]", "branch_name": null, "pr_url": null,
            "commit_count": 0.0, "estimated_hours": 4.0, "actual_hours": null,
            "affected_files": "not json", "acceptance_criteria": null, "assignee_user_id": "usr_1",
            "created_at": 1.0, "updated_at": 2.0, "started_at": null, "completed_at": null,
            "project_status": "in_progress", "open_blockers": "5,2"
        });
        let r: TicketRecord = serde_json::from_value(t).unwrap();
        assert_eq!(r.open_blockers_text(), "#2, #5");
        let v = serde_json::to_value(r.view()).unwrap();
        assert_eq!(v["type"], "feature");
        assert_eq!(v["tags"], json!(["x"]));
        assert_eq!(v["affectedFiles"], json!([]), "a broken column reads empty");
        assert_eq!(v["estimatedHours"], 4);
        assert_eq!(
            v["allowedTransitions"],
            json!(["cancelled"]),
            "blocked: no in_progress"
        );
        let d: Dependency = serde_json::from_value(json!({
            "ticket_id": "tkt_1", "depends_on_ticket_id": "tkt_2", "dependency_type": "blocks"
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"ticketId": "tkt_1", "dependsOnTicketId": "tkt_2", "type": "blocks"})
        );
    }
}
