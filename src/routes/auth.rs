//! `/api/auth/*`: password register and login, email verification (verify, resend, change of
//! address), OAuth (Google, GitHub) with state and PKCE, logout (revocation), the current user;
//! and the dev outbox (`GET /api/dev/outbox`, only under `MAIL_BACKEND=outbox`).
//!
//! Invariants (issue 9, verified identities):
//! - an address counts for `ADMIN_EMAILS` and `ALLOWED_EMAIL` only once proved: by a
//!   verification link (single use, expiring, see `domain::token`) or by a provider that vouches
//!   for it (Google `email_verified`, GitHub `/user/emails` `verified`); unverified provider
//!   addresses are refused;
//! - the role is recomputed at every sign-in and verification, and [`is_admin`] checks the list
//!   again on every admin request, so removal from `ADMIN_EMAILS` demotes at once;
//! - an OAuth identity is never linked into an unverified account: a provider sign-in for an
//!   address an unverified password account holds releases that claim and opens a new account
//!   (`services::identity`).

use crate::domain::config::OAuthClient;
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::{SessionId, UserId};
use crate::domain::input::{percent_encode, Query};
use crate::domain::oauth::{self, Provider, STATE_TTL_SECONDS};
use crate::domain::routes::Route;
use crate::domain::token::{SessionClaims, EMAIL_TOKEN_SECONDS, TOKEN_SECONDS};
use crate::domain::user::{default_display_name, may_enter, may_register, role_for, Email, Role};
use crate::domain::verification::{self, Purpose, MAIL_LIMIT};
use crate::domain::{password, random, web};
use crate::http::auth::{session_cookie, Caller};
use crate::http::crypto::WebCryptoKdf;
use crate::http::{header, json, json_body, App};
use crate::services::db::{self, NewUser, UserRow};
use crate::services::identity::{self, OAuthSignIn};
use crate::services::ratelimit::{self, Class};
use crate::services::{mail, now_ms, oauth as oauth_client, sessions};
use serde_json::json;
use worker::{Request, Response};

pub fn providers(app: &App) -> ApiResult<Response> {
    json(
        200,
        &json!({ "password": true, "google": app.cfg.google.is_some(), "github": app.cfg.github.is_some() }),
    )
}

fn check_allowed(app: &App, email: &Email) -> ApiResult<()> {
    if may_register(&app.cfg.allowed_email, email) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this email address is not allowed to sign in here",
        ))
    }
}

/// The role an account's address gives it now.
fn role(app: &App, email: &str, verified: bool) -> Role {
    Email::parse(email)
        .map(|e| role_for(&app.cfg.admin_emails, &e, verified))
        .unwrap_or(Role::User)
}

/// Whether an account is an administrator now: its stored role, and its proved address still on
/// `ADMIN_EMAILS` (so removal demotes before the next sign-in rewrites the role).
pub(crate) fn is_admin(app: &App, user: &UserRow) -> bool {
    user.role == "admin" && role(app, &user.email, user.email_verified()) == Role::Admin
}

/// The allow-list gate for signed-in requests: with `ALLOWED_EMAIL` set, only a proved address
/// on it passes; an unverified account may still see itself, verify, change its address and
/// sign out.
pub(crate) async fn gate(app: &App, caller: &Caller, route: &Route) -> ApiResult<()> {
    if app.cfg.allowed_email.is_empty()
        || matches!(
            route,
            Route::Me | Route::Logout | Route::VerifyResend | Route::ChangeEmail
        )
    {
        return Ok(());
    }
    let user = db::user_by_id(&app.db()?, &caller.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized("invalid authentication token: user no longer exists")
        })?;
    let email = Email::parse(&user.email).map_err(|_| ApiError::forbidden("account closed"))?;
    if may_enter(&app.cfg.allowed_email, &email, user.email_verified()) {
        Ok(())
    } else if !user.email_verified() {
        Err(ApiError::forbidden(
            "verify your email address first: use the link we sent (POST /api/auth/verify/resend sends a new one)",
        ))
    } else {
        Err(ApiError::forbidden(
            "this email address is not allowed to sign in here",
        ))
    }
}

/// The sender of verification mail: `MAIL_FROM`, else `noreply@<this deployment's host>`.
fn mail_from(req: &Request, app: &App) -> ApiResult<String> {
    if let Some(f) = &app.cfg.mail_from {
        return Ok(f.clone());
    }
    let origin = origin_of(req, app)?;
    let host = worker::Url::parse(&origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "localhost".into());
    Ok(format!("noreply@{host}"))
}

