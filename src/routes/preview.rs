//! Preview hostnames (`<app label>.<PREVIEW_DOMAIN>`): requests go through the app's sandbox
//! object to its dev server, HMR WebSockets included. Public apps are open; private ones need
//! the signed token from a preview URL, exchanged once for a host-only cookie.
//!
//! Invariants: without access a private preview is a 404 like a missing one; the platform's own
//! cookies and `Authorization` never reach the app.

use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::sandbox::{check_preview_token, preview_label, preview_token};
use crate::domain::web;
use crate::http::{error_response, header, internal, App};
use crate::services::{db, now_ms};
use worker::{Headers, Request, RequestInit, Response};

const PARAM: &str = "__byte_preview";
const COOKIE: &str = web::PREVIEW_COOKIE;
/// Lifetime of the preview cookie.
const COOKIE_TTL_S: i64 = 12 * 3600;

pub async fn serve(req: Request, app: &App, app_id: &str) -> Response {
    match proxy(req, app, app_id).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn proxy(req: Request, app: &App, app_id: &str) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("preview");
    let rec = db::app_by_id(&app.db()?, app_id)
        .await?
        .ok_or_else(not_found)?;
    let label = preview_label(app_id).ok_or_else(not_found)?;
    let sign = |text: &str| app.keys.sign("preview", text);
    let now_s = now_ms() / 1000;
    let mut url = req.url().map_err(internal)?;

    if rec.visibility.as_deref() != Some("public") {
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
            let resp = Response::empty().map_err(internal)?.with_status(302);
            resp.headers()
                .set("Location", url.as_str())
                .map_err(internal)?;
            resp.headers()
                .set("Cache-Control", "no-store")
                .map_err(internal)?;
            resp.headers()
                .set(
                    "Set-Cookie",
                    &web::set_cookie(COOKIE, &cookie_token, COOKIE_TTL_S, true, "/"),
                )
                .map_err(internal)?;
            return Ok(resp);
        }
        let cookies = header(&req, "Cookie");
        match web::cookie(cookies.as_deref(), COOKIE) {
            Some(t) if check_preview_token(t, label, now_s, sign) => {}
            _ => return Err(not_found()),
        }
    }

    // Forward without the platform's credentials.
    let headers = Headers::new();
    for (k, v) in req.headers().entries() {
        match k.as_str() {
            "authorization" => {}
            "cookie" => {
                if let Some(kept) = web::strip_platform_cookies(&v) {
                    headers.set("Cookie", &kept).map_err(internal)?;
                }
            }
            _ => headers.append(&k, &v).map_err(internal)?,
        }
    }
    let method = req.method();
    let mut init = RequestInit::new();
    init.with_method(method.clone()).with_headers(headers);
    if !matches!(method, worker::Method::Get | worker::Method::Head) {
        init.with_body(req.inner().body().map(|b| b.into()));
    }
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    let fwd = Request::new_with_init(
        &format!("https://sandbox/proxy/preview{}{query}", url.path()),
        &init,
    )
    .map_err(internal)?;
    let resp = super::sandbox::stub(app, app_id)?
        .fetch_with_request(fwd)
        .await
        .map_err(internal)?;
    if resp.status_code() == 404 && resp.headers().get("Content-Type").ok().flatten().is_none() {
        return Err(ApiError::new(
            503,
            ErrorCode::E006,
            "this app's sandbox is not running",
        ));
    }
    Ok(resp)
}
