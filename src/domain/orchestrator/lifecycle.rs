//! The project and ticket lifecycles (spec: Project Lifecycle, Ticket Lifecycle) as pure state
//! machines: what may follow what, what happens by itself (readiness, a project starting and
//! completing), and the refusal a client gets for anything else (409 E004 naming what is
//! allowed).
//!
//! Invariants (table-tested below, every pair of states):
//! - a project moves only along the spec's diagram, plus one addition: `archive` is also allowed
//!   from `review` and `approved` (a plan the stakeholder gives up on must not stay active, and
//!   count against `MAX_PROJECTS_ACTIVE`, forever). Not from `analyzing`: a generation in flight
//!   would write its tickets and move the project to `review` after it was archived; nor from
//!   `completed` or `archived`, which are final.
//! - a ticket moves only along the spec's diagram, plus one addition: `cancelled` from every
//!   non-final status (a project completes when every ticket is completed *or cancelled*, so a
//!   ticket nobody will do needs a way out). `completed` and `cancelled` are final.
//! - `pending → ready` happens only by itself, when every `blocks` dependency is completed; no
//!   client moves a ticket there.
//! - work on tickets (status changes, assignment) happens only in an approved or in-progress
//!   project; the project goes `in_progress` when the first ticket is assigned or started, and
//!   `completed` when every ticket is completed or cancelled.

use super::model::{ProjectStatus, TicketStatus};
use crate::domain::error::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use strum::{EnumIter, IntoStaticStr};

/// What moves a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ProjectEvent {
    /// The planner finished the analysis and the tickets.
    AnalysisComplete,
    /// The stakeholder approves the plan (`PATCH {action: approve}`).
    Approve,
    /// The stakeholder asks for new tickets (`PATCH {action: regenerate}`, `POST …/generate`).
    Regenerate,
    /// The first ticket was assigned or started.
    StartWork,
    /// Every ticket is completed or cancelled.
    AllTicketsDone,
    /// `PATCH {action: archive}`.
    Archive,
}

/// The actions a client sends in `PATCH /api/orchestrator/projects/:id`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    EnumIter,
    IntoStaticStr,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ProjectAction {
    Approve,
    Regenerate,
    Archive,
}