/// Sends a verification link for `email` to account `user_id` (the newest link replaces earlier
/// ones), within the account's mail limit.
async fn send_verification(
    req: &Request,
    app: &App,
    user_id: &UserId,
    email: &str,
    purpose: Purpose,
) -> ApiResult<()> {
    let d = ratelimit::hit(
        &app.env,
        Class::Auth,
        &format!("mail:{user_id}"),
        MAIL_LIMIT,
        1,
    )
    .await?;
    if !d.allowed {
        return Err(ApiError::rate_limited(format!(
            "too many verification mails for this account; retry in {} s",
            d.retry_after_secs(now_ms())
        )));
    }
    let now = now_ms();
    let jti = random::id("evt");
    let token = app.keys.issue_email(user_id, email, &jti, now);
    identity::record_link(
        &app.db()?,
        &jti,
        user_id,
        email,
        now / 1000 + EMAIL_TOKEN_SECONDS,
    )
    .await?;
    let m = verification::mail(
        &origin_of(req, app)?,
        email,
        &token,
        purpose,
        EMAIL_TOKEN_SECONDS / 3600,
    );
    mail::send(&app.env, app.cfg.mail_backend, &mail_from(req, app)?, &m).await
}

/// Opens a session: a D1 row, a signed token, and the session + CSRF cookies.
async fn open_session(
    req: &Request,
    app: &App,
    user: &UserRow,
    provider: &str,
) -> ApiResult<(String, String, Vec<String>)> {
    let now = now_ms();
    let sid = SessionId::generate();
    db::create_session(
        &app.db()?,
        &sid,
        &user.id,
        provider,
        now / 1000 + TOKEN_SECONDS,
    )
    .await?;
    let token = app.keys.issue(
        SessionClaims {
            user_id: user.id.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone().unwrap_or_default(),
            provider: provider.to_string(),
            sid: sid.clone(),
        },
        now,
    );
    let csrf = app.keys.csrf_token(&sid);
    let cookies = vec![
        web::set_cookie(session_cookie(req, app), &token, TOKEN_SECONDS, true, "/"),
        web::set_cookie(web::CSRF_COOKIE, &csrf, TOKEN_SECONDS, false, "/"),
    ];
    Ok((token, csrf, cookies))
}

fn session_response(
    status: u16,
    user: &UserRow,
    token: &str,
    csrf: &str,
    cookies: &[String],
) -> ApiResult<Response> {
    let resp = json(
        status,
        &json!({ "token": token, "csrfToken": csrf, "expiresIn": TOKEN_SECONDS, "user": user.to_json() }),
    )?;
    for c in cookies {
        resp.headers().append("Set-Cookie", c)?;
    }
    Ok(resp)
}

pub async fn register(mut req: Request, app: &App) -> ApiResult<Response> {
    let mut body = json_body(&mut req).await?;
    let email = body.required_email("email");
    // Passwords are taken verbatim (no trimming): spaces are legitimate characters.
    let pw = match body.take_raw("password") {
        crate::domain::input::Patch::Value(serde_json::Value::String(p)) => {
            match password::check_policy(&p) {
                Ok(()) => Some(p),
                Err(m) => {
                    body.error("password", m);
                    None
                }
            }
        }
        crate::domain::input::Patch::Absent | crate::domain::input::Patch::Null => {
            body.error("password", "is required");
            None
        }
        _ => {
            body.error("password", "must be a string");
            None
        }
    };
    let display_name = body.string("displayName", 100);
    body.finish()?;
    let (Some(email), Some(pw)) = (email, pw) else {
        return Err(ApiError::internal());
    };
    check_allowed(app, &email)?;
    let display_name = match display_name {
        crate::domain::input::Patch::Value(d) if !d.is_empty() => d,
        _ => default_display_name(&email),
    };
    let id = UserId::generate();
    let hash = password::hash(&WebCryptoKdf, &pw, random::bytes::<16>())
        .await
        .ok_or_else(ApiError::internal)?;
    // No role from ADMIN_EMAILS yet: nobody has proved this address.
    let new = NewUser {
        id: &id,
        email: email.as_str(),
        display_name: &display_name,
        avatar_url: None,
        provider: "email",
        provider_user_id: None,
        role: Role::User.as_str(),
    };
    if !db::create_password_user(&app.db()?, &new, &hash).await? {
        return Err(ApiError::field("email", "is already registered"));
    }
    let user = db::user_by_id(&app.db()?, &id)
        .await?
        .ok_or_else(ApiError::internal)?;
    // The account exists either way; a failed mail is reported and can be resent.
    let sent = match send_verification(&req, app, &id, email.as_str(), Purpose::SignUp).await {
        Ok(()) => true,
        Err(e) => {
            worker::console_error!("register: verification mail not sent: {}", e.message);
            false
        }
    };
    let (token, csrf, cookies) = open_session(&req, app, &user, "email").await?;
    let resp = json(
        201,
        &json!({ "token": token, "csrfToken": csrf, "expiresIn": TOKEN_SECONDS,
                 "user": user.to_json(), "verificationSent": sent }),
    )?;
    for c in cookies {
        resp.headers().append("Set-Cookie", &c)?;
    }
    Ok(resp)
}

