//! The orchestrator's D1 repository: projects, tickets, dependencies and members, with bound
//! parameters only.
//!
//! Invariants:
//! - the access rule (`orchestrator_access::visible`: the stakeholder or a member) is in every
//!   statement a request reaches, reads and writes alike, so "no row" means "not there or not
//!   yours", which is one 404;
//! - a write that changes several rows is one batch (one transaction): a ticket's change, the
//!   tickets it readies, its project's counts and the project's automatic moves
//!   (`in_progress`, `completed`) commit together or not at all;
//! - the cascades are written as conditions on the stored state, not on what the request read
//!   before: two blockers completed at once still ready their dependent, and a project completes
//!   exactly when its last open ticket closes. Their status lists come from
//!   `domain::orchestrator::lifecycle`.

use super::db::{all, first, int, opt, stmt, text};
use super::orchestrator_access::visible;
use crate::domain::apps::SqlArg;
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::{AppId, ProjectId, TicketId, UserId};
use crate::domain::orchestrator::api::{
    Dependency, ProjectQuery, ProjectRecord, TicketQuery, TicketRecord, PROJECT_COLUMNS,
    TICKET_COLUMNS,
};
use crate::domain::orchestrator::lifecycle::{self, sql_list};
use crate::domain::orchestrator::model::{
    DependencyType, Priority, ProjectSource, ProjectStatus, TicketStatus, TicketType,
};
use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

/// Most rows a list returns (newest projects first; tickets by project, then order).
pub const MAX_LIST: u32 = 1000;

fn binds(args: &[SqlArg]) -> Vec<JsValue> {
    args.iter()
        .map(|a| match a {
            SqlArg::Text(s) => text(s),
            SqlArg::Int(n) => int(*n),
        })
        .collect()
}

/// The project statuses for which `pred` holds, as a SQL list.
fn project_list(pred: impl Fn(ProjectStatus) -> bool) -> String {
    let items: Vec<String> = ProjectStatus::all()
        .into_iter()
        .filter(|s| pred(*s))
        .map(|s| format!("'{s}'"))
        .collect();
    format!("({})", items.join(", "))
}

fn rows<T: serde::de::DeserializeOwned>(r: Option<&D1Result>) -> ApiResult<Vec<T>> {
    match r {
        Some(r) => Ok(r.results()?),
        None => Err(ApiError::internal()),
    }
}

// ---------------------------------------------------------------- projects

/// A project to create.
pub struct NewProjectRow<'a> {
    pub id: &'a ProjectId,
    pub stakeholder: &'a UserId,
    pub app_id: Option<&'a AppId>,
    pub title: &'a str,
    pub description: Option<&'a str>,
    pub source: ProjectSource,
    pub github_url: Option<&'a str>,
    pub github_name: Option<&'a str>,
    /// The repository's default branch (`main` when not known).
    pub github_branch: Option<&'a str>,
}

/// Inserts a project in `analyzing` with its generation `running`, unless the stakeholder
/// already has `max_active` active projects: the count and the insert are one statement, so
/// concurrent creates cannot overshoot. `Ok(false)`: the limit is reached.
pub async fn create_project(
    db: &D1Database,
    p: &NewProjectRow<'_>,
    max_active: u64,
) -> ApiResult<bool> {
    let active = project_list(lifecycle::project_is_active);
    let r = stmt(
        db,
        &format!(
            "INSERT INTO orchestration_projects (id, stakeholder_user_id, app_id, title, description, \
             source, status, github_repo_url, github_repo_name, github_default_branch, generation_state) \
             SELECT ?2, ?1, ?3, ?4, ?5, ?6, 'analyzing', ?7, ?8, COALESCE(?10, 'main'), 'running' \
             WHERE (SELECT COUNT(*) FROM orchestration_projects \
                    WHERE stakeholder_user_id = ?1 AND status IN {active}) < ?9"
        ),
        &[
            text(p.stakeholder),
            text(p.id),
            opt(p.app_id.map(|a| a.as_str())),
            text(p.title),
            opt(p.description),
            text(p.source.as_str()),
            opt(p.github_url),
            opt(p.github_name),
            int(max_active as i64),
            opt(p.github_branch),
        ],
    )?
    .run()
    .await?;
    Ok(r.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
}

/// How many active projects (those `MAX_PROJECTS_ACTIVE` counts) `user` is the stakeholder of.
pub async fn active_projects(db: &D1Database, user: &UserId) -> ApiResult<u64> {
    #[derive(Deserialize)]
    struct N {
        n: f64,
    }
    let active = project_list(lifecycle::project_is_active);
    let row: Option<N> = super::db::first(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM orchestration_projects \
             WHERE stakeholder_user_id = ?1 AND status IN {active}"
        ),
        &[text(user)],
    )
    .await?;
    Ok(row.map_or(0, |r| r.n as u64))
}

