//! `/api/agent/…`: the code-generation agent of an app, owner only.
//! - `POST chat/:appId`: a message (the first plans the app; later ones edit it, queued while
//!   work runs); answered with the run's events as Server-Sent Events;
//! - `GET :appId/events`: the same stream for a client that (re)connects: the state, the stored
//!   events after `Last-Event-ID` (or `?since=`), then live events while the run is active;
//! - `GET :appId/state?since=`: the state plus the stored events after `since`, as JSON;
//! - `GET :appId/ws`: a WebSocket with the same events and the client's commands;
//! - `GET :appId/versions[/:n[/files/<path>]]`: the versions saved in R2 (one per completed
//!   phase or edit), a version's manifest, a file as it was in that version.
//!
//! Ownership is checked here; the object trusts the ids it is given.

use crate::domain::codegen::events::parse_start_chat;
use crate::domain::codegen::run::{blob_key, version_key, versions_prefix};
use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::http::auth::Caller;
use crate::http::{header, internal, read_body, App};
use crate::objects::codegen_do::BINDING;
use crate::services::r2::get_bytes;
use worker::{Headers, Method, Request, RequestInit, Response, Stub};

fn stub(app: &App, app_id: &str) -> ApiResult<Stub> {
    crate::objects::stub(&app.env, BINDING, app_id).map_err(internal)
}

/// `scheme://host` the API was reached on (previews are served beside it).
fn origin(req: &Request) -> ApiResult<String> {
    let url = req.url().map_err(internal)?;
    Ok(url.origin().ascii_serialization())
}

/// The headers that tell the object who calls, for which app.
fn identity(req: &Request, caller: &Caller, app_id: &str) -> ApiResult<Headers> {
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(internal);
    set("X-App-Id", app_id)?;
    set("X-User-Id", &caller.user_id)?;
    set("X-Origin", &origin(req)?)?;
    set("X-Token-Exp", &caller.expires_at.to_string())?;
    set("X-Session-Id", &caller.sid)?;
    Ok(headers)
}

fn query(req: &Request) -> ApiResult<String> {
    let url = req.url().map_err(internal)?;
    Ok(url.query().map(|q| format!("?{q}")).unwrap_or_default())
}

pub async fn chat(mut req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let body = read_body(&mut req).await?;
    parse_start_chat(&body)?;
    let headers = identity(&req, caller, &rec.id)?;
    headers
        .set("Content-Type", "application/json")
        .map_err(internal)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    let fwd = Request::new_with_init("https://codegen/chat", &init).map_err(internal)?;
    stub(app, &rec.id)?
        .fetch_with_request(fwd)
        .await
        .map_err(internal)
}

async fn forward_get(
    req: &Request,
    app: &App,
    caller: &Caller,
    id: &str,
    path: &str,
    extra: &[&str],
) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let headers = identity(req, caller, &rec.id)?;
    for k in extra {
        if let Some(v) = header(req, k) {
            headers.set(k, &v).map_err(internal)?;
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let fwd = Request::new_with_init(&format!("https://codegen{path}{}", query(req)?), &init)
        .map_err(internal)?;
    stub(app, &rec.id)?
        .fetch_with_request(fwd)
        .await
        .map_err(internal)
}

pub async fn state(req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    forward_get(&req, app, caller, id, "/state", &[]).await
}

pub async fn events(req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    forward_get(&req, app, caller, id, "/events", &["Last-Event-ID"]).await
}

pub async fn socket(req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let upgrade = header(&req, "Upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::new(
            426,
            ErrorCode::E004,
            "this endpoint speaks WebSocket: send `Upgrade: websocket`",
        ));
    }
    // A browser sends the session cookie with any site's WebSocket: with cookie credentials
    // the page must be ours (or an allowed origin).
    if caller.via_cookie {
        let own = origin(&req)?;
        let ok = header(&req, "Origin").is_some_and(|o| {
            let o = o.trim_end_matches('/');
            o == own || app.cfg.allowed_origins.iter().any(|a| a == o)
        });
        if !ok {
            return Err(ApiError::forbidden(
                "WebSocket connections with cookie credentials must come from this site",
            ));
        }
    }
    forward_get(
        &req,
        app,
        caller,
        id,
        "/ws",
        &["Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version"],
    )
    .await
}

const MAX_VERSIONS_LISTED: u32 = 1000;

/// `GET /api/agent/:appId/versions`: every saved version, oldest first.
pub async fn versions(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let bucket = app.env.bucket("APP_FILES").map_err(internal)?;
    let listed = bucket
        .list()
        .prefix(versions_prefix(&rec.id))
        .limit(MAX_VERSIONS_LISTED)
        .include(vec![worker::Include::CustomMetadata])
        .execute()
        .await
        .map_err(internal)?;
    let mut out = Vec::new();
    for o in listed.objects() {
        let m = o.custom_metadata().unwrap_or_default();
        let num = |k: &str| m.get(k).and_then(|v| v.parse::<u64>().ok());
        let Some(version) = num("version") else {
            continue;
        };
        out.push(serde_json::json!({
            "version": version,
            "label": m.get("label"),
            "createdAt": num("createdAt"),
            "files": num("files"),
        }));
    }
    crate::http::json(200, &serde_json::json!({ "versions": out }))
}

async fn manifest(app: &App, app_id: &str, n: &str) -> ApiResult<serde_json::Value> {
    let missing = || ApiError::not_found("version");
    let n: u32 = n.parse().map_err(|_| missing())?;
    let bytes = get_bytes(app, "APP_FILES", &version_key(app_id, n))
        .await?
        .ok_or_else(missing)?;
    serde_json::from_slice(&bytes).map_err(internal)
}

/// `GET /api/agent/:appId/versions/:n`: the manifest (every file with its hash and size).
pub async fn version(app: &App, caller: &Caller, id: &str, n: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    crate::http::json(200, &manifest(app, &rec.id, n).await?)
}

/// `GET /api/agent/:appId/versions/:n/files/<path>`: the file's content in that version.
pub async fn version_file(
    app: &App,
    caller: &Caller,
    id: &str,
    n: &str,
    path: &str,
) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let m = manifest(app, &rec.id, n).await?;
    let missing = || ApiError::not_found("file in this version");
    let hash = m["files"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["path"] == path))
        .and_then(|f| f["hash"].as_str())
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(missing)?
        .to_string();
    let bytes = get_bytes(app, "APP_FILES", &blob_key(&rec.id, &hash))
        .await?
        .ok_or_else(missing)?;
    let resp = Response::from_bytes(bytes).map_err(internal)?;
    let h = resp.headers();
    h.set("Content-Type", "text/plain; charset=utf-8")
        .map_err(internal)?;
    h.set("Cache-Control", "private, max-age=31536000, immutable")
        .map_err(internal)?;
    Ok(resp)
}
