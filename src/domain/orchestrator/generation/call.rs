//! The one contract between `services::orchestrator_planner` and the `ProjectPlanner` Durable
//! Object (one per project, named by the project id): a JSON [`PlannerCall`] in the request body.

use super::driver::Job;
use serde::{Deserialize, Serialize};

/// The Durable Object binding of the planner objects.
pub const BINDING: &str = "PLANNER";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum PlannerCall {
    /// Store `job` (replacing any earlier one of the project) and run it from the alarm: 202.
    Start { job: Job },
}

impl PlannerCall {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn parse(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| format!("malformed planner call: {e}"))
    }
}

/// The project's `generation` as the API shows it (`{state, step, error}`), derived from the
/// project's status and its `generation_error` / `generation_step` columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Generation {
    /// `idle`, `running` or `failed`.
    pub state: String,
    pub step: Option<String>,
    /// `{code, message}` of the last failed generation.
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
}

impl Generation {
    /// `failed` when an error is recorded, `running` (at `step`) while the project is
    /// `analyzing`, otherwise `idle`.
    pub fn derive(status: &str, step: Option<&str>, error_json: Option<&str>) -> Self {
        let error = error_json.and_then(|e| serde_json::from_str(e).ok());
        if error.is_some() {
            return Self {
                state: "failed".into(),
                step: None,
                error,
            };
        }
        if status == "analyzing" {
            return Self {
                state: "running".into(),
                step: step.map(str::to_string),
                error: None,
            };
        }
        Self {
            state: "idle".into(),
            step: None,
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip_and_generation_is_derived() {
        let call = PlannerCall::Start {
            job: Job::new(
                "prj_1".into(),
                "usr_1".into(),
                None,
                Some("more tests".into()),
                "r1".into(),
            ),
        };
        assert_eq!(PlannerCall::parse(call.to_json().as_bytes()).unwrap(), call);
        assert!(PlannerCall::parse(b"{\"call\":\"nope\"}").is_err());

        let g = Generation::derive("analyzing", Some("generate_tickets"), None);
        assert_eq!(
            (g.state.as_str(), g.step.as_deref()),
            ("running", Some("generate_tickets"))
        );
        let g = Generation::derive(
            "analyzing",
            None,
            Some(r#"{"code":"E005","message":"unusable"}"#),
        );
        assert_eq!(g.state, "failed");
        assert_eq!(g.error.unwrap()["code"], "E005");
        assert_eq!(Generation::derive("review", None, None).state, "idle");
    }
}