/// The project if `user` may see it.
pub async fn project(
    db: &D1Database,
    user: &UserId,
    id: &ProjectId,
) -> ApiResult<Option<ProjectRecord>> {
    first(
        db,
        &format!(
            "SELECT {PROJECT_COLUMNS} FROM orchestration_projects p WHERE p.id = ?2 AND {}",
            visible("p", 1)
        ),
        &[text(user), text(id)],
    )
    .await
}

/// The projects `user` may see, newest first.
pub async fn list_projects(
    db: &D1Database,
    user: &UserId,
    q: &ProjectQuery,
) -> ApiResult<Vec<ProjectRecord>> {
    let (filter, args) = q.clauses(2);
    let mut b = vec![text(user)];
    b.extend(binds(&args));
    all(
        db,
        &format!(
            "SELECT {PROJECT_COLUMNS} FROM orchestration_projects p WHERE {}{filter} \
             ORDER BY p.created_at DESC, p.rowid DESC LIMIT {MAX_LIST}",
            visible("p", 1)
        ),
        &b,
    )
    .await
}

fn tickets_of_sql() -> String {
    format!(
        "SELECT {TICKET_COLUMNS} FROM orchestration_tickets t \
         JOIN orchestration_projects p ON p.id = t.project_id \
         WHERE t.project_id = ?2 AND {} ORDER BY t.order_index, t.number",
        visible("p", 1)
    )
}

fn dependencies_of_sql() -> String {
    format!(
        "SELECT d.ticket_id, d.depends_on_ticket_id, d.dependency_type \
         FROM orchestration_ticket_dependencies d \
         JOIN orchestration_tickets t ON t.id = d.ticket_id \
         JOIN orchestration_projects p ON p.id = t.project_id \
         WHERE t.project_id = ?2 AND {} ORDER BY t.order_index, t.number, d.rowid",
        visible("p", 1)
    )
}

/// A project `user` may see with its tickets (by order) and dependencies, read in one
/// transaction.
pub async fn project_detail(
    db: &D1Database,
    user: &UserId,
    id: &ProjectId,
) -> ApiResult<Option<(ProjectRecord, Vec<TicketRecord>, Vec<Dependency>)>> {
    let b = [text(user), text(id)];
    let project = stmt(
        db,
        &format!(
            "SELECT {PROJECT_COLUMNS} FROM orchestration_projects p WHERE p.id = ?2 AND {}",
            visible("p", 1)
        ),
        &b,
    )?;
    let tickets = stmt(db, &tickets_of_sql(), &b)?;
    let deps = stmt(db, &dependencies_of_sql(), &b)?;
    let results = db.batch(vec![project, tickets, deps]).await?;
    let mut projects: Vec<ProjectRecord> = rows(results.first())?;
    let Some(p) = projects.pop() else {
        return Ok(None);
    };
    Ok(Some((p, rows(results.get(1))?, rows(results.get(2))?)))
}

