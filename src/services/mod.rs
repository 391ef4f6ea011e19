//! Adapters to the platform: D1 repositories, KV, R2, the LLM, OAuth providers, the Cloudflare
//! API (publishing deployed apps), and the clients of the Durable Objects the routes and the code
//! generator call (the rate-limit objects, the sandbox objects), each speaking the typed contract
//! its object declares in the domain. Nothing here imports `objects`: the objects use these services, not the reverse.

pub mod ai_store;
pub mod bounded_fetch;
pub mod cloudflare_api;
pub mod db;
pub mod deploy;
pub mod deployments;
pub mod dispatch;
pub mod github;
pub mod hosting;
pub mod identity;
pub mod llm;
pub mod mail;
pub mod oauth;
pub mod orchestrator_access;
pub mod orchestrator_db;
pub mod orchestrator_hub;
pub mod orchestrator_planner;
pub mod r2;
pub mod ratelimit;
pub mod sandbox;
pub mod sessions;
pub mod ticket_work;

pub use crate::http::now_ms;

/// The stub of the Durable Object named `name` in namespace `binding` (one object per name).
pub fn stub(env: &worker::Env, binding: &str, name: &str) -> worker::Result<worker::Stub> {
    env.durable_object(binding)?.id_from_name(name)?.get_stub()
}
