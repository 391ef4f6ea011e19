//! The one contract between the routes and the `CodeGeneratorAgent` object: every call is an
//! [`AgentCall`] carrying the caller as a typed [`Requester`], built by the route (which checked
//! that the caller owns the app, and parsed the client's body once) and read by the object.
//!
//! Transport: the JSON of the call travels in the [`CALL_HEADER`] header of the request to the
//! object (a WebSocket upgrade must be a bodyless GET, so one transport serves every call); a
//! chat's message goes in the body instead, as the call's JSON, since it may be long.

use super::events::{AgentEvent, StartChat};
use super::models::ModelOverride;
use super::run::RunState;
use crate::domain::ids::{AppId, SessionId, UserId};
use crate::domain::orchestrator::implement::TicketJob;
use crate::domain::sandbox_call::Owner;
use serde::{Deserialize, Serialize};

/// The Durable Object binding of the code generator objects (one per app id).
pub const BINDING: &str = "CODEGEN";

/// The request header that carries a bodyless call.
pub const CALL_HEADER: &str = "X-Byte-Call";

/// Who calls, for which app (the route checked ownership; the object trusts it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requester {
    pub app_id: AppId,
    pub user_id: UserId,
    /// `scheme://host[:port]` the API was reached on (previews are served beside it).
    pub origin: String,
    /// The session the caller signed in with (a WebSocket command after sign-out is refused).
    pub session_id: SessionId,
    /// When the caller's token expires (epoch seconds).
    pub token_exp: i64,
}

impl Requester {
    /// Records who the run works for and where (an alarm resumes it without a request).
    pub fn bind(&self, s: &mut RunState) {
        s.app_id = self.app_id.clone();
        s.user_id = self.user_id.clone();
        s.origin = Some(self.origin.clone());
    }
}

/// A chat message and its optional model override, as parsed from the client's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCall {
    pub message: String,
    #[serde(default)]
    pub config: Option<ModelOverride>,
}

impl From<StartChat> for ChatCall {
    fn from(s: StartChat) -> Self {
        Self {
            message: s.message,
            config: s.config,
        }
    }
}

/// Everything the routes ask of the object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum AgentCall {
    /// A chat message; answered with Server-Sent Events.
    Chat { by: Requester, chat: ChatCall },
    /// The state and the stored events after `since`, as JSON.
    State { by: Requester, since: u64 },
    /// Server-Sent Events: the state, the stored events after `since`, then live ones.
    Events { by: Requester, since: u64 },
    /// A WebSocket (the request is the client's upgrade).
    Socket { by: Requester, since: Option<u64> },
    /// The app is deleted (sent by its deletion plan, not by a client): stop the run, close
    /// every client, erase the object's storage and alarm, and refuse every later call. 409
    /// while a driver is still winding down (the plan retries).
    Erase { app_id: AppId },
    /// From the app's deployer (its route checked the owner): make sure the sandbox runs with
    /// the app's files (restoring them into a fresh one), and answer
    /// [`PreparedDeploy`]; 409 while the agent is still writing the app.
    PrepareDeploy { by: Owner },
    /// From the orchestrator's implement route (which checked the ticket and the project): queue
    /// the ticket's edit request with its job; 202, or 409 when the app has no generated files
    /// yet or its agent is busy. The job's outcome is reported when the run ends.
    Implement { by: Requester, job: TicketJob },
    /// From the app's deployer: store and send a deployment event to the app's clients.
    Publish { app_id: AppId, event: AgentEvent },
}

/// What [`AgentCall::PrepareDeploy`] answers: the sandbox is ready with the app's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreparedDeploy {
    /// The app's saved version (0 before the first).
    pub version: u32,
    /// The sandbox's template.
    pub template: String,
}

impl AgentCall {
    /// The client the call comes from (none for the deletion plan's [`AgentCall::Erase`]).
    pub fn requester(&self) -> Option<&Requester> {
        match self {
            AgentCall::Chat { by, .. }
            | AgentCall::State { by, .. }
            | AgentCall::Events { by, .. }
            | AgentCall::Implement { by, .. }
            | AgentCall::Socket { by, .. } => Some(by),
            AgentCall::Erase { .. }
            | AgentCall::PrepareDeploy { .. }
            | AgentCall::Publish { .. } => None,
        }
    }

    /// The app whose object the call is for.
    pub fn app_id(&self) -> &AppId {
        match self {
            AgentCall::Erase { app_id } | AgentCall::Publish { app_id, .. } => app_id,
            AgentCall::PrepareDeploy { by } => &by.app_id,
            AgentCall::Chat { by, .. }
            | AgentCall::State { by, .. }
            | AgentCall::Events { by, .. }
            | AgentCall::Implement { by, .. }
            | AgentCall::Socket { by, .. } => &by.app_id,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn parse(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| format!("malformed call: {e}"))
    }
}

/// `?since=` or `Last-Event-ID`: the id after which stored events are replayed.
pub fn since(query_since: Option<&str>, last_event_id: Option<&str>) -> Option<u64> {
    query_since
        .and_then(|v| v.trim().parse().ok())
        .or_else(|| last_event_id.and_then(|v| v.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by() -> Requester {
        Requester {
            app_id: "app_1".into(),
            user_id: "usr_1".into(),
            origin: "http://localhost:8787".into(),
            session_id: "ses_1".into(),
            token_exp: 99,
        }
    }

    #[test]
    fn calls_round_trip() {
        for call in [
            AgentCall::Chat {
                by: by(),
                chat: ChatCall {
                    message: "hi".into(),
                    config: None,
                },
            },
            AgentCall::State { by: by(), since: 3 },
            AgentCall::Events { by: by(), since: 0 },
            AgentCall::Socket {
                by: by(),
                since: Some(7),
            },
        ] {
            let back = AgentCall::parse(call.to_json().as_bytes()).unwrap();
            assert_eq!(back, call);
            assert_eq!(back.requester(), Some(&by()));
            assert_eq!(back.app_id(), "app_1");
        }
        let erase = AgentCall::Erase {
            app_id: "app_2".into(),
        };
        assert_eq!(AgentCall::parse(erase.to_json().as_bytes()).unwrap(), erase);
        assert_eq!(
            (erase.requester(), erase.app_id().as_str()),
            (None, "app_2")
        );
        assert!(AgentCall::parse(b"{\"call\":\"nope\"}").is_err());
    }

    #[test]
    fn since_prefers_the_query() {
        assert_eq!(since(Some("5"), Some("9")), Some(5));
        assert_eq!(since(None, Some(" 9 ")), Some(9));
        assert_eq!(since(Some("x"), None), None);
        assert_eq!(since(None, None), None);
    }
}
