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
//! Ownership is checked here; the object trusts the typed [`AgentCall`] it is given.

use crate::domain::codegen::agent_call::{self, AgentCall, Requester, CALL_HEADER};
use crate::domain::codegen::events::parse_start_chat;
use crate::domain::codegen::run::{
    blob_key, version_key, versions_prefix, VersionManifest, VersionSummary,
};
use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::ids::AppId;
use crate::http::auth::Caller;
use crate::http::{header, internal, read_body, App};
use crate::objects::codegen_do::BINDING;
use crate::services::r2::get_bytes;
use worker::{Headers, Method, Request, RequestInit, Response, Stub};

fn stub(app: &App, app_id: &AppId) -> ApiResult<Stub> {
    Ok(crate::objects::stub(&app.env, BINDING, app_id.as_str())?)
}

/// `scheme://host` the API was reached on (previews are served beside it).
fn origin(req: &Request) -> ApiResult<String> {
    let url = req.url()?;
    Ok(url.origin().ascii_serialization())
}

/// Who calls (ownership was checked by the caller of this).
fn requester(req: &Request, caller: &Caller, app_id: &AppId) -> ApiResult<Requester> {
    Ok(Requester {
        app_id: app_id.clone(),
        user_id: caller.user_id.clone(),
        origin: origin(req)?,
        session_id: caller.sid.clone(),
        token_exp: caller.expires_at,
    })
}

/// `?since=` or `Last-Event-ID`.
fn since(req: &Request) -> ApiResult<Option<u64>> {
    let url = req.url()?;
    let q = url
        .query_pairs()
        .find(|(k, _)| k == "since")
        .map(|(_, v)| v.to_string());
    Ok(agent_call::since(
        q.as_deref(),
        header(req, "Last-Event-ID").as_deref(),
    ))
}

/// Sends a bodyless call to the app's object (`extra`: the client's headers it needs).
async fn send(req: &Request, app: &App, call: &AgentCall, extra: &[&str]) -> ApiResult<Response> {
    let headers = Headers::new();
    headers.set(CALL_HEADER, &call.to_json())?;
    for k in extra {
        if let Some(v) = header(req, k) {
            headers.set(k, &v)?;
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let fwd = Request::new_with_init("https://codegen/", &init)?;
    Ok(stub(app, call.app_id())?.fetch_with_request(fwd).await?)
}

pub async fn chat(mut req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let body = read_body(&mut req).await?;
    let call = AgentCall::Chat {
        by: requester(&req, caller, &rec.id)?,
        chat: parse_start_chat(&body)?.into(),
    };
    let headers = Headers::new();
    headers.set("Content-Type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(call.to_json().into()));
    let fwd = Request::new_with_init("https://codegen/", &init)?;
    Ok(stub(app, &rec.id)?.fetch_with_request(fwd).await?)
}

pub async fn state(req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let call = AgentCall::State {
        by: requester(&req, caller, &rec.id)?,
        since: since(&req)?.unwrap_or(0),
    };
    send(&req, app, &call, &[]).await
}

pub async fn events(req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let call = AgentCall::Events {
        by: requester(&req, caller, &rec.id)?,
        since: since(&req)?.unwrap_or(0),
    };
    send(&req, app, &call, &[]).await
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
    let rec = super::sandbox::owned(app, caller, id).await?;
    let call = AgentCall::Socket {
        by: requester(&req, caller, &rec.id)?,
        since: since(&req)?,
    };
    send(
        &req,
        app,
        &call,
        &["Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version"],
    )
    .await
}

const MAX_VERSIONS_LISTED: u32 = 1000;

/// `GET /api/agent/:appId/versions`: every saved version, oldest first.
pub async fn versions(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let bucket = app.env.bucket("APP_FILES")?;
    let listed = bucket
        .list()
        .prefix(versions_prefix(rec.id.as_str()))
        .limit(MAX_VERSIONS_LISTED)
        .include(vec![worker::Include::CustomMetadata])
        .execute()
        .await?;
    let out: Vec<VersionSummary> = listed
        .objects()
        .iter()
        .filter_map(|o| VersionManifest::summary(&o.custom_metadata().unwrap_or_default()))
        .collect();
    crate::http::json(200, &serde_json::json!({ "versions": out }))
}

async fn manifest(app: &App, app_id: &AppId, n: &str) -> ApiResult<VersionManifest> {
    let missing = || ApiError::not_found("version");
    let n: u32 = n.parse().map_err(|_| missing())?;
    let bytes = get_bytes(
        &app.env.bucket("APP_FILES")?,
        &version_key(app_id.as_str(), n),
    )
    .await?
    .ok_or_else(missing)?;
    VersionManifest::parse(&bytes).map_err(internal)
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
    let hash = m.hash_of(path).ok_or_else(missing)?.to_string();
    let bytes = get_bytes(
        &app.env.bucket("APP_FILES")?,
        &blob_key(rec.id.as_str(), &hash),
    )
    .await?
    .ok_or_else(missing)?;
    let resp = Response::from_bytes(bytes)?;
    let h = resp.headers();
    h.set("Content-Type", "text/plain; charset=utf-8")?;
    h.set("Cache-Control", "private, max-age=31536000, immutable")?;
    Ok(resp)
}
