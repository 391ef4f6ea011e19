//! Durable Objects: each a thin shell over domain logic, one per file. Each object takes one
//! typed call declared in the domain (`AgentCall`, `SandboxCall`, `ratelimit::Hit`), built by
//! its caller and parsed once here; their clients are in the routes and in `services` (which
//! never imports this module: objects use services, not the reverse).

pub mod codegen_deploy;
pub mod codegen_do;
pub mod codegen_erase;
pub mod codegen_ports;
pub mod codegen_preview;
mod codegen_replay;
pub mod codegen_socket;
pub mod codegen_state;
pub mod codegen_store;
pub mod codegen_tickets;
pub mod deletion_do;
pub mod deploy_do;
pub mod orchestrator_directory;
pub mod orchestrator_hub_do;
pub mod planner_do;
pub mod rate_limit_do;
pub mod sandbox_agent;
pub mod sandbox_do;
pub mod sandbox_retire;
pub mod sandbox_storage;

/// The stub of the object named `name` in namespace `binding` (one object per name).
pub use crate::services::stub;

/// Schedules a Durable Object's alarm at an absolute time (epoch ms). workers-rs reads a bare
/// integer as an offset from now, so absolute times go through here.
pub async fn set_alarm_at(storage: &worker::Storage, epoch_ms: i64) -> worker::Result<()> {
    let offset = (epoch_ms - js_sys::Date::now() as i64).max(0);
    storage
        .set_alarm(std::time::Duration::from_millis(offset as u64))
        .await
}