/// How a project moves: from which statuses, to which, with which extra assignments (SQL over
/// the row, e.g. `approved_at = unixepoch()`).
pub struct ProjectMove<'a> {
    pub from: &'a [ProjectStatus],
    pub to: ProjectStatus,
    pub extra: &'a str,
    /// Only when no generation is running.
    pub idle_generation: bool,
    /// Also ready the pending tickets whose blockers are all completed (on approval).
    pub ready_sweep: bool,
}

/// Moves a project `user` may see, guarded on its status (and generation), so a concurrent
/// change wins once. Returns the project as it is now and the tickets the move readied, if the
/// move happened.
pub async fn move_project(
    db: &D1Database,
    user: &UserId,
    id: &ProjectId,
    m: &ProjectMove<'_>,
) -> ApiResult<Option<(ProjectRecord, Vec<TicketId>)>> {
    let (from, to, extra, idle_generation) = (m.from, m.to, m.extra, m.idle_generation);
    let from: Vec<String> = from.iter().map(|s| format!("'{s}'")).collect();
    let guard = if idle_generation {
        " AND p.generation_state != 'running'"
    } else {
        ""
    };
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    let b = [text(user), text(id), text(to.as_str())];
    let update = stmt(
        db,
        &format!(
            "UPDATE orchestration_projects AS p SET status = ?3, updated_at = unixepoch(){extra} \
             WHERE p.id = ?2 AND p.status IN ({}){guard} AND {} RETURNING id",
            from.join(", "),
            visible("p", 1)
        ),
        &b,
    )?;
    let mut batch = vec![update];
    // An approved plan's first tickets are ready (whoever wrote them, and however).
    if m.ready_sweep {
        batch.push(readiness_stmt(db, id)?);
    }
    let after = stmt(
        db,
        &format!(
            "SELECT {PROJECT_COLUMNS} FROM orchestration_projects p WHERE p.id = ?2 AND {}",
            visible("p", 1)
        ),
        &b[..2],
    )?;
    batch.push(after);
    let last = batch.len() - 1;
    let results = db.batch(batch).await?;
    #[derive(Deserialize)]
    struct Id {
        id: TicketId,
    }
    let moved: Vec<Id> = rows(results.first())?;
    if moved.is_empty() {
        return Ok(None);
    }
    let readied = match m.ready_sweep {
        true => rows::<Id>(results.get(1))?
            .into_iter()
            .map(|r| r.id)
            .collect(),
        false => Vec::new(),
    };
    Ok(rows::<ProjectRecord>(results.get(last))?
        .pop()
        .map(|p| (p, readied)))
}

// ---------------------------------------------------------------- tickets

/// The ticket if `user` may see its project.
pub async fn ticket(
    db: &D1Database,
    user: &UserId,
    id: &TicketId,
) -> ApiResult<Option<TicketRecord>> {
    first(
        db,
        &format!(
            "SELECT {TICKET_COLUMNS} FROM orchestration_tickets t \
             JOIN orchestration_projects p ON p.id = t.project_id WHERE t.id = ?2 AND {}",
            visible("p", 1)
        ),
        &[text(user), text(id)],
    )
    .await
}

/// The tickets of the projects `user` may see, filtered.
pub async fn list_tickets(
    db: &D1Database,
    user: &UserId,
    q: &TicketQuery,
) -> ApiResult<Vec<TicketRecord>> {
    let (filter, args) = q.clauses(2, user);
    let mut b = vec![text(user)];
    b.extend(binds(&args));
    all(
        db,
        &format!(
            "SELECT {TICKET_COLUMNS} FROM orchestration_tickets t \
             JOIN orchestration_projects p ON p.id = t.project_id WHERE {}{filter} \
             ORDER BY p.created_at DESC, p.rowid DESC, t.order_index, t.number LIMIT {MAX_LIST}",
            visible("p", 1)
        ),
        &b,
    )
    .await
}

