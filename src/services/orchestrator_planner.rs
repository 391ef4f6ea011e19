//! Starting ticket generation for a project: the background analysis and ticket generation run
//! in the project's planner object (a Durable Object driven by its alarm, resumable), which
//! publishes progress to the hub and writes the tickets when done.
//!
//! Being built for issue 13: until the planner lands, starting is accepted and nothing runs.

use crate::domain::error::ApiResult;
use crate::domain::ids::ProjectId;
use worker::Env;

/// Starts (or restarts) the analysis and ticket generation of `project`, which the caller has
/// already put in `analyzing`. `guidance` is the stakeholder's note on a regeneration.
pub async fn start(_env: &Env, _project: &ProjectId, _guidance: Option<String>) -> ApiResult<()> {
    Ok(())
}
