//! Adapters to the platform: D1 repositories, KV, the rate-limit object, OAuth providers.

pub mod ai_store;
pub mod db;
pub mod llm;
pub mod oauth;
pub mod r2;
pub mod ratelimit;
pub mod sessions;

/// Milliseconds since the epoch from the runtime's clock (frozen during a request on Workers).
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}