/// Readies the project's pending tickets whose `blocks` dependencies are all completed
/// (`lifecycle::becomes_ready`); returns the readied ids.
fn readiness_stmt(db: &D1Database, project: &ProjectId) -> ApiResult<D1PreparedStatement> {
    stmt(
        db,
        "UPDATE orchestration_tickets SET status = 'ready', updated_at = unixepoch() \
         WHERE project_id = ?1 AND status = 'pending' AND NOT EXISTS ( \
             SELECT 1 FROM orchestration_ticket_dependencies d \
             JOIN orchestration_tickets b ON b.id = d.depends_on_ticket_id \
             WHERE d.ticket_id = orchestration_tickets.id AND d.dependency_type = 'blocks' \
               AND b.status != 'completed') \
         RETURNING id",
        &[text(project)],
    )
}

/// How a project stands before and after a ticket write.
#[derive(Debug, Clone, Deserialize)]
pub struct ProjectCounts {
    pub status: ProjectStatus,
    pub total_tickets: f64,
    pub completed_tickets: f64,
    pub completed_at: Option<f64>,
}

/// What a ticket write did.
pub struct TicketWritten {
    /// The ticket as it is now (`None`: it went away, or is no longer the caller's to see).
    pub ticket: Option<TicketRecord>,
    /// Whether the write itself applied (its guards held).
    pub applied: bool,
    /// Tickets readied by the change (pending → ready).
    pub readied: Vec<TicketId>,
    pub before: Option<ProjectCounts>,
    pub after: Option<ProjectCounts>,
}

/// Writes `sets` (column, value) to a ticket `user` may see, guarded on its status still being
/// `from` and its project accepting the write (work for a status change, else edits), then in
/// the same batch: readies the dependents it unblocked, recounts the project, and moves the
/// project to `in_progress` (work started) or `completed` (every ticket done). `sets` may use
/// SQL expressions: each value is `(column, expression, binds)` with `?` placeholders numbered
/// by this function.
pub async fn write_ticket(
    db: &D1Database,
    user: &UserId,
    t: &TicketRecord,
    sets: Vec<(&str, Set)>,
    status_change: bool,
) -> ApiResult<TicketWritten> {
    let project = &t.project_id;
    let accepts = if status_change {
        project_list(lifecycle::project_accepts_work)
    } else {
        project_list(lifecycle::project_accepts_edits)
    };
    let mut b = vec![text(user), text(&t.id), text(t.status.as_str())];
    let mut assigns = vec!["updated_at = unixepoch()".to_string()];
    for (col, set) in sets {
        let (value, expr) = match set {
            Set::Text(t) => (text(t), None),
            Set::Number(n) => (JsValue::from_f64(n), None),
            Set::Null => (JsValue::NULL, None),
            Set::Expr(e) => {
                assigns.push(format!("{col} = {e}"));
                continue;
            }
            Set::TextExpr(t, e) => (text(t), Some(e)),
        };
        b.push(value);
        let n = format!("?{}", b.len());
        assigns.push(match expr {
            Some(e) => format!("{col} = {}", e.replace("?v", &n)),
            None => format!("{col} = {n}"),
        });
    }
    let counts_sql = "SELECT status, total_tickets, completed_tickets, completed_at \
                      FROM orchestration_projects WHERE id = ?1";
    let before = stmt(db, counts_sql, &[text(project)])?;
    let update = stmt(
        db,
        &format!(
            "UPDATE orchestration_tickets SET {} WHERE id = ?2 AND status = ?3 AND EXISTS ( \
                 SELECT 1 FROM orchestration_projects p WHERE p.id = orchestration_tickets.project_id \
                 AND p.status IN {accepts} AND {}) RETURNING id",
            assigns.join(", "),
            visible("p", 1)
        ),
        &b,
    )?;
    let readiness = readiness_stmt(db, project)?;
    let recount = stmt(
        db,
        "UPDATE orchestration_projects SET \
             total_tickets = (SELECT COUNT(*) FROM orchestration_tickets WHERE project_id = ?1), \
             completed_tickets = (SELECT COUNT(*) FROM orchestration_tickets \
                                  WHERE project_id = ?1 AND status = 'completed'), \
             updated_at = unixepoch() \
         WHERE id = ?1",
        &[text(project)],
    )?;
    let start = stmt(
        db,
        &format!(
            "UPDATE orchestration_projects SET status = 'in_progress', updated_at = unixepoch() \
             WHERE id = ?1 AND status = 'approved' AND EXISTS ( \
                 SELECT 1 FROM orchestration_tickets WHERE project_id = ?1 AND status IN {})",
            sql_list(lifecycle::work_started)
        ),
        &[text(project)],
    )?;
    let complete = stmt(
        db,
        &format!(
            "UPDATE orchestration_projects SET status = 'completed', completed_at = unixepoch(), \
                 updated_at = unixepoch() \
             WHERE id = ?1 AND status = 'in_progress' \
               AND EXISTS (SELECT 1 FROM orchestration_tickets WHERE project_id = ?1) \
               AND NOT EXISTS (SELECT 1 FROM orchestration_tickets \
                               WHERE project_id = ?1 AND status NOT IN {})",
            sql_list(lifecycle::ticket_is_final)
        ),
        &[text(project)],
    )?;
    let after = stmt(db, counts_sql, &[text(project)])?;
    let now = stmt(
        db,
        &format!(
            "SELECT {TICKET_COLUMNS} FROM orchestration_tickets t \
             JOIN orchestration_projects p ON p.id = t.project_id WHERE t.id = ?2 AND {}",
            visible("p", 1)
        ),
        &[text(user), text(&t.id)],
    )?;
    let results = db
        .batch(vec![
            before, update, readiness, recount, start, complete, after, now,
        ])
        .await?;
    #[derive(Deserialize)]
    struct Id {
        id: TicketId,
    }
    let applied = !rows::<Id>(results.get(1))?.is_empty();
    let readied = rows::<Id>(results.get(2))?
        .into_iter()
        .map(|r| r.id)
        .collect();
    Ok(TicketWritten {
        before: rows::<ProjectCounts>(results.first())?.pop(),
        applied,
        readied,
        after: rows::<ProjectCounts>(results.get(6))?.pop(),
        ticket: rows::<TicketRecord>(results.get(7))?.pop(),
    })
}

