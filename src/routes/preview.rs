//! Preview hostnames (`<app label>.<PREVIEW_DOMAIN>`): requests go through the app's sandbox
//! object to its dev server, HMR WebSockets included. Public apps are open; private ones need
//! the signed token from a preview URL, exchanged once for a host-only cookie.
//!
//! The preview cookie policy (one policy, enforced here, by the sandbox object and by
//! byte-sandbox's proxy; its rules live in `byte_protocol::preview`, the header-list form in
//! `domain::preview`, and `sandbox/README.md` states the same):
//! - an app keeps its own cookies: the request's `Cookie` header reaches the app minus the
//!   platform's cookies (`byte_session`, `byte_csrf`, `byte_oauth` and the preview token
//!   `byte_preview`);
//! - `Authorization` (and `Proxy-Authorization`) never reach the app;
//! - the app's `Set-Cookie` headers come back to the browser, except one naming a platform
//!   cookie, which is dropped; a `Domain` attribute is removed, so an app's cookies are
//!   host-only and it can set none for the platform's domain or for another app's preview.
//!
//! This route applies the policy both ways; the sandbox object forwards only the app's cookies,
//! and only on preview calls; byte-sandbox applies it again both ways.
//!
//! To the sandbox object, a preview request is a typed `SandboxCall::Preview` (path, query,
//! whether it is a WebSocket upgrade) riding on the browser's own request, which goes on as it
//! is: method, headers (after the policy), streamed body ([`services::sandbox::forward_preview`]).
//!
//! Invariants: every preview request first passes the per-address preview limit
//! (`RATE_LIMIT_PREVIEW`, 429 E003 with `Retry-After`): the app's row is read alongside, but
//! nothing is decided from it, and no other lookup is made, before the limit allows it; without access a
//! private preview is a 404 like a missing one; the platform's own cookies and `Authorization`
//! never reach the app, and the app never sets a platform cookie.

use crate::domain::apps::AppRecord;
use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::ids::AppId;
use crate::domain::preview;
use crate::domain::routes::RateClass;
use crate::domain::sandbox::{check_preview_token, preview_label, preview_token};
use crate::domain::sandbox_call::PreviewCall;
use crate::domain::web;
use crate::http::{client_ip, error_response, header, App};
use crate::services::{self, db, now_ms, ratelimit};
use worker::{Headers, Request, Response};

const PARAM: &str = "__byte_preview";
const COOKIE: &str = web::PREVIEW_COOKIE;
/// Lifetime of the preview cookie.
const COOKIE_TTL_S: i64 = 12 * 3600;

pub async fn serve(req: Request, app: &App, app_id: &AppId) -> Response {
    let key = format!("ip:{}", client_ip(&req));
    // The limit and the app's row are asked for together (one round trip's wait, not two);
    // the row is not looked at unless the limit allows the request.
    let rate = ratelimit::hit(&app.env, RateClass::Preview, &key, app.cfg.preview_limit, 1);
    let lookup = async { db::app_by_id(&app.db()?, app_id).await };
    let (decision, rec) = futures_util::join!(rate, lookup);
    let limited = decision.and_then(|d| {
        if d.allowed {
            return Ok(());
        }
        let secs = d.retry_after_secs(now_ms()).max(1);
        let mut e = ApiError::rate_limited(format!(
            "preview rate limit of {} requests exceeded; retry in {secs} s",
            d.limit
        ));
        e.fields.insert("retryAfter".into(), secs.to_string());
        Err(e)
    });
    let result = match limited {
        Ok(()) => match rec {
            Ok(Some(rec)) => proxy(req, app, app_id, rec).await,
            Ok(None) => Err(ApiError::not_found("preview")),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            let resp = error_response(&e);
            if let (429, Some(s)) = (e.status, e.fields.get("retryAfter")) {
                let _ = resp.headers().set("Retry-After", s);
            }
            resp
        }
    }
}

async fn proxy(req: Request, app: &App, app_id: &AppId, rec: AppRecord) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("preview");
    let label = preview_label(app_id.as_str()).ok_or_else(not_found)?;
    let sign = |text: &str| app.keys.sign("preview", text);
    let now_s = now_ms() / 1000;
    let mut url = req.url()?;

    if rec.visibility != crate::domain::apps::Visibility::Public {
        // A token in the URL is exchanged for a cookie, and the URL cleaned.
        if let Some(token) = url
            .query_pairs()
            .find(|(k, _)| k == PARAM)
            .map(|(_, v)| v.into_owned())
        {
            if !check_preview_token(&token, label, now_s, sign) {
                return Err(not_found());
            }
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != PARAM)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.set_query(None);
            if !kept.is_empty() {
                url.query_pairs_mut().extend_pairs(kept);
            }
            let cookie_token = preview_token(label, now_s + COOKIE_TTL_S, sign);
            let resp = Response::empty()?.with_status(302);
            resp.headers().set("Location", url.as_str())?;
            resp.headers().set("Cache-Control", "no-store")?;
            resp.headers().set(
                "Set-Cookie",
                &web::set_embedded_cookie(COOKIE, &cookie_token, COOKIE_TTL_S),
            )?;
            return Ok(resp);
        }
        let cookies = header(&req, "Cookie");
        match web::cookie(cookies.as_deref(), COOKIE) {
            Some(t) if check_preview_token(t, label, now_s, sign) => {}
            _ => return Err(not_found()),
        }
    }

    // Forward without the platform's credentials (the policy above).
    let headers = Headers::new();
    for (k, v) in preview::request_headers(req.headers().entries()) {
        headers.append(&k, &v)?;
    }
    let method = req.method();
    let body = if matches!(method, worker::Method::Get | worker::Method::Head) {
        None
    } else {
        req.inner().body().map(|b| b.into())
    };
    let websocket = header(&req, "Upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let call = PreviewCall::new(url.path(), url.query(), websocket).map_err(|_| not_found())?;
    let resp =
        services::sandbox::forward_preview(&app.env, app_id, call, method, headers, body).await?;
    if resp.status_code() == 404 && resp.headers().get("Content-Type").ok().flatten().is_none() {
        return Err(ApiError::new(
            503,
            ErrorCode::E006,
            "this app's sandbox is not running",
        ));
    }
    without_platform_set_cookies(resp)
}

/// The app's answer with its `Set-Cookie` headers filtered by the policy; untouched (body
/// streaming, WebSocket and all) when every one passes as it is.
pub(super) fn without_platform_set_cookies(resp: Response) -> ApiResult<Response> {
    // workerd keeps each `Set-Cookie` separate and lists them with `getAll`.
    let values = resp.headers().get_all("set-cookie")?;
    let Some(kept) = preview::set_cookies(&values) else {
        return Ok(resp);
    };
    let headers = Headers::new();
    for (k, v) in resp.headers().entries() {
        if !k.eq_ignore_ascii_case("set-cookie") {
            headers.append(&k, &v)?;
        }
    }
    for v in kept {
        headers.append("Set-Cookie", &v)?;
    }
    Ok(resp.with_headers(headers))
}
