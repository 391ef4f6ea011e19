//! `/api/orchestrator/*` (REST): projects (list, create, get with tickets and plan, generate,
//! approve / regenerate / archive) and tickets (list, change, assign), per the wire contract of
//! issue 13. The WebSocket hub and the GitHub routes live elsewhere.
//!
//! Invariants: a project or ticket the caller may not see answers 404 E002 on every route,
//! exactly like a missing one (the repository's queries carry the access rule); a refused
//! transition is a 409 E004 naming what is allowed; every change is committed before its hub
//! events are published (`services::orchestrator_hub::publish`), and a change that changed
//! nothing publishes nothing.

use crate::domain::apps::{NewApp, Visibility};
use crate::domain::codegen::agent_call::{AgentCall, Requester, BINDING as CODEGEN};
use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::github::import::{import, Imported};
use crate::domain::github::{GitHub, GitHubErrorKind};
use crate::domain::ids::{AppId, ProjectId, TicketId};
use crate::domain::input::Patch;
use crate::domain::orchestrator::api::{
    parse_assignee, GithubRepo, ImplementationState, NewProject, ProjectChange, ProjectDetail,
    ProjectQuery, ProjectRecord, TicketPatch, TicketQuery, TicketRecord,
};
use crate::domain::orchestrator::events;
use crate::domain::orchestrator::implement;
use crate::domain::orchestrator::lifecycle::{self, conflict, ProjectAction};
use crate::domain::orchestrator::model::{ProjectSource, ProjectStatus, TicketStatus};
use crate::domain::orchestrator::protocol::HubMessage;
use crate::http::auth::Caller;
use crate::http::{internal, json, json_body, App};
use crate::services::db;
use crate::services::github::{self as github_store, FetchGitHub};
use crate::services::orchestrator_db::{self as odb, status_value, Set};
pub(crate) use crate::services::ticket_work::{
    counts_json, publish_all, to_json, write_and_publish,
};
use crate::services::{orchestrator_access, orchestrator_planner};
use serde_json::json;
use worker::{Method, Request, RequestInit, Response};

fn project_missing() -> ApiError {
    ApiError::not_found("project")
}

fn ticket_missing() -> ApiError {
    ApiError::not_found("ticket")
}

/// Project ids are ours (`prj_` + 32 hex); anything else cannot exist.
fn project_id(id: &str) -> ApiResult<ProjectId> {
    ProjectId::parse(id).ok_or_else(project_missing)
}

fn ticket_id(id: &str) -> ApiResult<TicketId> {
    TicketId::parse(id).ok_or_else(ticket_missing)
}

/// Starts the project's generation (already marked running); a planner that cannot be
/// started marks it failed at once, so the project never waits for a generation that is not
/// running.
async fn start_generation(
    app: &App,
    project: &ProjectRecord,
    guidance: Option<String>,
) -> ApiResult<()> {
    let Err(e) = orchestrator_planner::start(&app.env, &project.id, guidance).await else {
        return Ok(());
    };
    worker::console_error!("starting the generation of {}: {e}", project.id);
    let message = "ticket generation could not be started; try again";
    odb::generation_failed(&app.db()?, &project.id, "E005", message).await?;
    publish_all(
        app,
        vec![HubMessage::GenerationFailed {
            project_id: project.id.clone(),
            code: "E005".into(),
            message: message.into(),
        }],
    )
    .await;
    Ok(())
}

// ---------------------------------------------------------------- projects

pub async fn list_projects(req: Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    let q = ProjectQuery::parse(req.url()?.query().unwrap_or(""))?;
    let rows = odb::list_projects(&app.db()?, &caller.user_id, &q).await?;
    let projects: Vec<_> = rows.iter().map(ProjectRecord::view).collect();
    json(200, &json!({ "projects": projects }))
}

fn project_limit(max: u64) -> ApiError {
    let mut e = ApiError::new(
        403,
        ErrorCode::E004,
        format!(
            "project limit reached: an account can have at most {max} active projects; \
             complete or archive one to create another"
        ),
    );
    e.fields.insert("maxProjectsActive".into(), max.to_string());
    e
}