/// One assignment of [`write_ticket`].
pub enum Set {
    Text(String),
    Number(f64),
    Null,
    /// A SQL expression over the row, e.g. `COALESCE(started_at, unixepoch())`.
    Expr(&'static str),
    /// A SQL expression using one bound text, written `?v`.
    TextExpr(String, &'static str),
}

/// A ticket status to store.
pub fn status_value(s: TicketStatus) -> Set {
    Set::Text(s.as_str().to_string())
}

/// Marks a running generation failed with `error` (`{code, message}`), e.g. when its planner
/// could not be started.
pub async fn generation_failed(
    db: &D1Database,
    project: &ProjectId,
    code: &str,
    message: &str,
) -> ApiResult<()> {
    let error = serde_json::json!({ "code": code, "message": message }).to_string();
    stmt(
        db,
        "UPDATE orchestration_projects SET generation_state = 'failed', generation_step = NULL, \
         generation_error = ?2, updated_at = unixepoch() \
         WHERE id = ?1 AND generation_state = 'running'",
        &[text(project), text(&error)],
    )?
    .run()
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- generation
//
// The planner object's writes (ticket generation, issue 13): provided here so every orchestrator
// statement stays in this repository; unused until the planner lands.

/// A generated ticket to store (see [`store_generation`]).
#[allow(dead_code)]
pub struct GeneratedTicket<'a> {
    pub id: &'a TicketId,
    pub title: &'a str,
    pub description: &'a str,
    pub kind: TicketType,
    pub priority: Priority,
    pub category: Option<&'a str>,
    pub tags: &'a [String],
    pub estimated_hours: Option<u32>,
    pub affected_files: &'a [String],
    pub acceptance_criteria: &'a [String],
}

/// Records the step a running generation is at (what the project's `generation.step` shows).
#[allow(dead_code)]
pub async fn generation_step(db: &D1Database, project: &ProjectId, step: &str) -> ApiResult<()> {
    stmt(
        db,
        "UPDATE orchestration_projects SET generation_step = ?2, updated_at = unixepoch() \
         WHERE id = ?1 AND generation_state = 'running'",
        &[text(project), text(step)],
    )?
    .run()
    .await?;
    Ok(())
}

/// Stores a finished generation in one batch: the project's previous tickets (and so their
/// dependencies) are replaced by `tickets`, numbered 1… in the given order (which is also their
/// `orderIndex`), with `deps` (ticket, depends on, type) between them; tickets without a
/// `blocks` dependency are `ready`, the others `pending`; the analysis is stored and the project
/// moves to `review` with its generation idle. Guarded on the project still being `analyzing`
/// with its generation running: `Ok(false)` when it was not (archived meanwhile, or another
/// generation took over), and nothing is written.
#[allow(dead_code)]
pub async fn store_generation(
    db: &D1Database,
    project: &ProjectId,
    analysis_json: &str,
    tickets: &[GeneratedTicket<'_>],
    deps: &[(TicketId, TicketId, DependencyType)],
) -> ApiResult<bool> {
    let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    // The guard: every statement below runs only while the project is still this generation's.
    let running = "EXISTS (SELECT 1 FROM orchestration_projects \
                   WHERE id = ?1 AND status = 'analyzing' AND generation_state = 'running')";
    let mut batch = vec![stmt(
        db,
        &format!("DELETE FROM orchestration_tickets WHERE project_id = ?1 AND {running}"),
        &[text(project)],
    )?];
    for (i, t) in tickets.iter().enumerate() {
        let blocked = deps
            .iter()
            .any(|(a, _, k)| a == t.id && *k == DependencyType::Blocks);
        batch.push(stmt(
            db,
            &format!(
                "INSERT INTO orchestration_tickets (id, project_id, number, title, description, type, \
                 priority, status, order_index, category, tags, estimated_hours, affected_files, \
                 acceptance_criteria) SELECT ?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?3, ?9, ?10, ?11, ?12, ?13 \
                 WHERE {running}"
            ),
            &[
                text(project),
                text(t.id),
                int(i as i64 + 1),
                text(t.title),
                text(t.description),
                text(t.kind.as_str()),
                text(t.priority.as_str()),
                text(if blocked { "pending" } else { "ready" }),
                opt(t.category),
                text(list(t.tags)),
                t.estimated_hours
                    .map(|h| JsValue::from_f64(h as f64))
                    .unwrap_or(JsValue::NULL),
                text(list(t.affected_files)),
                text(list(t.acceptance_criteria)),
            ],
        )?);
    }
    for (a, b, k) in deps {
        batch.push(stmt(
            db,
            &format!(
                "INSERT INTO orchestration_ticket_dependencies (id, ticket_id, depends_on_ticket_id, \
                 dependency_type) SELECT ?2, ?3, ?4, ?5 WHERE {running}"
            ),
            &[
                text(project),
                text(crate::domain::random::id("dep")),
                text(a),
                text(b),
                text(k.as_str()),
            ],
        )?);
    }
    batch.push(stmt(
        db,
        "UPDATE orchestration_projects SET status = 'review', generation_state = 'idle', \
         generation_step = NULL, generation_error = NULL, analysis_result = ?2, \
         analyzed_at = unixepoch(), updated_at = unixepoch(), \
         total_tickets = (SELECT COUNT(*) FROM orchestration_tickets WHERE project_id = ?1), \
         completed_tickets = 0 \
         WHERE id = ?1 AND status = 'analyzing' AND generation_state = 'running' RETURNING id",
        &[text(project), text(analysis_json)],
    )?);
    let results = db.batch(batch).await?;
    #[derive(Deserialize)]
    struct Id {
        #[allow(dead_code)]
        id: ProjectId,
    }
    Ok(!rows::<Id>(results.last())?.is_empty())
}
