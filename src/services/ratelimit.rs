//! Client of the `DORateLimitStore` objects: one object per `<class>:<key>`.

use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ratelimit::{Decision, HitRequest, Limit};
use crate::http::internal;
use crate::objects::rate_limit_do::BINDING;
use worker::{Env, Method, Request, RequestInit};

/// The limit classes of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Auth,
    Api,
    /// Model calls per user (`RATE_LIMIT_AI`).
    Ai,
    /// Model tokens per user (`RATE_LIMIT_AI_TOKENS`); hits cost the tokens used.
    AiTokens,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Auth => "auth",
            Class::Api => "api",
            Class::Ai => "ai",
            Class::AiTokens => "ai_tokens",
        }
    }
}

/// Records a hit of `cost` against `key` in `class`. A failing limiter refuses the request
/// (503) rather than letting traffic through unlimited.
pub async fn hit(
    env: &Env,
    class: Class,
    key: &str,
    limit: Limit,
    cost: u64,
) -> ApiResult<Decision> {
    let stub =
        crate::objects::stub(env, BINDING, &format!("{}:{key}", class.name())).map_err(internal)?;
    let body = serde_json::to_string(&HitRequest { limit, cost }).map_err(internal)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let req = Request::new_with_init("https://rate-limiter/hit", &init).map_err(internal)?;
    let mut resp = stub.fetch_with_request(req).await.map_err(|e| {
        worker::console_error!("rate limiter unavailable: {e}");
        ApiError::unavailable("rate limiter unavailable, try again")
    })?;
    if resp.status_code() != 200 {
        return Err(ApiError::unavailable("rate limiter unavailable, try again"));
    }
    resp.json::<Decision>().await.map_err(internal)
}
