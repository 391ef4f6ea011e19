//! Publishing to the orchestrator WebSocket hub: every change made through the REST API (or by
//! ticket generation) is published here as a [`HubMessage`] naming its project, and reaches that
//! project's subscribers and only them.
//!
//! The hub object itself (sharding, hibernation, heartbeats) is being built for issue 13; until
//! it lands, publishing delivers nothing and callers must not depend on its result.

use crate::domain::orchestrator::protocol::HubMessage;
use worker::Env;

/// Delivers `message` to the subscribers of its project. Failures are logged, never returned:
/// a change is committed before it is published, and a lost event is repaired by the client's
/// reload on reconnect.
pub async fn publish(_env: &Env, message: &HubMessage) {
    debug_assert!(
        message.project_id().is_some(),
        "only project events are published"
    );
}