/// Imports the repository's default branch as a new app of the caller's, titled `title`, its
/// files saved as the app's first version (`domain::github::import`); the app and the import.
async fn import_repo(
    app: &App,
    caller: &Caller,
    repo: &GithubRepo,
    title: &str,
) -> ApiResult<(AppId, Imported)> {
    let (_, token) = super::github::token_of(app, caller).await?;
    let base = app
        .cfg
        .github_export
        .as_ref()
        .map(|c| c.endpoints.api.clone())
        .ok_or_else(ApiError::internal)?;
    let gh = GitHub::new(&FetchGitHub, &base, &token);
    let full = repo.full_name();
    let imported = import(&gh, &repo.owner, &repo.name)
        .await
        .map_err(|e| match e.kind {
            GitHubErrorKind::NotFound => ApiError::field(
                "githubUrl",
                format!("{full} is not a repository the connected GitHub account can read"),
            ),
            GitHubErrorKind::EmptyRepository | GitHubErrorKind::Invalid => {
                ApiError::field("githubUrl", e.message)
            }
            _ => e.to_api_error(),
        })?;
    if imported.files.is_empty() {
        return Err(ApiError::field(
            "githubUrl",
            format!("{full} has no text file to import within the import's bounds"),
        ));
    }
    let app_id = AppId::generate();
    let short = &imported.commit[..imported.commit.len().min(7)];
    let new_app = NewApp {
        title: title.chars().take(crate::domain::apps::MAX_TITLE).collect(),
        description: Some(format!("Imported from {} at {short}", repo.url())),
        visibility: Visibility::Private,
        tags: Vec::new(),
        config: serde_json::Map::new(),
    };
    let db = app.db()?;
    let max_apps = app.cfg.max_apps_per_user;
    if !db::create_app(&db, &app_id, &caller.user_id, &new_app, max_apps).await? {
        let mut e = ApiError::new(
            403,
            ErrorCode::E004,
            format!("app limit reached: the repository is imported as an app, and an account can hold at most {max_apps} apps; delete one first"),
        );
        e.fields.insert("maxApps".into(), max_apps.to_string());
        return Err(e);
    }
    github_store::save_version(
        &app.env,
        &app_id,
        1,
        &format!("Imported from {full} at {short}"),
        &imported.files,
    )
    .await?;
    Ok((app_id, imported))
}

pub async fn create_project(mut req: Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    let new = NewProject::parse(json_body(&mut req).await?)?;
    let db = app.db()?;
    let mut title = new.title.clone();
    if let Some(app_id) = &new.app_id {
        let owned = db::app_by_id(&db, app_id)
            .await?
            .filter(|a| a.user_id.as_ref() == Some(&caller.user_id));
        let Some(rec) = owned else {
            return Err(ApiError::field("appId", "is not one of your apps"));
        };
        title.get_or_insert(rec.title);
    }
    if let Some(g) = &new.github {
        title.get_or_insert_with(|| g.name.clone());
    }
    let title = title.ok_or_else(ApiError::internal)?;
    let id = ProjectId::generate();
    let max = app.cfg.max_projects_active;
    // A repository becomes the project's app when GitHub export is configured (without it,
    // the project is planned from its title and description alone).
    let imported = match (&new.github, &app.cfg.github_export) {
        (Some(g), Some(_)) => {
            if odb::active_projects(&db, &caller.user_id).await? >= max {
                return Err(project_limit(max));
            }
            Some(import_repo(app, caller, g, &title).await?)
        }
        _ => None,
    };
    let app_id = new
        .app_id
        .clone()
        .or_else(|| imported.as_ref().map(|(a, _)| a.clone()));
    let url = new.github.as_ref().map(|g| g.url());
    let name = new.github.as_ref().map(|g| g.full_name());
    let row = odb::NewProjectRow {
        id: &id,
        stakeholder: &caller.user_id,
        app_id: app_id.as_ref(),
        title: &title,
        description: new.description.as_deref(),
        source: new.source,
        github_url: url.as_deref(),
        github_name: name.as_deref(),
        github_branch: imported.as_ref().map(|(_, i)| i.default_branch.as_str()),
    };
    if !odb::create_project(&db, &row, max).await? {
        return Err(project_limit(max));
    }
    let project = odb::project(&db, &caller.user_id, &id)
        .await?
        .ok_or_else(ApiError::internal)?;
    start_generation(app, &project, None).await?;
    let project = odb::project(&db, &caller.user_id, &id)
        .await?
        .ok_or_else(ApiError::internal)?;
    let message = match new.source {
        ProjectSource::App => "Project created successfully; analysing the app",
        ProjectSource::Github if imported.is_some() => {
            "Project created successfully; the repository was imported as its app, analysing it"
        }
        ProjectSource::Github => "Project created successfully; analysing the repository",
        ProjectSource::New => "Project created successfully; planning the tickets",
    };
    let mut body = json!({ "project": project.view(), "message": message });
    if let Some((app_id, i)) = &imported {
        body["import"] = json!({
            "appId": app_id,
            "commit": i.commit,
            "defaultBranch": i.default_branch,
            "files": i.files.len(),
            "skipped": i.skipped,
        });
    }
    json(201, &body)
}

