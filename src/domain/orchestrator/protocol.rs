//! The orchestrator WebSocket's messages (spec: WebSocket Protocol), both directions, in one
//! place: [`ClientMessage`] is what a client may send, [`HubMessage`] what the hub sends.
//!
//! Invariants: every message is a JSON object tagged by `type` with camelCase fields; the
//! spec's messages keep the spec's names and fields exactly; the additions (`subscribed`,
//! `unsubscribed`, the project-level events) follow the same shape. Project-scoped messages
//! carry `projectId`, and the hub delivers them only to connections subscribed to that project.

use super::model::{ProjectStatus, TicketStatus};
use crate::domain::ids::{ProjectId, TicketId, UserId};
use serde::{Deserialize, Serialize};

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ClientMessage {
    /// Must be the first message, within the authentication deadline. `token` is a session
    /// token (as `Authorization: Bearer` carries); empty or absent, the session cookie the
    /// upgrade request carried is used (the web app's case: its cookie is HttpOnly).
    Authenticate {
        #[serde(default)]
        token: String,
        #[serde(default)]
        client_type: ClientType,
        /// Subscribed at once when the user may see it.
        #[serde(default)]
        project_id: Option<String>,
    },
    Subscribe {
        project_id: String,
    },
    Unsubscribe {
        project_id: String,
    },
    /// The answer to a `heartbeat`; any time is accepted.
    Pong {
        #[serde(default)]
        timestamp: Option<serde_json::Value>,
    },
    /// A client-initiated liveness check, answered with `pong`.
    Ping {
        #[serde(default)]
        timestamp: Option<serde_json::Value>,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    #[default]
    Web,
    Vscode,
}

/// One changed field of a ticket or project: `{field, oldValue, newValue}` (field names are the
/// camelCase names of the REST API's objects).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    pub field: String,
    pub old_value: serde_json::Value,
    pub new_value: serde_json::Value,
}

/// What the hub sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum HubMessage {
    AuthSuccess {
        user_id: UserId,
        connection_id: String,
        subscriptions: Vec<ProjectId>,
    },
    Subscribed {
        project_id: ProjectId,
    },
    Unsubscribed {
        project_id: ProjectId,
    },
    /// Any change of a ticket's fields (its status included; a status change also sends
    /// `ticket_status_changed`).
    TicketUpdated {
        project_id: ProjectId,
        ticket_id: TicketId,
        changes: Vec<FieldChange>,
    },
    TicketStatusChanged {
        project_id: ProjectId,
        ticket_id: TicketId,
        old_status: TicketStatus,
        new_status: TicketStatus,
    },
    /// Tickets were (re)generated: subscribers reload the project.
    TicketsGenerated {
        project_id: ProjectId,
        total_tickets: u32,
    },
    /// A step of the background analysis / ticket generation.
    AnalysisProgress {
        project_id: ProjectId,
        step: String,
        message: String,
    },
    /// Ticket generation failed; the project stays `analyzing` and may be generated again.
    GenerationFailed {
        project_id: ProjectId,
        code: String,
        message: String,
    },
    ProjectStatusChanged {
        project_id: ProjectId,
        old_status: ProjectStatus,
        new_status: ProjectStatus,
    },
    /// Any other change of a project's fields (title, counts, GitHub links, …).
    ProjectUpdated {
        project_id: ProjectId,
        changes: Vec<FieldChange>,
    },
    Heartbeat {
        timestamp: String,
    },
    Pong {
        timestamp: String,
    },
    Error {
        /// One of the spec's codes (E001–E007).
        error: String,
        message: String,
        recoverable: bool,
    },
}

impl HubMessage {
    /// The project a message is about: only that project's subscribers receive it. `None` for
    /// connection-level messages.
    pub fn project_id(&self) -> Option<&ProjectId> {
        match self {
            HubMessage::TicketUpdated { project_id, .. }
            | HubMessage::TicketStatusChanged { project_id, .. }
            | HubMessage::TicketsGenerated { project_id, .. }
            | HubMessage::AnalysisProgress { project_id, .. }
            | HubMessage::GenerationFailed { project_id, .. }
            | HubMessage::ProjectStatusChanged { project_id, .. }
            | HubMessage::ProjectUpdated { project_id, .. } => Some(project_id),
            HubMessage::Subscribed { .. }
            | HubMessage::Unsubscribed { .. }
            | HubMessage::AuthSuccess { .. }
            | HubMessage::Heartbeat { .. }
            | HubMessage::Pong { .. }
            | HubMessage::Error { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_messages_parse_as_the_spec_writes_them() {
        let m: ClientMessage = serde_json::from_value(json!({
            "type": "authenticate", "token": "t", "clientType": "web", "projectId": "prj_1"
        }))
        .unwrap();
        assert_eq!(
            m,
            ClientMessage::Authenticate {
                token: "t".into(),
                client_type: ClientType::Web,
                project_id: Some("prj_1".into())
            }
        );
        let m: ClientMessage =
            serde_json::from_value(json!({"type": "pong", "timestamp": 1733140000000u64})).unwrap();
        assert!(matches!(m, ClientMessage::Pong { .. }));
        assert!(serde_json::from_value::<ClientMessage>(json!({"type": "nope"})).is_err());
    }

    #[test]
    fn hub_messages_serialise_as_the_spec_writes_them() {
        let m = HubMessage::TicketStatusChanged {
            project_id: "prj_1".into(),
            ticket_id: "tkt_2".into(),
            old_status: TicketStatus::Ready,
            new_status: TicketStatus::InProgress,
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"type": "ticket_status_changed", "projectId": "prj_1", "ticketId": "tkt_2",
                   "oldStatus": "ready", "newStatus": "in_progress"})
        );
        assert_eq!(m.project_id().map(|p| p.as_str()), Some("prj_1"));
        let m = HubMessage::AuthSuccess {
            user_id: "usr_1".into(),
            connection_id: "c".into(),
            subscriptions: vec![],
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"type": "auth_success", "userId": "usr_1", "connectionId": "c", "subscriptions": []})
        );
        assert_eq!(m.project_id(), None);
    }
}
