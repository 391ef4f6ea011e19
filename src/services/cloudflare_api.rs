//! The Cloudflare API port of `domain::deploy::cloudflare` over the Workers runtime: one request
//! through `Fetch` (headers and a byte body as given, the whole answer read back), and the
//! backoff sleeps through `Delay`. The publishing logic (sequence, retries, errors) is the
//! domain's; this file only moves bytes.
//!
//! Invariants: a request that has no answer within [`REQUEST_TIMEOUT_MS`] is aborted and reported
//! as a transport failure (which the domain retries); transport failures are described without
//! the request's headers, so the API token never reaches a log or an error.

use crate::domain::deploy::cloudflare::{ApiRequest, ApiResponse, CloudflareApi, HttpMethod};
use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

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
        let headers = Headers::new();
        for (k, v) in &req.headers {
            headers
                .set(k, v)
                .map_err(|_| format!("the header `{k}` cannot be sent"))?;
        }
        let mut init = RequestInit::new();
        init.with_method(method(req.method)).with_headers(headers);
        if !req.body.is_empty() {
            let body = js_sys::Uint8Array::from(req.body.as_slice());
            init.with_body(Some(body.into()));
        }
        let request = Request::new_with_init(&req.url, &init)
            .map_err(|_| "the Cloudflare API URL is not valid".to_string())?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let exchange = async {
            let mut resp = Fetch::Request(request)
                .send_with_signal(&signal)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = resp.status_code();
            let headers = resp.headers().entries().collect();
            let body = resp
                .bytes()
                .await
                .map_err(|e| format!("reading the answer failed: {e}"))?;
            Ok(ApiResponse {
                status,
                headers,
                body,
            })
        };
        let timer = Delay::from(Duration::from_millis(REQUEST_TIMEOUT_MS));
        let outcome = match select(Box::pin(exchange), Box::pin(timer)).await {
            Either::Left((answer, _)) => answer,
            Either::Right(_) => {
                controller.abort();
                Err(format!("no answer within {} s", REQUEST_TIMEOUT_MS / 1000))
            }
        };
        outcome
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}
