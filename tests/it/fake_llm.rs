//! A fake OpenAI-compatible chat-completions server on loopback (`POST /v1/chat/completions`),
//! speaking the real wire format: a JSON completion with `usage`, or (with `"stream": true`) SSE
//! `data: {chunk}` lines carrying `choices[0].delta.content`, a final chunk with `usage` when
//! `stream_options.include_usage` is set, then `data: [DONE]`.
//!
//! Behaviour is chosen by markers in the last user message, so concurrent tests never interfere:
//! - `fail-429-once`: the first request with this exact prompt gets 429 with `Retry-After: 1`;
//! - `fail-500-always`: 500 for every model except [`FALLBACK_MODEL`], which answers normally;
//! - `malformed`: a 200 whose body (or stream chunk) is not JSON;
//! - `truncated`: a stream cut after some content, without a finish reason or `[DONE]`;
//! - `stall`: never answers;
//! - `big-usage`: reports [`BIG_TOTAL`] tokens instead of [`NORMAL_TOTAL`].
//!
//! Every request is recorded (model, `Authorization`, prompt, stream) for tests to inspect.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

pub const PRIMARY_MODEL: &str = "fake-primary";
pub const FALLBACK_MODEL: &str = "fake-fallback";
pub const NORMAL_TOTAL: u64 = 12;
pub const BIG_TOTAL: u64 = 60;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub model: String,
    pub authorization: Option<String>,
    pub prompt: String,
    pub stream: bool,
}

#[derive(Default)]
struct Fake {
    requests: Vec<Recorded>,
    failed_once: HashSet<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(Shared::default)
}

/// The fake's base URL (`…/v1` is the OpenAI-compatible base).
pub fn url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        crate::harness::serve(
            Router::new()
                .route("/v1/chat/completions", post(completions))
                .with_state(shared().clone()),
        )
    })
    .clone()
}

/// Every request whose prompt contains `needle`, in arrival order.
pub fn requests_with(needle: &str) -> Vec<Recorded> {
    shared()
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.prompt.contains(needle))
        .cloned()
        .collect()
}

fn usage(prompt: &str) -> Value {
    if prompt.contains("big-usage") {
        json!({"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": BIG_TOTAL})
    } else {
        json!({"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": NORMAL_TOTAL})
    }
}

fn sse(lines: Vec<String>) -> Response {
    let chunks: Vec<Result<Bytes, Infallible>> = lines
        .into_iter()
        .map(|l| Ok(Bytes::from(format!("data: {l}\n\n"))))
        .collect();
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap()
}

fn chunk(model: &str, delta: Value, finish: Value) -> String {
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
    .to_string()
}

async fn completions(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let prompt = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let first_429 = {
        let mut st = s.lock().unwrap();
        st.requests.push(Recorded {
            model: model.clone(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            prompt: prompt.clone(),
            stream,
        });
        prompt.contains("fail-429-once") && st.failed_once.insert(prompt.clone())
    };
    if first_429 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            Json(json!({"error": {"message": "slow down", "type": "rate_limit_error"}})),
        )
            .into_response();
    }
    if prompt.contains("fail-500-always") && model != FALLBACK_MODEL {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "the primary is down", "type": "server_error"}})),
        )
            .into_response();
    }
    if prompt.contains("stall") {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    let text = format!("echo from {model}: {prompt}");
    if prompt.contains("malformed") {
        return if stream {
            sse(vec!["{\"choices\": [{\"delta\": {\"content\": ".into()])
        } else {
            (
                [(header::CONTENT_TYPE, "application/json")],
                "{\"choices\": [oops",
            )
                .into_response()
        };
    }
    if !stream {
        return Json(json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage(&prompt),
        }))
        .into_response();
    }
    let mut lines = vec![chunk(
        &model,
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    for part in words.chunks(2) {
        lines.push(chunk(
            &model,
            json!({"content": part.concat()}),
            Value::Null,
        ));
    }
    if prompt.contains("truncated") {
        lines.truncate(3);
        return sse(lines);
    }
    lines.push(chunk(&model, json!({}), json!("stop")));
    if include_usage {
        lines.push(
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
                   "choices": [], "usage": usage(&prompt)})
            .to_string(),
        );
    }
    lines.push("[DONE]".into());
    sse(lines)
}