pub async fn get_project(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let id = project_id(id)?;
    let (p, tickets, deps) = odb::project_detail(&app.db()?, &caller.user_id, &id)
        .await?
        .ok_or_else(project_missing)?;
    json(200, &ProjectDetail::new(&p, &tickets, deps))
}

/// The assignments that start a generation.
const GENERATION_RUNNING: &str =
    "generation_state = 'running', generation_step = NULL, generation_error = NULL";

pub async fn generate(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let id = project_id(id)?;
    let db = app.db()?;
    let old = odb::project(&db, &caller.user_id, &id)
        .await?
        .ok_or_else(project_missing)?;
    let refusal = |p: &ProjectRecord| {
        if p.generation_state == crate::domain::orchestrator::api::GenerationState::Running {
            conflict("a ticket generation is already running for this project")
        } else {
            conflict(format!(
                "tickets are generated for a project in analyzing or review; this one is {}",
                p.status
            ))
        }
    };
    let from = [ProjectStatus::Analyzing, ProjectStatus::Review];
    if !from.contains(&old.status)
        || old.generation_state == crate::domain::orchestrator::api::GenerationState::Running
    {
        return Err(refusal(&old));
    }
    let step = odb::ProjectMove {
        from: &from,
        to: ProjectStatus::Analyzing,
        extra: GENERATION_RUNNING,
        idle_generation: true,
        ready_sweep: false,
    };
    let Some((new, _)) = odb::move_project(&db, &caller.user_id, &id, &step).await? else {
        // Changed meanwhile: answer for what it is now.
        let now = odb::project(&db, &caller.user_id, &id)
            .await?
            .ok_or_else(project_missing)?;
        return Err(refusal(&now));
    };
    publish_all(
        app,
        events::project_changed(&id, &to_json(&old.view()), &to_json(&new.view())),
    )
    .await;
    start_generation(app, &new, None).await?;
    json(
        200,
        &json!({ "message": "Ticket generation started", "projectId": id }),
    )
}

