//! Fakes of external services on loopback, speaking their real wire formats.
//!
//! The OAuth provider implements the authorization-code flow with PKCE for both Google
//! (`/google/...`: authorize, token, OpenID userinfo) and GitHub (`/github/...`: authorize,
//! token, REST `/api/user` and `/api/user/emails`). A test plays the person at the consent screen
//! by calling `/authorize` itself with `user=<login>`; the fake checks client credentials,
//! redirect URI, single use of codes and the PKCE verifier exactly as a real provider would.
//!
//! Who signs in is spelled in `user`: `<name>` (Google: `<name>@gmail.test`, verified; GitHub: a
//! verified noreply address and the verified primary `<name>@github.test`), `<name>|<address>`
//! (that address, verified and primary) or `<name>|<address>|unverified` (that address, not
//! verified: Google's `email_verified: false`; GitHub lists it primary with `verified: false` and
//! nothing else verified).

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone)]
struct Grant {
    provider: String,
    user: String,
    redirect_uri: String,
    challenge: String,
}

#[derive(Default)]
struct Provider {
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, (String, String)>,
    next: u64,
}

type Shared = Arc<Mutex<Provider>>;

fn client_ok(provider: &str, id: &str, secret: &str) -> bool {
    matches!(
        (provider, id, secret),
        ("google", "google-client", "google-secret") | ("github", "github-client", "github-secret")
    )
}

async fn authorize(
    State(s): State<Shared>,
    Path(provider): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = |k: &str| q.get(k).cloned().unwrap_or_default();
    if p("response_type") != "code"
        || p("code_challenge_method") != "S256"
        || p("code_challenge").is_empty()
    {
        return (StatusCode::BAD_REQUEST, "bad authorize request").into_response();
    }
    if !matches!(
        (provider.as_str(), p("client_id").as_str()),
        ("google", "google-client") | ("github", "github-client")
    ) {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let mut st = s.lock().unwrap();
    st.next += 1;
    let code = format!("code-{}-{}", provider, st.next);
    st.codes.insert(
        code.clone(),
        Grant {
            provider: provider.clone(),
            user: p("user"),
            redirect_uri: p("redirect_uri"),
            challenge: p("code_challenge"),
        },
    );
    let sep = if p("redirect_uri").contains('?') {
        '&'
    } else {
        '?'
    };
    Redirect::to(&format!(
        "{}{sep}code={code}&state={}",
        p("redirect_uri"),
        urlencode(&p("state"))
    ))
    .into_response()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn token(
    State(s): State<Shared>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let p = |k: &str| f.get(k).cloned().unwrap_or_default();
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .contains("json");
    let fail = |e: &str| -> Response {
        // GitHub answers errors with 200; Google with 400.
        let status = if provider == "github" {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        (status, Json(json!({ "error": e }))).into_response()
    };
    if p("grant_type") != "authorization_code" {
        return fail("unsupported_grant_type");
    }
    if !client_ok(&provider, &p("client_id"), &p("client_secret")) {
        return fail("invalid_client");
    }
    let mut st = s.lock().unwrap();
    let Some(grant) = st.codes.remove(&p("code")) else {
        return fail("invalid_grant");
    };
    if grant.provider != provider || grant.redirect_uri != p("redirect_uri") {
        return fail("invalid_grant");
    }
    if B64.encode(Sha256::digest(p("code_verifier").as_bytes())) != grant.challenge {
        return fail("invalid_grant");
    }
    st.next += 1;
    let access = format!("at-{}", st.next);
    st.tokens
        .insert(access.clone(), (provider.clone(), grant.user));
    if wants_json {
        Json(json!({ "access_token": access, "token_type": "bearer", "scope": "x" }))
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/x-www-form-urlencoded")],
            format!("access_token={access}&token_type=bearer"),
        )
            .into_response()
    }
}

fn bearer_user(s: &Shared, headers: &HeaderMap, provider: &str) -> Option<String> {
    let t = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .to_string();
    let st = s.lock().unwrap();
    let (p, user) = st.tokens.get(&t)?;
    (p == provider).then(|| user.clone())
}

async fn google_userinfo(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&s, &headers, "google") else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_token"})),
        )
            .into_response();
    };
    let who = Who::parse(&user, "gmail.test");
    Json(json!({ "sub": format!("g-{}", who.name), "email": who.email, "email_verified": who.verified, "name": who.name, "picture": "https://img.test/a.png" })).into_response()
}

/// The person at the consent screen (see the module header for the spelling).
struct Who {
    name: String,
    email: String,
    verified: bool,
    /// The address was chosen by the test (not the provider's default for the name).
    chosen: bool,
}

impl Who {
    fn parse(user: &str, domain: &str) -> Who {
        let mut parts = user.split('|');
        let name = parts.next().unwrap_or_default().to_string();
        let email = parts.next().map(str::to_string);
        let verified = parts.next() != Some("unverified");
        Who {
            chosen: email.is_some(),
            email: email.unwrap_or_else(|| format!("{name}@{domain}")),
            name,
            verified,
        }
    }
}

async fn github_user(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&s, &headers, "github") else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    };
    let id: u64 = user
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        % 1_000_000_000;
    // `/user` shows the public address only (here: the default primary, which is public).
    let who = Who::parse(&user, "github.test");
    let public = (who.verified && !who.chosen).then(|| who.email.clone());
    Json(json!({ "id": id, "login": who.name, "name": null, "email": public, "avatar_url": "https://img.test/gh.png" })).into_response()
}

async fn github_emails(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let Some(user) = bearer_user(&s, &headers, "github") else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        )
            .into_response();
    };
    // GitHub's shape: every address with `primary`, `verified` and `visibility`.
    let who = Who::parse(&user, "github.test");
    let noreply = format!("{}@users.noreply.test", who.name);
    let list = if !who.verified {
        json!([
            { "email": who.email, "primary": true, "verified": false, "visibility": "private" },
            { "email": noreply, "primary": false, "verified": false, "visibility": null }
        ])
    } else if who.chosen {
        json!([
            { "email": who.email, "primary": true, "verified": true, "visibility": "private" }
        ])
    } else {
        json!([
            { "email": noreply, "primary": false, "verified": true, "visibility": null },
            { "email": who.email, "primary": true, "verified": true, "visibility": "public" }
        ])
    };
    Json(list).into_response()
}

/// Starts the fake provider once; returns its base URL.
pub fn oauth_provider() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        crate::harness::serve(
            Router::new()
                .route("/{provider}/authorize", get(authorize))
                .route("/{provider}/token", post(token))
                .route("/google/userinfo", get(google_userinfo))
                .route("/github/api/user", get(github_user))
                .route("/github/api/user/emails", get(github_emails))
                .with_state(Shared::default()),
        )
    })
    .clone()
}
