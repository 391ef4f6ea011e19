//! Byte Platform: one Worker crate. `domain` is plain Rust that unit-tests on the host; the rest is
//! Workers glue and only exists when compiling to wasm32.

pub mod domain;

#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
mod objects;
#[cfg(target_arch = "wasm32")]
mod routes;
#[cfg(target_arch = "wasm32")]
mod services;

#[cfg(target_arch = "wasm32")]
pub use objects::codegen_do::CodeGeneratorAgent;
#[cfg(target_arch = "wasm32")]
pub use objects::deletion_do::AppDeletion;
#[cfg(target_arch = "wasm32")]
pub use objects::deploy_do::AppDeployer;
#[cfg(target_arch = "wasm32")]
pub use objects::orchestrator_hub_do::OrchestratorWebSocket;
#[cfg(target_arch = "wasm32")]
pub use objects::planner_do::ProjectPlanner;
#[cfg(target_arch = "wasm32")]
pub use objects::rate_limit_do::DORateLimitStore;
#[cfg(target_arch = "wasm32")]
pub use objects::sandbox_do::UserAppSandboxService;

#[cfg(target_arch = "wasm32")]
#[worker::event(fetch)]
async fn fetch(
    req: worker::Request,
    env: worker::Env,
    ctx: worker::Context,
) -> worker::Result<worker::Response> {
    routes::handle(req, env, ctx).await
}
