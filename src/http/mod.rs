//! Workers-side HTTP plumbing: the per-request [`App`] over the configuration parsed once per
//! isolate ([`config`]), turning [`ApiError`]s into responses, bounded body reading, JSON
//! responses, response finishing (security and CORS headers), and request identity ([`auth`]).

pub mod auth;
pub mod crypto;

use crate::domain::config::Config;
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::input::{self, JsonObject, MAX_BODY_BYTES};
use crate::domain::token::TokenKeys;
use crate::domain::web;
use futures_util::StreamExt;
use serde::Serialize;
use std::cell::OnceCell;
use std::fmt::Display;
use std::rc::Rc;
use worker::{Env, Headers, Request, Response};

/// Everything a handler needs about the deployment, built once per request from the
/// configuration parsed once per isolate ([`config`]).
pub struct App {
    pub env: Env,
    pub cfg: Rc<Config>,
    pub keys: Rc<TokenKeys>,
}

/// The parsed configuration and token keys, or why they could not be parsed.
type Loaded = Result<(Rc<Config>, Rc<TokenKeys>), String>;

thread_local! {
    /// Vars and secrets do not change within an isolate, so they are parsed at its first
    /// request and never again; a failure is kept too (every request then fails the same way).
    static LOADED: OnceCell<Loaded> = const { OnceCell::new() };
}

fn load(env: &Env) -> Loaded {
    let lookup = |k: &str| {
        env.var(k)
            .map(|v| v.to_string())
            .ok()
            .or_else(|| env.secret(k).map(|v| v.to_string()).ok())
    };
    let cfg = Config::from_lookup(lookup);
    let keys = lookup("JWT_SECRET")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| "JWT_SECRET is not set".to_string())
        .and_then(|s| TokenKeys::new(&s));
    match (cfg, keys) {
        (Ok(cfg), Ok(keys)) => Ok((Rc::new(cfg), Rc::new(keys))),
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

fn loaded(env: &Env) -> Loaded {
    LOADED.with(|cell| cell.get_or_init(|| load(env)).clone())
}

/// The deployment's configuration (for Durable Objects, which have an `Env` but no [`App`]);
/// `Err` names every malformed setting.
pub fn config(env: &Env) -> Result<Rc<Config>, String> {
    loaded(env).map(|(cfg, _)| cfg)
}

impl App {
    /// Fails, naming every malformed setting, when the configuration does not parse.
    pub fn new(env: Env) -> Result<Self, String> {
        let (cfg, keys) = loaded(&env)?;
        Ok(Self { env, cfg, keys })
    }

    pub fn db(&self) -> ApiResult<worker::D1Database> {
        Ok(self.env.d1(DB_BINDING)?)
    }

    pub fn kv(&self) -> ApiResult<worker::kv::KvStore> {
        Ok(self.env.kv(KV_BINDING)?)
    }
}

/// Milliseconds since the epoch from the runtime's clock (frozen during a request on Workers).
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// The D1 database and the KV namespace (as bound in `wrangler.toml`).
pub const DB_BINDING: &str = "DB";
pub const KV_BINDING: &str = "KV";

/// Logs an unexpected failure and returns the generic 500 that reveals nothing.
pub fn internal(e: impl Display) -> ApiError {
    worker::console_error!("internal error: {e}");
    ApiError::internal()
}

/// A runtime failure (bindings, fetch, headers, bodies) is never the caller's fault: like
/// [`internal`], it is logged and becomes the generic 500, so handlers can use `?` on a
/// `worker::Result`.
impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        internal(e)
    }
}

pub fn error_response(e: &ApiError) -> Response {
    if e.status == 503 {
        // Every 503 of ours says why in the log (wrangler's own 503s say "restarted mid-request").
        worker::console_error!("503 {:?}: {}", e.code, e.message);
    }
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "application/json; charset=utf-8");
    Response::from_bytes(e.to_json().into_bytes())
        .map(|r| r.with_status(e.status).with_headers(headers))
        .unwrap_or_else(|_| Response::empty().expect("empty response").with_status(500))
}

pub fn json<T: Serialize>(status: u16, body: &T) -> ApiResult<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

pub fn no_content() -> ApiResult<Response> {
    Ok(Response::empty()?.with_status(204))
}

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The client's address as Cloudflare reports it (the edge overwrites any client-sent value).
pub fn client_ip(req: &Request) -> String {
    header(req, "CF-Connecting-IP")
        .or_else(|| header(req, "X-Real-IP"))
        .unwrap_or_else(|| "unknown".into())
}

/// How much of an oversized chunked body is drained before the connection is given up.
const DRAIN_LIMIT_BYTES: usize = 8 * MAX_BODY_BYTES;

/// Reads the body, refusing more than [`MAX_BODY_BYTES`] without buffering past the limit.
pub async fn read_body(req: &mut Request) -> ApiResult<Vec<u8>> {
    if let Some(len) = header(req, "Content-Length").and_then(|l| l.parse::<usize>().ok()) {
        if len > MAX_BODY_BYTES {
            return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
        }
    }
    let mut out = Vec::new();
    let Ok(mut stream) = req.stream() else {
        return Ok(out);
    };
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::validation("could not read the request body"))?;
        seen += chunk.len();
        if seen > MAX_BODY_BYTES {
            // Keep reading (and discarding) a moderately oversized body to its end, so the
            // client sees a clean 413 instead of a connection torn down mid-upload; give up on
            // anything far larger.
            if seen > DRAIN_LIMIT_BYTES {
                break;
            }
            continue;
        }
        out.extend_from_slice(&chunk);
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    Ok(out)
}

/// Reads and parses a JSON object body, insisting on a JSON content type.
pub async fn json_body(req: &mut Request) -> ApiResult<JsonObject> {
    let ct = header(req, "Content-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !ct.starts_with("application/json") {
        return Err(ApiError::field("Content-Type", "must be application/json"));
    }
    let body = read_body(req).await?;
    input::parse_object(&body)
}

/// Copies a response into one with fresh (mutable) headers and adds the security and CORS
/// headers every response carries.
pub fn finish(resp: Response, cfg: Option<&Config>, origin: Option<&str>) -> Response {
    let headers = Headers::new();
    for (k, v) in resp.headers().entries() {
        let _ = headers.append(&k, &v);
    }
    for (k, v) in web::SECURITY_HEADERS {
        let _ = headers.set(k, v);
    }
    if let Some(c) = cfg {
        // The web app frames previews (and only previews).
        let _ = headers.set("Content-Security-Policy", &web::csp(&c.preview_domain));
    }
    let allowed = cfg.map(|c| c.allowed_origins.as_slice()).unwrap_or(&[]);
    if let Some(o) = web::cors_origin(allowed, origin) {
        let _ = headers.set("Access-Control-Allow-Origin", o);
        let _ = headers.set("Access-Control-Allow-Credentials", "true");
        let _ = headers.set("Access-Control-Expose-Headers", web::CORS_EXPOSE_HEADERS);
    }
    let _ = headers.append("Vary", "Origin");
    resp.with_headers(headers)
}