impl ProjectAction {
    pub const ALL: [(&'static str, ProjectAction); 3] = [
        ("approve", ProjectAction::Approve),
        ("regenerate", ProjectAction::Regenerate),
        ("archive", ProjectAction::Archive),
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn event(self) -> ProjectEvent {
        match self {
            ProjectAction::Approve => ProjectEvent::Approve,
            ProjectAction::Regenerate => ProjectEvent::Regenerate,
            ProjectAction::Archive => ProjectEvent::Archive,
        }
    }
}

/// The status `event` moves a project in `from` to, if the lifecycle allows it.
pub fn project_next(from: ProjectStatus, event: ProjectEvent) -> Option<ProjectStatus> {
    use ProjectEvent as E;
    use ProjectStatus as S;
    match (from, event) {
        (S::Analyzing, E::AnalysisComplete) => Some(S::Review),
        (S::Review, E::Approve) => Some(S::Approved),
        (S::Review, E::Regenerate) => Some(S::Analyzing),
        (S::Approved, E::StartWork) => Some(S::InProgress),
        (S::InProgress, E::AllTicketsDone) => Some(S::Completed),
        // The spec's diagram archives from in_progress; review and approved are our addition.
        (S::InProgress | S::Review | S::Approved, E::Archive) => Some(S::Archived),
        _ => None,
    }
}

/// The client actions a project in `status` accepts now, in declaration order.
pub fn allowed_actions(status: ProjectStatus) -> Vec<ProjectAction> {
    <ProjectAction as strum::IntoEnumIterator>::iter()
        .filter(|a| project_next(status, a.event()).is_some())
        .collect()
}

/// A project that counts against `MAX_PROJECTS_ACTIVE`.
pub fn project_is_active(status: ProjectStatus) -> bool {
    !matches!(status, ProjectStatus::Completed | ProjectStatus::Archived)
}

/// Whether tickets of a project in `status` may be worked on (status changes, assignment).
pub fn project_accepts_work(status: ProjectStatus) -> bool {
    matches!(status, ProjectStatus::Approved | ProjectStatus::InProgress)
}

/// Whether the fields of the tickets of a project in `status` may be edited: during review (the
/// stakeholder refines the plan) and work; not while a generation may replace them, nor once
/// the project is over.
pub fn project_accepts_edits(status: ProjectStatus) -> bool {
    matches!(
        status,
        ProjectStatus::Review | ProjectStatus::Approved | ProjectStatus::InProgress
    )
}

/// Applies a client action to a project, or refuses it naming the allowed ones (409 E004).
pub fn apply_action(
    status: ProjectStatus,
    action: ProjectAction,
) -> Result<ProjectStatus, ApiError> {
    project_next(status, action.event()).ok_or_else(|| {
        let allowed = allowed_actions(status);
        let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
        let mut e = conflict(format!(
            "cannot {} a project that is {status}; allowed now: {}",
            action.as_str(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
        e.fields.insert("allowed".into(), names.join(","));
        e
    })
}

/// A refused transition: 409 E004.
pub fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(409, ErrorCode::E004, message)
}

/// Ticket statuses nothing follows.
pub fn ticket_is_final(status: TicketStatus) -> bool {
    matches!(status, TicketStatus::Completed | TicketStatus::Cancelled)
}

/// Whether a ticket in `status` has had work started on it (what moves its project to
/// `in_progress`).
pub fn work_started(status: TicketStatus) -> bool {
    !matches!(
        status,
        TicketStatus::Pending | TicketStatus::Ready | TicketStatus::Cancelled
    )
}

/// Whether a client may move a ticket from `from` to `to` (ignoring its blockers and its
/// project, see [`ticket_targets`]). `pending → ready` is not a client's move: it happens by
/// itself ([`becomes_ready`]).
pub fn ticket_may_move(from: TicketStatus, to: TicketStatus) -> bool {
    use TicketStatus as S;
    match (from, to) {
        (S::Ready, S::Assigned)
        | (S::Assigned, S::InProgress)
        | (S::InProgress, S::Review)
        | (S::InProgress, S::Blocked)
        | (S::Review, S::InProgress)
        | (S::Review, S::Completed)
        | (S::Blocked, S::InProgress) => true,
        // Our addition: any unfinished ticket may be cancelled.
        (from, S::Cancelled) => !ticket_is_final(from),
        _ => false,
    }
}

/// What a ticket's moves depend on besides its own status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketContext {
    pub project: ProjectStatus,
    /// Every `blocks` dependency of the ticket is completed.
    pub blockers_done: bool,
}

/// The statuses a client may move a ticket to now (the Ticket object's `allowedTransitions`),
/// in declaration order.
pub fn ticket_targets(from: TicketStatus, ctx: TicketContext) -> Vec<TicketStatus> {
    if !project_accepts_work(ctx.project) {
        return Vec::new();
    }
    TicketStatus::all()
        .into_iter()
        .filter(|&to| ticket_may_move(from, to))
        .filter(|&to| to != TicketStatus::InProgress || ctx.blockers_done)
        .collect()
}

/// Checks a client's move of a ticket, with the reason of a refusal (409 E004): the project
/// does not accept work, the lifecycle has no such move (the allowed ones named), or the ticket
/// would start while a blocker is unfinished (`blockers` names them, e.g. `#3, #5`).
pub fn check_ticket_move(
    from: TicketStatus,
    to: TicketStatus,
    ctx: TicketContext,
    blockers: &str,
) -> Result<(), ApiError> {
    if !project_accepts_work(ctx.project) {
        return Err(conflict(format!(
            "the project is {}: tickets change status only once it is approved",
            ctx.project
        )));
    }
    if from == to {
        return Err(conflict(format!("the ticket is already {to}")));
    }
    if !ticket_may_move(from, to) {
        let allowed = ticket_targets(from, ctx);
        let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
        let mut e = conflict(format!(
            "a ticket cannot go from {from} to {to}; allowed now: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
        e.fields.insert("allowed".into(), names.join(","));
        return Err(e);
    }
    if to == TicketStatus::InProgress && !ctx.blockers_done {
        let mut e = conflict(format!(
            "work cannot start: blocked by {blockers}, not completed yet"
        ));
        e.fields.insert("blockedBy".into(), blockers.to_string());
        return Err(e);
    }
    Ok(())
}

/// Whether a ticket in `status` whose `blocks` dependencies have `blocker_statuses` is made
/// ready by itself: a pending ticket whose blockers are all completed (vacuously so without
/// any).
pub fn becomes_ready(
    status: TicketStatus,
    mut blocker_statuses: impl Iterator<Item = TicketStatus>,
) -> bool {
    status == TicketStatus::Pending && blocker_statuses.all(|b| b == TicketStatus::Completed)
}

/// Whether a project whose tickets have `statuses` is done: at least one ticket, each completed
/// or cancelled.
pub fn all_tickets_done(statuses: impl IntoIterator<Item = TicketStatus>) -> bool {
    let mut any = false;
    for s in statuses {
        if !ticket_is_final(s) {
            return false;
        }
        any = true;
    }
    any
}

/// The statuses for which `pred` holds, as a SQL list (`('a', 'b')`): the repository's
/// statements derive their status sets from this module instead of repeating them.
pub fn sql_list(pred: impl Fn(TicketStatus) -> bool) -> String {
    let items: Vec<String> = TicketStatus::all()
        .into_iter()
        .filter(|s| pred(*s))
        .map(|s| format!("'{s}'"))
        .collect();
    format!("({})", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;
    use ProjectStatus as P;
    use TicketStatus as T;

    #[test]
    fn every_project_transition_allowed_and_refused() {
        use ProjectEvent as E;
        let allowed = [
            (P::Analyzing, E::AnalysisComplete, P::Review),
            (P::Review, E::Approve, P::Approved),
            (P::Review, E::Regenerate, P::Analyzing),
            (P::Approved, E::StartWork, P::InProgress),
            (P::InProgress, E::AllTicketsDone, P::Completed),
            (P::InProgress, E::Archive, P::Archived),
            // Our addition.
            (P::Review, E::Archive, P::Archived),
            (P::Approved, E::Archive, P::Archived),
        ];
        let mut seen = 0;
        for from in ProjectStatus::all() {
            for event in ProjectEvent::iter() {
                let want = allowed
                    .iter()
                    .find(|(f, e, _)| *f == from && *e == event)
                    .map(|(_, _, to)| *to);
                assert_eq!(project_next(from, event), want, "{from} {event:?}");
                seen += 1;
            }
        }
        assert_eq!(seen, 6 * 6);
    }

    #[test]
    fn project_actions_and_refusals_name_the_allowed() {
        use ProjectAction as A;
        assert_eq!(allowed_actions(P::Analyzing), vec![]);
        assert_eq!(
            allowed_actions(P::Review),
            vec![A::Approve, A::Regenerate, A::Archive]
        );
        assert_eq!(allowed_actions(P::Approved), vec![A::Archive]);
        assert_eq!(allowed_actions(P::InProgress), vec![A::Archive]);
        assert_eq!(allowed_actions(P::Completed), vec![]);
        assert_eq!(allowed_actions(P::Archived), vec![]);
        assert_eq!(apply_action(P::Review, A::Approve), Ok(P::Approved));
        let e = apply_action(P::Approved, A::Approve).unwrap_err();
        assert_eq!((e.status, e.code), (409, ErrorCode::E004));
        assert_eq!(
            e.message,
            "cannot approve a project that is approved; allowed now: archive"
        );
        assert_eq!(e.fields["allowed"], "archive");
        let e = apply_action(P::Completed, A::Archive).unwrap_err();
        assert!(e.message.ends_with("allowed now: none"), "{}", e.message);
        assert!(project_is_active(P::Review) && !project_is_active(P::Archived));
        assert!(!project_is_active(P::Completed) && project_is_active(P::Analyzing));
    }

    #[test]
    fn every_ticket_move_allowed_and_refused() {
        let allowed = [
            (T::Ready, T::Assigned),
            (T::Assigned, T::InProgress),
            (T::InProgress, T::Review),
            (T::InProgress, T::Blocked),
            (T::Review, T::InProgress),
            (T::Review, T::Completed),
            (T::Blocked, T::InProgress),
            // Our addition: cancelled from every non-final status.
            (T::Pending, T::Cancelled),
            (T::Ready, T::Cancelled),
            (T::Assigned, T::Cancelled),
            (T::InProgress, T::Cancelled),
            (T::Review, T::Cancelled),
            (T::Blocked, T::Cancelled),
        ];
        for from in TicketStatus::all() {
            for to in TicketStatus::all() {
                let want = allowed.contains(&(from, to));
                assert_eq!(ticket_may_move(from, to), want, "{from} → {to}");
                let ctx = TicketContext {
                    project: P::InProgress,
                    blockers_done: true,
                };
                assert_eq!(
                    check_ticket_move(from, to, ctx, "").is_ok(),
                    want,
                    "{from} → {to}"
                );
            }
        }
        // Nobody moves a ticket to ready: that happens by itself.
        assert!(TicketStatus::all()
            .into_iter()
            .all(|f| !ticket_may_move(f, T::Ready)));
    }

    #[test]
    fn refusals_name_the_allowed_and_the_blockers() {
        let ctx = TicketContext {
            project: P::InProgress,
            blockers_done: true,
        };
        let e = check_ticket_move(T::Ready, T::Completed, ctx, "").unwrap_err();
        assert_eq!((e.status, e.code), (409, ErrorCode::E004));
        assert_eq!(
            e.message,
            "a ticket cannot go from ready to completed; allowed now: assigned, cancelled"
        );
        assert_eq!(e.fields["allowed"], "assigned,cancelled");
        let e = check_ticket_move(T::Completed, T::InProgress, ctx, "").unwrap_err();
        assert!(e.message.ends_with("allowed now: none"));
        let blocked = TicketContext {
            blockers_done: false,
            ..ctx
        };
        let e = check_ticket_move(T::Assigned, T::InProgress, blocked, "#1, #4").unwrap_err();
        assert_eq!(e.status, 409);
        assert_eq!(e.fields["blockedBy"], "#1, #4");
        assert!(e.message.contains("#1, #4"));
        assert_eq!(
            ticket_targets(T::Assigned, blocked),
            vec![T::Cancelled],
            "in_progress is not offered while blocked"
        );
        assert_eq!(
            ticket_targets(T::InProgress, ctx),
            vec![T::Review, T::Blocked, T::Cancelled]
        );
        let e = check_ticket_move(T::Ready, T::Ready, ctx, "").unwrap_err();
        assert_eq!(e.message, "the ticket is already ready");
    }

    #[test]
    fn work_needs_an_approved_project() {
        for p in ProjectStatus::all() {
            let ctx = TicketContext {
                project: p,
                blockers_done: true,
            };
            let open = matches!(p, P::Approved | P::InProgress);
            assert_eq!(project_accepts_work(p), open, "{p}");
            assert_eq!(!ticket_targets(T::Ready, ctx).is_empty(), open, "{p}");
            let r = check_ticket_move(T::Ready, T::Assigned, ctx, "");
            assert_eq!(r.is_ok(), open, "{p}");
            if !open {
                assert!(r.unwrap_err().message.contains("once it is approved"));
            }
            assert_eq!(
                project_accepts_edits(p),
                matches!(p, P::Review | P::Approved | P::InProgress)
            );
        }
    }

    #[test]
    fn readiness_and_completion() {
        assert!(becomes_ready(T::Pending, std::iter::empty()));
        assert!(becomes_ready(
            T::Pending,
            [T::Completed, T::Completed].into_iter()
        ));
        assert!(!becomes_ready(
            T::Pending,
            [T::Completed, T::Review].into_iter()
        ));
        // A cancelled blocker is not a completed one.
        assert!(!becomes_ready(T::Pending, [T::Cancelled].into_iter()));
        for s in TicketStatus::all() {
            if s != T::Pending {
                assert!(!becomes_ready(s, std::iter::empty()), "{s}");
            }
        }
        assert!(all_tickets_done([T::Completed, T::Cancelled]));
        assert!(!all_tickets_done([T::Completed, T::Review]));
        assert!(
            !all_tickets_done([]),
            "a project without tickets is not done"
        );
        assert!(work_started(T::Assigned) && work_started(T::Completed));
        assert!(!work_started(T::Ready) && !work_started(T::Cancelled));
    }

    #[test]
    fn sql_lists_follow_the_predicates() {
        assert_eq!(sql_list(ticket_is_final), "('completed', 'cancelled')");
        assert_eq!(
            sql_list(work_started),
            "('assigned', 'in_progress', 'review', 'blocked', 'completed')"
        );
    }
}
