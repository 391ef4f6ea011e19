//! The hub events a REST change publishes, derived from the objects before and after it (the
//! wire contract's list): a ticket's changed fields as `ticket_updated` (plus
//! `ticket_status_changed` when its status changed), each ticket readied by itself likewise,
//! and a project's status change as `project_status_changed` with its other changed fields as
//! `project_updated`.
//!
//! Invariants: field names are the REST objects' camelCase names; bookkeeping fields
//! (`updatedAt`, the computed `allowedTransitions` / `allowedActions`) are never reported as
//! changes; nothing is published for a change that changed nothing.

use super::model::{ProjectStatus, TicketStatus};
use super::protocol::{FieldChange, HubMessage};
use crate::domain::ids::{ProjectId, TicketId};
use serde_json::Value;

/// Fields that change with everything, or are computed: never reported.
const QUIET: &[&str] = &["updatedAt", "allowedTransitions", "allowedActions"];

/// The fields of two JSON objects that differ, in the new object's field order (fields only in
/// the old one after them), skipping `skip` and the quiet ones.
pub fn diff(old: &Value, new: &Value, skip: &[&str]) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let keys = n.keys().chain(o.keys().filter(|k| !n.contains_key(*k)));
    let mut out = Vec::new();
    for k in keys {
        if skip.contains(&k.as_str()) || QUIET.contains(&k.as_str()) {
            continue;
        }
        let (a, b) = (
            o.get(k).cloned().unwrap_or(Value::Null),
            n.get(k).cloned().unwrap_or(Value::Null),
        );
        if a != b {
            out.push(FieldChange {
                field: k.clone(),
                old_value: a,
                new_value: b,
            });
        }
    }
    out
}

fn status_of(v: &Value) -> Option<TicketStatus> {
    serde_json::from_value(v.get("status")?.clone()).ok()
}

fn project_status_of(v: &Value) -> Option<ProjectStatus> {
    serde_json::from_value(v.get("status")?.clone()).ok()
}

/// The events of one ticket's change (its objects before and after, as JSON).
pub fn ticket_changed(
    project: &ProjectId,
    ticket: &TicketId,
    old: &Value,
    new: &Value,
) -> Vec<HubMessage> {
    let changes = diff(old, new, &[]);
    if changes.is_empty() {
        return Vec::new();
    }
    let mut out = vec![HubMessage::TicketUpdated {
        project_id: project.clone(),
        ticket_id: ticket.clone(),
        changes,
    }];
    if let (Some(a), Some(b)) = (status_of(old), status_of(new)) {
        if a != b {
            out.push(HubMessage::TicketStatusChanged {
                project_id: project.clone(),
                ticket_id: ticket.clone(),
                old_status: a,
                new_status: b,
            });
        }
    }
    out
}

/// The events of a ticket readied by itself (pending → ready).
pub fn ticket_readied(project: &ProjectId, ticket: &TicketId) -> Vec<HubMessage> {
    ticket_changed(
        project,
        ticket,
        &serde_json::json!({ "status": TicketStatus::Pending }),
        &serde_json::json!({ "status": TicketStatus::Ready }),
    )
}

/// The events of a project's change (its fields before and after, as JSON: the whole Project
/// object, or the part a write touched).
pub fn project_changed(project: &ProjectId, old: &Value, new: &Value) -> Vec<HubMessage> {
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (project_status_of(old), project_status_of(new)) {
        if a != b {
            out.push(HubMessage::ProjectStatusChanged {
                project_id: project.clone(),
                old_status: a,
                new_status: b,
            });
        }
    }
    let changes = diff(old, new, &["status"]);
    if !changes.is_empty() {
        out.push(HubMessage::ProjectUpdated {
            project_id: project.clone(),
            changes,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ticket_changes_name_fields_and_statuses() {
        let p = ProjectId::from("prj_1");
        let t = TicketId::from("tkt_1");
        let old = json!({"status": "assigned", "title": "A", "tags": [], "updatedAt": 1,
                         "allowedTransitions": ["in_progress"]});
        let new = json!({"status": "in_progress", "title": "A", "tags": ["x"], "updatedAt": 2,
                         "allowedTransitions": ["review"]});
        let ev = ticket_changed(&p, &t, &old, &new);
        assert_eq!(ev.len(), 2);
        assert_eq!(
            serde_json::to_value(&ev[0]).unwrap(),
            json!({"type": "ticket_updated", "projectId": "prj_1", "ticketId": "tkt_1", "changes": [
                {"field": "status", "oldValue": "assigned", "newValue": "in_progress"},
                {"field": "tags", "oldValue": [], "newValue": ["x"]}
            ]})
        );
        assert_eq!(
            serde_json::to_value(&ev[1]).unwrap(),
            json!({"type": "ticket_status_changed", "projectId": "prj_1", "ticketId": "tkt_1",
                   "oldStatus": "assigned", "newStatus": "in_progress"})
        );
        // Only a field: no status event; nothing changed: nothing at all.
        let ev = ticket_changed(&p, &t, &json!({"title": "A"}), &json!({"title": "B"}));
        assert_eq!(ev.len(), 1);
        assert!(ticket_changed(
            &p,
            &t,
            &old,
            &json!({"status": "assigned", "title": "A", "tags": [], "updatedAt": 9})
        )
        .is_empty());
        let ev = ticket_readied(&p, &t);
        assert!(matches!(
            ev[1],
            HubMessage::TicketStatusChanged {
                old_status: TicketStatus::Pending,
                new_status: TicketStatus::Ready,
                ..
            }
        ));
    }

    #[test]
    fn project_changes() {
        let p = ProjectId::from("prj_1");
        let ev = project_changed(
            &p,
            &json!({"status": "approved", "completedTickets": 0, "totalTickets": 2}),
            &json!({"status": "in_progress", "completedTickets": 1, "totalTickets": 2}),
        );
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            json!([
                {"type": "project_status_changed", "projectId": "prj_1", "oldStatus": "approved", "newStatus": "in_progress"},
                {"type": "project_updated", "projectId": "prj_1", "changes": [
                    {"field": "completedTickets", "oldValue": 0, "newValue": 1}
                ]}
            ])
        );
        assert!(project_changed(
            &p,
            &json!({"status": "review"}),
            &json!({"status": "review"})
        )
        .is_empty());
    }
}