pub async fn login(mut req: Request, app: &App) -> ApiResult<Response> {
    let mut body = json_body(&mut req).await?;
    let email = body.required_string("email", 254);
    let pw = match body.take_raw("password") {
        crate::domain::input::Patch::Value(serde_json::Value::String(p)) if p.len() <= 1024 => {
            Some(p)
        }
        _ => {
            body.error("password", "is required and must be a string");
            None
        }
    };
    body.finish()?;
    let (Some(email), Some(pw)) = (email, pw) else {
        return Err(ApiError::internal());
    };
    let generic = || ApiError::unauthorized("invalid email or password");
    let Ok(email) = Email::parse(&email) else {
        password::burn(&WebCryptoKdf, &pw).await;
        return Err(generic());
    };
    // Per-account backoff after repeated failures, whatever the client address.
    let backoff = app.cfg.signin_backoff;
    crate::services::ratelimit::admit_sign_in(&app.env, backoff, email.as_str()).await?;
    let db = app.db()?;
    let user = db::user_by_email(&db, email.as_str()).await?;
    let hash = match &user {
        Some(u) => db::password_hash(&db, &u.id).await?,
        None => None,
    };
    let matches = match &hash {
        Some(h) => password::verify(&WebCryptoKdf, &pw, h).await,
        None => false,
    };
    crate::services::ratelimit::record_sign_in(&app.env, backoff, email.as_str(), matches).await;
    match (user, hash) {
        (Some(user), Some(_)) if matches => {
            check_allowed(app, &email)?;
            let role = role(app, &user.email, user.email_verified());
            db::touch_login(&db, &user.id, role.as_str()).await?;
            let user = db::user_by_id(&db, &user.id)
                .await?
                .ok_or_else(ApiError::internal)?;
            let (token, csrf, cookies) = open_session(&req, app, &user, "email").await?;
            session_response(200, &user, &token, &csrf, &cookies)
        }
        (_, None) => {
            // Same cost as a real check, so response time does not reveal unknown emails.
            password::burn(&WebCryptoKdf, &pw).await;
            Err(generic())
        }
        _ => Err(generic()),
    }
}

pub async fn logout(req: &Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    sessions::revoke(&app.kv()?, &app.db()?, &caller.sid, &caller.user_id).await?;
    let resp = json(200, &json!({ "message": "signed out" }))?;
    resp.headers().append(
        "Set-Cookie",
        &web::set_cookie(session_cookie(req, app), "", 0, true, "/"),
    )?;
    resp.headers().append(
        "Set-Cookie",
        &web::set_cookie(web::CSRF_COOKIE, "", 0, false, "/"),
    )?;
    Ok(resp)
}

pub async fn me(app: &App, caller: &Caller) -> ApiResult<Response> {
    let user = db::user_by_id(&app.db()?, &caller.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized("invalid authentication token: user no longer exists")
        })?;
    json(
        200,
        &json!({ "user": user.to_json(), "csrfToken": app.keys.csrf_token(&caller.sid) }),
    )
}

/// `POST /api/auth/verify` `{token}`: uses a verification link. The account's address (or its
/// pending new one) becomes proved, and the role follows from it.
pub async fn verify(mut req: Request, app: &App) -> ApiResult<Response> {
    let mut body = json_body(&mut req).await?;
    let token = body.required_string("token", 4096);
    body.finish()?;
    let Some(token) = token else {
        return Err(ApiError::internal());
    };
    let claims = app.keys.verify_email(&token, now_ms())?;
    let db = app.db()?;
    let used = || {
        ApiError::field(
            "token",
            "has already been used or was replaced by a newer link",
        )
    };
    let user = db::user_by_id(&db, &claims.user_id)
        .await?
        .ok_or_else(used)?;
    if !identity::consume_link(&db, &claims.jti, &user.id, &claims.email).await? {
        return Err(used());
    }
    let new_role = role(app, &claims.email, true);
    if user.email == claims.email {
        identity::mark_verified(&db, &user.id, &claims.email, new_role.as_str()).await?;
    } else if user.pending_email.as_deref() == Some(claims.email.as_str()) {
        if let Some(holder) = db::user_by_email(&db, &claims.email).await? {
            if holder.email_verified() {
                return Err(ApiError::field("email", "is already registered"));
            }
            identity::release_claim(&app.kv()?, &db, &holder).await?;
        }
        if !identity::adopt_pending_email(&db, &user.id, &claims.email, new_role.as_str()).await? {
            return Err(ApiError::field("email", "is already registered"));
        }
    } else {
        return Err(ApiError::field(
            "token",
            "is for an address this account no longer uses",
        ));
    }
    let user = db::user_by_id(&db, &user.id)
        .await?
        .ok_or_else(ApiError::internal)?;
    json(
        200,
        &json!({ "message": "email address verified", "user": user.to_json() }),
    )
}

