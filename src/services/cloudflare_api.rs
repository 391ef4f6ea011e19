//! The Cloudflare API port of `domain::deploy::cloudflare` over the Workers runtime: one request
//! through `Fetch` (headers and a byte body as given, the whole answer read back), and the
//! backoff sleeps through `Delay`. The publishing logic (sequence, retries, errors) is the
//! domain's; this file only moves bytes.
//!
//! Invariants: a request that has no answer within [`REQUEST_TIMEOUT_MS`] is aborted and reported
//! as a transport failure (which the domain retries); transport failures are described without
//! the request's headers, so the API token never reaches a log or an error.

use crate::domain::deploy::cloudflare::{ApiRequest, ApiResponse, CloudflareApi, HttpMethod};
use std::time::Duration;
use worker::{Delay, Method};

/// The longest one API request may take, the body upload included (asset buckets can be tens
/// of megabytes).
pub const REQUEST_TIMEOUT_MS: u64 = 120_000;

/// The Cloudflare API as reached from the Worker.
#[derive(Debug, Default, Clone, Copy)]
pub struct FetchCloudflareApi;

fn method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::Get,
        HttpMethod::Post => Method::Post,
        HttpMethod::Put => Method::Put,
        HttpMethod::Delete => Method::Delete,
    }
}

impl CloudflareApi for FetchCloudflareApi {
    async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, String> {
        let body =
            (!req.body.is_empty()).then(|| js_sys::Uint8Array::from(req.body.as_slice()).into());
        let request = super::bounded_fetch::request(
            method(req.method),
            &req.url,
            req.headers.iter().map(|(k, v)| (k, v)),
            body,
            "Cloudflare API",
        )?;
        let a = super::bounded_fetch::send(request, REQUEST_TIMEOUT_MS).await?;
        Ok(ApiResponse {
            status: a.status,
            headers: a.headers,
            body: a.body,
        })
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}
