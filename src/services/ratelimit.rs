//! Client of the `DORateLimitStore` objects: one object per `<class>:<key>`, each sent a typed
//! [`Hit`] and answering a [`Decision`] (the contract is declared in
//! [`crate::domain::ratelimit`]).
//!
//! The same objects keep each account's sign-in backoff ([`sign_in`]).
//!
//! Invariant: a limiter that cannot be reached or answers anything but a decision refuses the
//! request (503) rather than letting traffic through unlimited.

use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ratelimit::{
    BackoffDecision, BackoffPolicy, Decision, Hit, Limit, SignIn, SignInEvent, BINDING,
};
use worker::{Env, Headers, Method, Request, RequestInit};

/// The limit classes of the spec, defined with the route table that assigns them.
pub use crate::domain::routes::RateClass as Class;

fn unavailable(why: impl std::fmt::Display) -> ApiError {
    worker::console_error!("rate limiter unavailable: {why}");
    ApiError::unavailable("rate limiter unavailable, try again")
}

/// POSTs `json` to the object named `name` at `path`; the 200 answer's body.
async fn post(env: &Env, name: &str, path: &str, json: String) -> ApiResult<Vec<u8>> {
    let stub = super::stub(env, BINDING, name)?;
    let headers = Headers::new();
    headers.set("Content-Type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(json.into()));
    let req = Request::new_with_init(&format!("https://rate-limiter{path}"), &init)?;
    let mut resp = stub.fetch_with_request(req).await.map_err(unavailable)?;
    let status = resp.status_code();
    let body = resp.bytes().await.map_err(unavailable)?;
    if status != 200 {
        return Err(unavailable(format!(
            "the object answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Ok(body)
}

/// Records a hit of `cost` against `key` in `class`.
pub async fn hit(
    env: &Env,
    class: Class,
    key: &str,
    limit: Limit,
    cost: u64,
) -> ApiResult<Decision> {
    let hit = Hit::new(class.name(), key, limit, cost);
    let body = post(env, &hit.key, "/hit", hit.to_json()).await?;
    Decision::parse(&body).map_err(unavailable)
}

/// Reports a sign-in event for the account `email` (normalised by the caller) under the
/// deployment's backoff policy; answers whether the account may try now.
pub async fn sign_in(
    env: &Env,
    policy: BackoffPolicy,
    email: &str,
    event: SignInEvent,
) -> ApiResult<BackoffDecision> {
    let s = SignIn::new(email, event, policy);
    let body = post(env, &s.key, "/backoff", s.to_json()).await?;
    BackoffDecision::parse(&body).map_err(unavailable)
}

/// Refuses a sign-in to a locked account: 429 E003 naming the wait (the caller sets
/// `Retry-After` from `fields.retryAfter`).
pub async fn admit_sign_in(env: &Env, policy: BackoffPolicy, email: &str) -> ApiResult<()> {
    let d = sign_in(env, policy, email, SignInEvent::Check).await?;
    if d.allowed {
        return Ok(());
    }
    let secs = d.retry_after_secs(super::now_ms()).max(1);
    let mut e = ApiError::rate_limited(format!(
        "too many failed sign-ins for this account; try again in {secs} s"
    ));
    e.fields.insert("retryAfter".into(), secs.to_string());
    Err(e)
}

/// Records a sign-in's outcome for the account (a failure may lock it; a success clears it).
/// Best effort: the outcome stands even if the record cannot be written.
pub async fn record_sign_in(env: &Env, policy: BackoffPolicy, email: &str, succeeded: bool) {
    let event = if succeeded {
        SignInEvent::Succeeded
    } else {
        SignInEvent::Failed
    };
    if let Err(e) = sign_in(env, policy, email, event).await {
        worker::console_error!("recording a sign-in outcome failed: {}", e.message);
    }
}