/// `POST /api/auth/verify/resend`: a new link for the pending address, else for the account's
/// unverified one.
pub async fn resend(req: Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    let user = current_user(app, caller).await?;
    let (to, purpose) = match (&user.pending_email, user.email_verified()) {
        (Some(p), _) => (p.clone(), Purpose::Change),
        (None, false) => (user.email.clone(), Purpose::SignUp),
        (None, true) => {
            return Err(ApiError::validation(
                "the email address is already verified",
            ))
        }
    };
    send_verification(&req, app, &user.id, &to, purpose).await?;
    json(
        202,
        &json!({ "message": "verification link sent", "to": to }),
    )
}

/// `POST /api/auth/email` `{email, password}`: asks to change the account's address. The new
/// address takes effect only when its link is used; a password account confirms with its
/// password (a stolen session alone cannot move the account to another mailbox).
pub async fn change_email(mut req: Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    let mut body = json_body(&mut req).await?;
    let email = body.required_email("email");
    let pw = body.optional_secret("password", 1024);
    body.finish()?;
    let Some(email) = email else {
        return Err(ApiError::internal());
    };
    let db = app.db()?;
    let user = current_user(app, caller).await?;
    if let Some(hash) = db::password_hash(&db, &user.id).await? {
        let Some(pw) = pw else {
            return Err(ApiError::field(
                "password",
                "is required to change the address",
            ));
        };
        if !password::verify(&WebCryptoKdf, &pw, &hash).await {
            return Err(ApiError::forbidden("the password is not correct"));
        }
    }
    if user.email == email.as_str() {
        return Err(ApiError::field(
            "email",
            "is already this account's address",
        ));
    }
    check_allowed(app, &email)?;
    if db::user_by_email(&db, email.as_str())
        .await?
        .is_some_and(|u| u.email_verified())
    {
        return Err(ApiError::field("email", "is already registered"));
    }
    send_verification(&req, app, &user.id, email.as_str(), Purpose::Change).await?;
    identity::set_pending_email(&db, &user.id, email.as_str()).await?;
    json(
        202,
        &json!({ "message": "verification link sent to the new address", "pendingEmail": email.as_str() }),
    )
}

/// `GET /api/dev/outbox[?to=address]`: the local outbox, only under `MAIL_BACKEND=outbox`; a 404
/// like any unknown route otherwise.
pub async fn outbox(req: Request, app: &App) -> ApiResult<Response> {
    let url = req.url()?;
    let q = Query::parse(url.query().unwrap_or(""));
    let to = q.get("to").map(|t| t.trim().to_ascii_lowercase());
    match mail::outbox(&app.kv()?, app.cfg.mail_backend, to.as_deref()).await? {
        Some(messages) => json(200, &json!({ "messages": messages })),
        None => Err(ApiError::new(
            404,
            crate::domain::error::ErrorCode::E002,
            format!("no route for {}", url.path()),
        )),
    }
}

async fn current_user(app: &App, caller: &Caller) -> ApiResult<UserRow> {
    db::user_by_id(&app.db()?, &caller.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized("invalid authentication token: user no longer exists")
        })
}

fn provider(app: &App, name: &str) -> ApiResult<(Provider, OAuthClient)> {
    let p = Provider::parse(name)
        .ok_or_else(|| ApiError::not_found(&format!("OAuth provider '{name}'")))?;
    let client = app
        .cfg
        .oauth(p)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&format!("configured OAuth provider '{name}'")))?;
    Ok((p, client))
}

fn origin_of(req: &Request, app: &App) -> ApiResult<String> {
    if let Some(u) = &app.cfg.public_url {
        return Ok(u.clone());
    }
    let url = req.url()?;
    Ok(url.origin().ascii_serialization())
}

fn redirect_uri(req: &Request, app: &App, p: Provider) -> ApiResult<String> {
    Ok(format!(
        "{}/api/auth/callback/{}",
        origin_of(req, app)?,
        p.name()
    ))
}

