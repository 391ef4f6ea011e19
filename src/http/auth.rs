//! Who is calling: a bearer token or the session cookie, verified (signature, algorithm, expiry,
//! revocation) into a [`Caller`]; plus the CSRF rule for cookie-authenticated writes.
//!
//! The session cookie is `__Host-byte_session` on an https origin and `byte_session` on http
//! ([`web::session_cookie_name`]); only that name is read, and a request carrying it twice is
//! refused (401 E001) rather than trusting whichever copy comes first.

use super::{header, now_ms, App};
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::{SessionId, UserId};
use crate::domain::token::Session;
use crate::domain::web;
use worker::Request;

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: UserId,
    pub sid: SessionId,
    pub via_cookie: bool,
    /// When the presented token expires (epoch seconds).
    pub expires_at: i64,
}

/// The outcome of looking at a request's credentials.
pub enum Identity {
    Anonymous,
    /// Credentials were presented and are not valid.
    Invalid(ApiError),
    User(Caller),
}

impl Identity {
    pub fn user(&self) -> Option<&Caller> {
        match self {
            Identity::User(c) => Some(c),
            _ => None,
        }
    }
}

fn bearer(req: &Request) -> Option<String> {
    let h = header(req, "Authorization")?;
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Whether the deployment is served over https: `PUBLIC_URL`'s scheme when set, else the
/// request's.
pub fn https_origin(req: &Request, app: &App) -> bool {
    match &app.cfg.public_url {
        Some(u) => u.starts_with("https://"),
        None => req.url().map(|u| u.scheme() == "https").unwrap_or(false),
    }
}

/// The session cookie's name for this deployment.
pub fn session_cookie(req: &Request, app: &App) -> &'static str {
    web::session_cookie_name(https_origin(req, app))
}

/// Reads and verifies the presented token (signature, algorithm, expiry) without I/O. The
/// result still needs `services::sessions::confirm` (is the session live?) before it is trusted.
pub fn read_credentials(req: &Request, app: &App) -> Identity {
    let cookie_header = header(req, "Cookie");
    let (token, via_cookie) = match bearer(req) {
        Some(t) => (t, false),
        None => match web::sole_cookie(cookie_header.as_deref(), session_cookie(req, app)) {
            Err(()) => {
                return Identity::Invalid(ApiError::unauthorized(
                    "invalid authentication token: the session cookie is set more than once",
                ))
            }
            Ok(Some(t)) if !t.is_empty() => (t.to_string(), true),
            _ if header(req, "Authorization").is_some() => {
                return Identity::Invalid(ApiError::unauthorized(
                    "invalid authentication token: use the Bearer scheme",
                ))
            }
            _ => return Identity::Anonymous,
        },
    };
    match app.keys.verify(&token, now_ms()) {
        Ok(Session {
            claims, expires_at, ..
        }) => Identity::User(Caller {
            user_id: claims.user_id,
            sid: claims.sid,
            via_cookie,
            expires_at,
        }),
        Err(e) => Identity::Invalid(e),
    }
}

/// Cookie-authenticated writes must echo the session's CSRF token in `X-CSRF-Token`; bearer
/// tokens cannot be sent by a browser on its own, so they need none.
pub fn check_csrf(req: &Request, app: &App, caller: &Caller) -> ApiResult<()> {
    if !caller.via_cookie || !web::is_unsafe(req.method().as_ref()) {
        return Ok(());
    }
    let presented = header(req, web::CSRF_HEADER).unwrap_or_default();
    if app.keys.check_csrf(&caller.sid, &presented) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "missing or invalid CSRF token (send the X-CSRF-Token header)",
        ))
    }
}
