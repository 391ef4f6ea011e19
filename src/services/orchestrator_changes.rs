//! Changing a ticket as one unit: the lifecycle check, the write with its cascades (one D1
//! batch: `orchestrator_db::write_ticket`), then the hub events of everything that changed. The
//! REST routes go through here, and so can any other writer acting for a user who may see the
//! project (e.g. a GitHub webhook acting for the project's stakeholder: [`check_move`], then
//! [`apply`] with [`status_sets`]), so a ticket never moves
//! without its dependents readied, its project recounted and its subscribers told.

use super::orchestrator_db::{self as odb, ProjectCounts, Set};
use super::orchestrator_hub;
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::UserId;
use crate::domain::orchestrator::api::TicketRecord;
use crate::domain::orchestrator::events;
use crate::domain::orchestrator::lifecycle::{self, conflict};
use crate::domain::orchestrator::model::TicketStatus;
use crate::domain::orchestrator::protocol::HubMessage;
use serde_json::{json, Value};
use worker::{D1Database, Env};

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Publishes `messages` in order (after the change they describe is committed).
pub async fn publish_all(env: &Env, messages: &[HubMessage]) {
    for m in messages {
        orchestrator_hub::publish(env, m).await;
    }
}

fn counts_json(c: &Option<ProjectCounts>) -> Value {
    match c {
        Some(c) => json!({
            "status": c.status,
            "totalTickets": c.total_tickets as u64,
            "completedTickets": c.completed_tickets as u64,
            "completedAt": c.completed_at.map(|t| t as i64),
        }),
        None => Value::Null,
    }
}

/// The assignments of a move to `to` made by `by`: the status, and what goes with it (the
/// assignee when nobody is, the start and completion times).
pub fn status_sets(to: TicketStatus, by: &UserId) -> Vec<(&'static str, Set)> {
    let mut sets = vec![("status", odb::status_value(to))];
    match to {
        TicketStatus::Assigned => sets.push((
            "assignee_user_id",
            Set::TextExpr(by.to_string(), "COALESCE(assignee_user_id, ?v)"),
        )),
        TicketStatus::InProgress => {
            sets.push(("started_at", Set::Expr("COALESCE(started_at, unixepoch())")))
        }
        TicketStatus::Completed => sets.push(("completed_at", Set::Expr("unixepoch()"))),
        _ => {}
    }
    sets
}

/// Checks a move of `old` to `to` against its lifecycle (409 E004 naming what is allowed, or
/// the unfinished blockers).
pub fn check_move(old: &TicketRecord, to: TicketStatus) -> ApiResult<()> {
    lifecycle::check_ticket_move(old.status, to, old.context(), &old.open_blockers_text())
}

/// Writes `sets` to `old` as `user` (who must be able to see its project), with the cascades,
/// publishes every change, and returns the ticket as it is now. `status_change`: the write
/// moves the ticket (the project must accept work), else it only edits fields (the project must
/// accept edits). A ticket changed meanwhile is a 409 E004 (the cascades still ran: they depend
/// only on the stored rows); one no longer visible is a 404 E002.
pub async fn apply(
    env: &Env,
    db: &D1Database,
    user: &UserId,
    old: &TicketRecord,
    sets: Vec<(&str, Set)>,
    status_change: bool,
) -> ApiResult<TicketRecord> {
    let w = odb::write_ticket(db, user, old, sets, status_change).await?;
    let project = &old.project_id;
    let mut messages = Vec::new();
    if w.applied {
        if let Some(new) = &w.ticket {
            messages.extend(events::ticket_changed(
                project,
                &old.id,
                &to_json(&old.view()),
                &to_json(&new.view()),
            ));
        }
    }
    for t in &w.readied {
        messages.extend(events::ticket_readied(project, t));
    }
    messages.extend(events::project_changed(
        project,
        &counts_json(&w.before),
        &counts_json(&w.after),
    ));
    publish_all(env, &messages).await;
    let Some(now) = w.ticket else {
        return Err(ApiError::not_found("ticket"));
    };
    if !w.applied {
        return Err(conflict(format!(
            "the ticket changed meanwhile (it is {} now, its project {}); reload and try again",
            now.status, now.project_status
        )));
    }
    Ok(now)
}