fn redirect(to: &str, cookies: &[String]) -> ApiResult<Response> {
    let resp = Response::empty()?.with_status(302);
    resp.headers().set("Location", to)?;
    resp.headers().set("Cache-Control", "no-store")?;
    for c in cookies {
        resp.headers().append("Set-Cookie", c)?;
    }
    Ok(resp)
}

/// `GET /api/auth/oauth/:provider?redirect=/path` → 302 to the provider's consent page.
pub async fn oauth_start(req: Request, app: &App, name: &str) -> ApiResult<Response> {
    let (p, client) = provider(app, name)?;
    let url = req.url()?;
    let after = url
        .query_pairs()
        .find(|(k, _)| k == "redirect")
        .map(|(_, v)| v.into_owned());
    let state = random::token::<32>();
    let verifier = random::token::<48>();
    let expires = now_ms() / 1000 + STATE_TTL_SECONDS;
    db::save_oauth_state(
        &app.db()?,
        &state,
        p.name(),
        &verifier,
        &oauth::safe_redirect(after.as_deref()),
        expires,
    )
    .await?;
    let to = oauth::authorize_url(
        p,
        &client.endpoints,
        &client.client_id,
        &redirect_uri(&req, app, p)?,
        &state,
        &verifier,
    );
    // The state is also bound to this browser, so a victim cannot be logged into an attacker's
    // account with a callback URL the attacker started.
    let binding = web::set_cookie(
        web::OAUTH_COOKIE,
        &state,
        STATE_TTL_SECONDS,
        true,
        "/api/auth/callback",
    );
    redirect(&to, &[binding])
}

/// `GET /api/auth/callback/:provider?code&state` → exchange, find or create the user, set the
/// session cookie and 302 back into the app.
pub async fn oauth_callback(req: Request, app: &App, name: &str) -> ApiResult<Response> {
    let (p, client) = provider(app, name)?;
    let url = req.url()?;
    let param = |k: &str| {
        url.query_pairs()
            .find(|(q, _)| q == k)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(err) = param("error") {
        return Err(ApiError::unauthorized(format!(
            "sign-in was not completed: {}",
            percent_encode(&err)
        )));
    }
    let bad_state = || ApiError::field("state", "unknown, expired or already used OAuth state");
    let (Some(code), Some(state)) = (param("code"), param("state")) else {
        return Err(ApiError::validation("code and state are required"));
    };
    let cookie_header = header(&req, "Cookie");
    let bound = web::cookie(cookie_header.as_deref(), web::OAUTH_COOKIE);
    // Take the state out first: whatever happens next, it cannot be replayed.
    let saved = db::take_oauth_state(&app.db()?, &state)
        .await?
        .ok_or_else(bad_state)?;
    if bound != Some(state.as_str())
        || saved.provider != p.name()
        || (saved.expires_at as i64) < now_ms() / 1000
    {
        return Err(bad_state());
    }
    let profile = oauth_client::exchange_and_fetch_profile(
        p,
        &client,
        &code,
        &redirect_uri(&req, app, p)?,
        &saved.code_verifier,
    )
    .await?;
    // Only an address the provider vouches for: an unverified one proves nothing about who
    // reads its mail.
    let email = match (profile.verified_email(), profile.email.is_some()) {
        (Some(e), _) => Email::parse(e).map_err(|_| {
            ApiError::unauthorized("the provider shared an address that is not an email address")
        })?,
        (None, true) => {
            return Err(ApiError::forbidden(format!(
                "your {} account has no verified email address; verify one there and sign in again",
                p.name()
            )))
        }
        (None, false) => {
            return Err(ApiError::unauthorized(
                "the provider did not share an email address",
            ))
        }
    };
    check_allowed(app, &email)?;
    let id = UserId::generate();
    let display = profile
        .display_name
        .clone()
        .unwrap_or_else(|| default_display_name(&email));
    let user = identity::oauth_sign_in(
        &app.kv()?,
        &app.db()?,
        &OAuthSignIn {
            provider: p.name(),
            provider_user_id: &profile.provider_user_id,
            email: &email,
            display_name: &display,
            avatar_url: profile.avatar_url.as_deref(),
            new_id: &id,
        },
        &app.cfg.admin_emails,
    )
    .await?;
    let (_token, _csrf, mut cookies) = open_session(&req, app, &user, p.name()).await?;
    cookies.push(web::set_cookie(
        web::OAUTH_COOKIE,
        "",
        0,
        true,
        "/api/auth/callback",
    ));
    redirect(&saved.redirect_to, &cookies)
}
