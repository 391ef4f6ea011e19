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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip() {
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
    }
}
