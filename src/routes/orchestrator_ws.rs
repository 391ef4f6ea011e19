//! `GET /api/orchestrator/ws`: the orchestrator hub's WebSocket. The upgrade needs no
//! credentials (the spec authenticates with the first message); the connection is placed on a
//! hub shard ([`shard_for`]: the `?projectId=` hint's, else a random one) and handed to it.
//!
//! The session the upgrade's credentials carry (confirmed by the pipeline) rides along, so a
//! browser, whose session cookie is HttpOnly, can `authenticate` without a token. A cookie
//! counts only from this site's pages (or an allowed origin): any site's page can make the
//! browser open a WebSocket with the cookie.

use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::ids::ProjectId;
use crate::domain::orchestrator::hub::Who;
use crate::domain::orchestrator::hub_call::{shard_for, shard_name, HubCall, BINDING, CALL_HEADER};
use crate::domain::random;
use crate::http::auth::Caller;
use crate::http::{header, App};
use worker::{Headers, Method, Request, RequestInit, Response};

/// Whether the request's `Origin` is this site (or an allowed origin).
fn own_origin(req: &Request, app: &App) -> ApiResult<bool> {
    let own = req.url()?.origin().ascii_serialization();
    Ok(header(req, "Origin").is_some_and(|o| {
        let o = o.trim_end_matches('/');
        o == own
            || app.cfg.public_url.as_deref() == Some(o)
            || app.cfg.allowed_origins.iter().any(|a| a == o)
    }))
}

pub async fn socket(req: Request, app: &App, caller: Option<&Caller>) -> ApiResult<Response> {
    let upgrade = header(&req, "Upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::new(
            426,
            ErrorCode::E004,
            "this endpoint speaks WebSocket: send `Upgrade: websocket`",
        ));
    }
    let session = match caller {
        Some(c) if !c.via_cookie || own_origin(&req, app)? => Some(Who {
            user: c.user_id.clone(),
            session: c.sid.clone(),
            expires_s: c.expires_at,
        }),
        _ => None,
    };
    let hint = req
        .url()?
        .query_pairs()
        .find(|(k, _)| k == "projectId")
        .and_then(|(_, v)| ProjectId::parse(&v));
    let shard = shard_for(
        hint.as_ref(),
        u32::from_le_bytes(random::bytes::<4>()),
        app.cfg.hub.shards,
    );
    let call = HubCall::Open {
        shard,
        cookie: session,
    };
    let headers = Headers::new();
    headers.set(CALL_HEADER, &call.to_json())?;
    for k in ["Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version"] {
        if let Some(v) = header(&req, k) {
            headers.set(k, &v)?;
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let fwd = Request::new_with_init("https://orchestrator-hub/", &init)?;
    let stub = crate::services::stub(&app.env, BINDING, &shard_name(shard))?;
    Ok(stub.fetch_with_request(fwd).await?)
}