pub async fn patch_project(
    mut req: Request,
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<Response> {
    let id = project_id(id)?;
    let change = ProjectChange::parse(json_body(&mut req).await?)?;
    let db = app.db()?;
    let old = odb::project(&db, &caller.user_id, &id)
        .await?
        .ok_or_else(project_missing)?;
    let to = lifecycle::apply_action(old.status, change.action)?;
    let extra = match change.action {
        ProjectAction::Approve => "approved_at = unixepoch()",
        ProjectAction::Regenerate => GENERATION_RUNNING,
        ProjectAction::Archive => "",
    };
    let regenerate = change.action == ProjectAction::Regenerate;
    let step = odb::ProjectMove {
        from: &[old.status],
        to,
        extra,
        idle_generation: regenerate,
        ready_sweep: change.action == ProjectAction::Approve,
    };
    let moved = odb::move_project(&db, &caller.user_id, &id, &step).await?;
    let Some((new, readied)) = moved else {
        let now = odb::project(&db, &caller.user_id, &id)
            .await?
            .ok_or_else(project_missing)?;
        lifecycle::apply_action(now.status, change.action)?;
        return Err(conflict(
            "a ticket generation is running for this project; wait for it to finish",
        ));
    };
    let mut messages = events::project_changed(&id, &to_json(&old.view()), &to_json(&new.view()));
    for t in &readied {
        messages.extend(events::ticket_readied(&id, t));
    }
    publish_all(app, messages).await;
    if regenerate {
        start_generation(app, &new, change.guidance).await?;
    }
    let now = odb::project(&db, &caller.user_id, &id)
        .await?
        .ok_or_else(project_missing)?;
    json(200, &json!({ "project": now.view() }))
}

// ---------------------------------------------------------------- tickets

pub async fn list_tickets(req: Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    let q = TicketQuery::parse(req.url()?.query().unwrap_or(""))?;
    let db = app.db()?;
    if let Some(p) = &q.project {
        if odb::project(&db, &caller.user_id, p).await?.is_none() {
            return Err(project_missing());
        }
    }
    let rows = odb::list_tickets(&db, &caller.user_id, &q).await?;
    let tickets: Vec<_> = rows.iter().map(TicketRecord::view).collect();
    json(200, &json!({ "tickets": tickets }))
}

fn json_text<T: serde::Serialize>(v: &T) -> ApiResult<Set> {
    Ok(Set::Text(serde_json::to_string(v).map_err(internal)?))
}

fn nullable<T>(p: &Patch<T>, f: impl Fn(&T) -> Set) -> Option<Set> {
    match p {
        Patch::Absent => None,
        Patch::Null => Some(Set::Null),
        Patch::Value(v) => Some(f(v)),
    }
}

/// Writes a ticket change with its cascades, publishes what changed, and answers the ticket.
async fn write_and_answer(
    app: &App,
    caller: &Caller,
    old: &TicketRecord,
    sets: Vec<(&str, Set)>,
    status_change: bool,
) -> ApiResult<Response> {
    let w = write_and_publish(app, &caller.user_id, old, sets, status_change).await?;
    let Some(now) = w.ticket else {
        return Err(ticket_missing());
    };
    if !w.applied {
        return Err(conflict(format!(
            "the ticket changed meanwhile (it is {} now, its project {}); reload and try again",
            now.status, now.project_status
        )));
    }
    json(200, &json!({ "ticket": now.view() }))
}

pub async fn patch_ticket(
    mut req: Request,
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<Response> {
    let id = ticket_id(id)?;
    let patch = TicketPatch::parse(json_body(&mut req).await?)?;
    let old = odb::ticket(&app.db()?, &caller.user_id, &id)
        .await?
        .ok_or_else(ticket_missing)?;
    let mut sets: Vec<(&str, Set)> = Vec::new();
    if let Some(to) = patch.status {
        lifecycle::check_ticket_move(old.status, to, old.context(), &old.open_blockers_text())?;
        sets.push(("status", status_value(to)));
        match to {
            TicketStatus::Assigned => sets.push((
                "assignee_user_id",
                Set::TextExpr(caller.user_id.to_string(), "COALESCE(assignee_user_id, ?v)"),
            )),
            TicketStatus::InProgress => {
                sets.push(("started_at", Set::Expr("COALESCE(started_at, unixepoch())")))
            }
            TicketStatus::Completed => sets.push(("completed_at", Set::Expr("unixepoch()"))),
            _ => {}
        }
    }
    let edits_before = sets.len();
    if let Some(t) = &patch.title {
        sets.push(("title", Set::Text(t.clone())));
    }
    if let Some(d) = &patch.description {
        sets.push(("description", Set::Text(d.clone())));
    }
    if let Some(p) = patch.priority {
        sets.push(("priority", Set::Text(p.as_str().into())));
    }
    if let Some(k) = patch.kind {
        sets.push(("type", Set::Text(k.as_str().into())));
    }
    let number = |h: &u32| Set::Number(*h as f64);
    sets.extend(nullable(&patch.estimated_hours, number).map(|s| ("estimated_hours", s)));
    sets.extend(nullable(&patch.actual_hours, number).map(|s| ("actual_hours", s)));
    sets.extend(nullable(&patch.branch_name, |b| Set::Text(b.clone())).map(|s| ("branch_name", s)));
    sets.extend(nullable(&patch.category, |c| Set::Text(c.clone())).map(|s| ("category", s)));
    for (col, list) in [
        ("acceptance_criteria", &patch.acceptance_criteria),
        ("affected_files", &patch.affected_files),
        ("tags", &patch.tags),
    ] {
        if let Some(l) = list {
            sets.push((col, json_text(l)?));
        }
    }
    let edits = sets.len() > edits_before;
    if edits && !lifecycle::project_accepts_edits(old.project_status) {
        return Err(conflict(format!(
            "the project is {}: its tickets cannot be edited now",
            old.project_status
        )));
    }
    write_and_answer(app, caller, &old, sets, patch.status.is_some()).await
}

pub async fn assign(mut req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let id = ticket_id(id)?;
    let has_body = req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .is_some_and(|l| l != "0");
    let assignee = if has_body {
        parse_assignee(json_body(&mut req).await?)?
    } else {
        None
    }
    .unwrap_or_else(|| caller.user_id.clone());
    let db = app.db()?;
    let old = odb::ticket(&db, &caller.user_id, &id)
        .await?
        .ok_or_else(ticket_missing)?;
    if assignee != caller.user_id
        && !orchestrator_access::can_view(&db, &assignee, &old.project_id).await?
    {
        return Err(ApiError::field("userId", "is not a member of this project"));
    }
    if !lifecycle::project_accepts_work(old.project_status) {
        return Err(conflict(format!(
            "the project is {}: tickets are assigned only once it is approved",
            old.project_status
        )));
    }
    let mut sets = vec![("assignee_user_id", Set::Text(assignee.to_string()))];
    match old.status {
        TicketStatus::Ready => sets.push(("status", status_value(TicketStatus::Assigned))),
        TicketStatus::Assigned
        | TicketStatus::InProgress
        | TicketStatus::Review
        | TicketStatus::Blocked => {}
        TicketStatus::Pending => {
            return Err(conflict(format!(
                "the ticket is not ready: blocked by {}, not completed yet",
                old.open_blockers_text()
            )))
        }
        TicketStatus::Completed | TicketStatus::Cancelled => {
            return Err(conflict(format!(
                "the ticket is {}: nobody works on it any more",
                old.status
            )))
        }
    }
    write_and_answer(app, caller, &old, sets, true).await
}

/// `POST /api/orchestrator/tickets/:id/implement`: the ticket becomes a follow-up edit of the
/// project's app, run by the app's agent (see `domain::orchestrator::implement`); 202 once the
/// run is queued, with the ticket now `in_progress`. The outcome is reported when the run ends
/// (the agent object calls `services::ticket_work::report`).
pub async fn implement(req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let id = ticket_id(id)?;
    let db = app.db()?;
    let old = odb::ticket(&db, &caller.user_id, &id)
        .await?
        .ok_or_else(ticket_missing)?;
    let project = odb::project(&db, &caller.user_id, &old.project_id)
        .await?
        .ok_or_else(ticket_missing)?;
    implement::check_start(old.status, old.context(), &old.open_blockers_text())?;
    let Some(app_id) = project.app_id.clone() else {
        return Err(conflict(
            "the project has no app to implement tickets in (its app was deleted, or it was created without one)",
        ));
    };
    // The app's agent works for the app's owner (their sandbox, keys and limits); the project's
    // stakeholder owns it unless it changed hands.
    let owner = db::app_by_id(&db, &app_id)
        .await?
        .and_then(|a| a.user_id)
        .ok_or_else(|| conflict("the project's app no longer exists"))?;
    if owner != project.stakeholder_user_id {
        return Err(ApiError::field(
            "appId",
            "the project's app no longer belongs to the project's stakeholder",
        ));
    }
    let list = |t: &Option<String>| -> Vec<String> {
        t.as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    };
    let (criteria, files) = (list(&old.acceptance_criteria), list(&old.affected_files));
    let request = implement::edit_request(&implement::TicketBrief {
        number: old.number as u32,
        title: &old.title,
        description: &old.description,
        acceptance_criteria: &criteria,
        affected_files: &files,
    });
    let job = implement::TicketJob::new(
        old.id.clone(),
        old.project_id.clone(),
        caller.user_id.clone(),
        request,
    );
    let call = AgentCall::Implement {
        by: Requester {
            app_id: app_id.clone(),
            user_id: owner,
            origin: req.url()?.origin().ascii_serialization(),
            session_id: caller.sid.clone(),
            token_exp: caller.expires_at,
        },
        job,
    };
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(call.to_json().into()));
    let fwd = Request::new_with_init("https://codegen/", &init)?;
    let resp = crate::objects::stub(&app.env, CODEGEN, app_id.as_str())?
        .fetch_with_request(fwd)
        .await?;
    if resp.status_code() != 202 {
        // The agent's refusal (no generated files, busy, full queue), already in our format.
        return Ok(resp);
    }
    // The run is queued: the ticket is being worked on.
    let mut sets = vec![
        (
            "implementation_state",
            Set::Text(ImplementationState::Running.as_str().into()),
        ),
        ("implementation_error", Set::Null),
    ];
    if old.status != TicketStatus::InProgress {
        sets.push(("status", status_value(TicketStatus::InProgress)));
        sets.push(("started_at", Set::Expr("COALESCE(started_at, unixepoch())")));
        sets.push((
            "assignee_user_id",
            Set::TextExpr(caller.user_id.to_string(), "COALESCE(assignee_user_id, ?v)"),
        ));
    }
    let status = old.status != TicketStatus::InProgress;
    let w = write_and_publish(app, &caller.user_id, &old, sets, status).await?;
    if !w.applied {
        worker::console_warn!(
            "implement: ticket {} changed while its run was queued; the run goes on",
            old.id
        );
    }
    let now = w.ticket.unwrap_or(old);
    json(
        202,
        &json!({
            "ticket": now.view(),
            "appId": app_id,
            "message": "The ticket's change is being made by the app's agent; follow it in the app's workspace",
        }),
    )
}
