//! Who is calling: a bearer token or the session cookie, verified (signature, algorithm, expiry,
//! revocation) into a [`Caller`]; plus the CSRF rule for cookie-authenticated writes.

use super::{header, now_ms, App};
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::token::Session;
use crate::domain::web;
use worker::Request;

#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub sid: String,
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

/// Reads and verifies the presented token (signature, algorithm, expiry) without I/O. The
/// result still needs `services::sessions::confirm` (is the session live?) before it is trusted.
pub fn read_credentials(req: &Request, app: &App) -> Identity {
    let cookie_header = header(req, "Cookie");
    let (token, via_cookie) = match bearer(req) {
        Some(t) => (t, false),
        None => match web::cookie(cookie_header.as_deref(), web::SESSION_COOKIE) {
            Some(t) if !t.is_empty() => (t.to_string(), true),
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
