//! `/api/auth/*`: password register and login, OAuth (Google, GitHub) with state and PKCE,
//! logout (revocation), and the current user.

use crate::domain::error::{ApiError, ApiResult};
use crate::domain::input::percent_encode;
use crate::domain::oauth::{self, Provider, STATE_TTL_SECONDS};
use crate::domain::token::{SessionClaims, TOKEN_SECONDS};
use crate::domain::user::{default_display_name, Email};
use crate::domain::{password, random, web};
use crate::http::auth::Caller;
use crate::http::crypto::WebCryptoKdf;
use crate::http::{header, json, json_body, App};
use crate::services::db::{self, NewUser, UserRow};
use crate::services::{now_ms, oauth as oauth_client, sessions};
use serde_json::json;
use worker::{Request, Response};

pub fn providers(app: &App) -> ApiResult<Response> {
    json(
        200,
        &json!({ "password": true, "google": app.cfg.google.is_some(), "github": app.cfg.github.is_some() }),
    )
}

fn check_allowed(app: &App, email: &Email) -> ApiResult<()> {
    if app.cfg.allowed_email.is_empty() || app.cfg.allowed_email.contains(email) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this email address is not allowed to sign in here",
        ))
    }
}

fn role_for(app: &App, email: &Email) -> &'static str {
    if app.cfg.admin_emails.contains(email) {
        "admin"
    } else {
        "user"
    }
}

/// Opens a session: a D1 row, a signed token, and the session + CSRF cookies.
async fn open_session(
    app: &App,
    user: &UserRow,
    provider: &str,
) -> ApiResult<(String, String, Vec<String>)> {
    let now = now_ms();
    let sid = random::id("ses");
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
        web::set_cookie(web::SESSION_COOKIE, &token, TOKEN_SECONDS, true, "/"),
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
    let email = body
        .required_string("email", 254)
        .and_then(|e| match Email::parse(&e) {
            Ok(e) => Some(e),
            Err(m) => {
                body.error("email", m);
                None
            }
        });
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
    let id = random::id("usr");
    let hash = password::hash(&WebCryptoKdf, &pw, random::bytes::<16>())
        .await
        .ok_or_else(ApiError::internal)?;
    let new = NewUser {
        id: &id,
        email: email.as_str(),
        display_name: &display_name,
        avatar_url: None,
        provider: "email",
        provider_user_id: None,
        role: role_for(app, &email),
    };
    if !db::create_password_user(&app.db()?, &new, &hash).await? {
        return Err(ApiError::field("email", "is already registered"));
    }
    let user = db::user_by_id(&app.db()?, &id)
        .await?
        .ok_or_else(ApiError::internal)?;
    let (token, csrf, cookies) = open_session(app, &user, "email").await?;
    session_response(201, &user, &token, &csrf, &cookies)
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
    crate::services::ratelimit::admit_sign_in(app, email.as_str()).await?;
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
    crate::services::ratelimit::record_sign_in(app, email.as_str(), matches).await;
    match (user, hash) {
        (Some(user), Some(_)) if matches => {
            check_allowed(app, &email)?;
            db::touch_login(&db, &user.id, role_for(app, &email) == "admin").await?;
            let user = db::user_by_id(&db, &user.id)
                .await?
                .ok_or_else(ApiError::internal)?;
            let (token, csrf, cookies) = open_session(app, &user, "email").await?;
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

pub async fn logout(app: &App, caller: &Caller) -> ApiResult<Response> {
    sessions::revoke(&app.kv()?, &app.db()?, &caller.sid, &caller.user_id).await?;
    let resp = json(200, &json!({ "message": "signed out" }))?;
    resp.headers().append(
        "Set-Cookie",
        &web::set_cookie(web::SESSION_COOKIE, "", 0, true, "/"),
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

fn provider(app: &App, name: &str) -> ApiResult<(Provider, crate::domain::config::OAuthClient)> {
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
    let email = profile
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(|| ApiError::unauthorized("the provider did not share an email address"))?;
    check_allowed(app, &email)?;
    let id = random::id("usr");
    let display = profile
        .display_name
        .clone()
        .unwrap_or_else(|| default_display_name(&email));
    let new = NewUser {
        id: &id,
        email: email.as_str(),
        display_name: &display,
        avatar_url: profile.avatar_url.as_deref(),
        provider: p.name(),
        provider_user_id: Some(&profile.provider_user_id),
        role: role_for(app, &email),
    };
    let user = db::upsert_oauth_user(&app.db()?, &new, profile.email_verified).await?;
    let (_token, _csrf, mut cookies) = open_session(app, &user, p.name()).await?;
    cookies.push(web::set_cookie(
        web::OAUTH_COOKIE,
        "",
        0,
        true,
        "/api/auth/callback",
    ));
    redirect(&saved.redirect_to, &cookies)
}
