//! Client of the `DORateLimitStore` objects: one object per `<class>:<key>`, each sent a typed
//! [`Hit`] and answering a [`Decision`] (the contract is declared in
//! [`crate::domain::ratelimit`]).
//!
//! Invariant: a limiter that cannot be reached or answers anything but a decision refuses the
//! request (503) rather than letting traffic through unlimited.

use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ratelimit::{Decision, Hit, Limit, BINDING};
use worker::{Env, Headers, Method, Request, RequestInit};

/// The limit classes of the spec, defined with the route table that assigns them.
pub use crate::domain::routes::RateClass as Class;

fn unavailable(why: impl std::fmt::Display) -> ApiError {
    worker::console_error!("rate limiter unavailable: {why}");
    ApiError::unavailable("rate limiter unavailable, try again")
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
    let stub = super::stub(env, BINDING, &hit.key)?;
    let headers = Headers::new();
    headers.set("Content-Type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(hit.to_json().into()));
    let req = Request::new_with_init("https://rate-limiter/hit", &init)?;
    let mut resp = stub.fetch_with_request(req).await.map_err(unavailable)?;
    let status = resp.status_code();
    let body = resp.bytes().await.map_err(unavailable)?;
    if status != 200 {
        return Err(unavailable(format!(
            "the object answered {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    Decision::parse(&body).map_err(unavailable)
}
