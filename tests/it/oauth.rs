//! OAuth sign-in through the fake provider: first login creates the user, later ones find it;
//! the state is single-use and bound to the browser that started the flow; only addresses the
//! provider verified are taken, and an identity is never linked into an unverified account.

use crate::harness::{
    expect_error, main_instance, unique_email_at, Instance, ADMIN_DOMAIN, PASSWORD,
};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;

fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_string()
}

fn cookie(r: &Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().find_map(|c| {
        let c = c.to_str().ok()?;
        c.strip_prefix(&format!("{name}="))?
            .split(';')
            .next()
            .map(str::to_string)
            .filter(|v| !v.is_empty())
    })
}

struct Started {
    consent_url: String,
    state_cookie: String,
}

async fn start(app: &Instance, provider: &str, redirect: &str) -> Started {
    let r = app
        .req(
            Method::GET,
            &format!("/api/auth/oauth/{provider}?redirect={redirect}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let consent_url = location(&r);
    assert!(
        consent_url.contains(&format!("/{provider}/authorize?"))
            && consent_url.contains("code_challenge_method=S256")
    );
    Started {
        state_cookie: cookie(&r, "byte_oauth").expect("state cookie"),
        consent_url,
    }
}

/// Plays the person at the provider's consent screen; returns our callback URL with code and state.
async fn consent(app: &Instance, s: &Started, user: &str) -> String {
    let r = app
        .client
        .get(format!("{}&user={user}", s.consent_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "fake provider accepted the authorize request"
    );
    location(&r)
}

async fn callback(app: &Instance, url: &str, state_cookie: Option<&str>) -> Response {
    let mut req = app.client.get(url);
    if let Some(c) = state_cookie {
        req = req.header("Cookie", format!("byte_oauth={c}"));
    }
    req.send().await.unwrap()
}

pub async fn sign_in(app: &Instance, provider: &str, user: &str) -> (String, Value) {
    let s = start(app, provider, "/apps").await;
    let cb = consent(app, &s, user).await;
    assert!(cb.starts_with(&format!("{}/api/auth/callback/{provider}?code=", app.base)));
    let r = callback(app, &cb, Some(&s.state_cookie)).await;
    assert_eq!(r.status(), StatusCode::FOUND, "{:?}", r.text().await);
    assert_eq!(location(&r), "/apps");
    let token = cookie(&r, "byte_session").expect("session cookie");
    let me: Value = app
        .call(Method::GET, "/api/auth/me", &token, None)
        .await
        .json()
        .await
        .unwrap();
    (token, me)
}

#[tokio::test]
async fn github_first_login_creates_then_finds_the_user() {
    let app = main_instance();
    let login = format!("octo{}", std::process::id());
    let (_, first) = sign_in(app, "github", &login).await;
    assert_eq!(
        first["user"]["email"],
        format!("{login}@github.test"),
        "primary verified email from /user/emails"
    );
    assert_eq!(first["user"]["provider"], "github");
    assert_eq!(first["user"]["displayName"], login.as_str());
    assert_eq!(first["user"]["emailVerified"], true, "GitHub verified it");
    let (_, second) = sign_in(app, "github", &login).await;
    assert_eq!(first["user"]["id"], second["user"]["id"]);
}

#[tokio::test]
async fn google_login_links_to_an_existing_account_with_the_same_verified_email() {
    let app = main_instance();
    let u = app.verified_user("linked").await;
    let (_, me) = sign_in(app, "google", &format!("ada|{}", u.email)).await;
    assert_eq!(me["user"]["id"], u.id.as_str());
}

#[tokio::test]
async fn a_pre_registered_password_account_never_gets_the_owners_identity() {
    let app = main_instance();
    let login = format!("victim{}", std::process::id());
    let address = format!("{login}@github.test");
    // The attacker registers the victim's address with a password, and never verifies it.
    let attacker = app.register(&address).await;
    let planted = app.app(&attacker, "attacker's app", "private").await;

    // The victim signs in with GitHub, which vouches for the address.
    let (token, me) = sign_in(app, "github", &login).await;
    assert_ne!(
        me["user"]["id"],
        attacker.id.as_str(),
        "not linked into the attacker's account"
    );
    assert_eq!(me["user"]["email"], address.as_str());
    assert_eq!(me["user"]["emailVerified"], true);
    let apps: Value = app
        .call(Method::GET, "/api/apps", &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        apps["total"], 0,
        "nothing of the attacker's reaches the victim: {apps}"
    );
    let r = app
        .call(Method::GET, &format!("/api/apps/{planted}"), &token, None)
        .await;
    expect_error(r, 404, "E002").await;

    // And the attacker gets nothing: the unverified claim is gone with its sessions and password.
    let r = app
        .call(Method::GET, "/api/auth/me", &attacker.token, None)
        .await;
    expect_error(r, 401, "E001").await;
    expect_error(app.login(&address, PASSWORD).await, 401, "E001").await;
    // The victim's next sign-in finds the same account.
    let (_, again) = sign_in(app, "github", &login).await;
    assert_eq!(again["user"]["id"], me["user"]["id"]);
}

async fn refused(app: &Instance, provider: &str, user: &str) -> Response {
    let s = start(app, provider, "/").await;
    let cb = consent(app, &s, user).await;
    callback(app, &cb, Some(&s.state_cookie)).await
}

#[tokio::test]
async fn unverified_provider_addresses_are_refused() {
    let app = main_instance();
    // A verified account whose address an attacker lists, unverified, at a provider.
    let victim = app.verified_user("owner").await;
    for provider in ["github", "google"] {
        let r = refused(
            app,
            provider,
            &format!("mallory|{}|unverified", victim.email),
        )
        .await;
        assert!(cookie(&r, "byte_session").is_none());
        let e = expect_error(r, 403, "E001").await;
        assert!(
            e["error"]["message"].as_str().unwrap().contains("verified"),
            "{e}"
        );
    }
    // Nor may an unverified admin address sign in as admin anywhere.
    let admin = unique_email_at("ghost", ADMIN_DOMAIN);
    let r = refused(app, "github", &format!("ghost|{admin}|unverified")).await;
    expect_error(r, 403, "E001").await;
}

#[tokio::test]
async fn a_provider_verified_admin_address_is_admin() {
    let app = main_instance();
    let admin = unique_email_at("gh-admin", ADMIN_DOMAIN);
    let (token, me) = sign_in(app, "github", &format!("boss|{admin}")).await;
    assert_eq!(me["user"]["role"], "admin");
    let r = app
        .call(Method::GET, "/api/admin/users", &token, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn replayed_callback_is_rejected() {
    let app = main_instance();
    let s = start(app, "google", "/").await;
    let cb = consent(app, &s, "replay").await;
    assert_eq!(
        callback(app, &cb, Some(&s.state_cookie)).await.status(),
        StatusCode::FOUND
    );
    let e = expect_error(callback(app, &cb, Some(&s.state_cookie)).await, 400, "E004").await;
    assert!(e["error"]["fields"]["state"].is_string());
}

#[tokio::test]
async fn state_mismatch_is_rejected_and_burns_the_state() {
    let app = main_instance();
    let s = start(app, "github", "/").await;
    let cb = consent(app, &s, "mallory").await;
    // No browser binding (an attacker's link opened by a victim) → refused.
    expect_error(callback(app, &cb, None).await, 400, "E004").await;
    // And that attempt consumed the state: the right browser cannot use it either.
    expect_error(callback(app, &cb, Some(&s.state_cookie)).await, 400, "E004").await;

    // A forged state never issued → refused.
    let s2 = start(app, "github", "/").await;
    let cb2 = consent(app, &s2, "mallory").await;
    let forged = cb2.split("&state=").next().unwrap().to_string() + "&state=forged";
    expect_error(callback(app, &forged, Some("forged")).await, 400, "E004").await;
    // A state started for GitHub cannot complete a Google callback.
    let s3 = start(app, "github", "/").await;
    let cb3 = consent(app, &s3, "mallory")
        .await
        .replace("/callback/github", "/callback/google");
    expect_error(
        callback(app, &cb3, Some(&s3.state_cookie)).await,
        400,
        "E004",
    )
    .await;
}

#[tokio::test]
async fn unknown_provider_and_open_redirects() {
    let app = main_instance();
    let r = app
        .req(Method::GET, "/api/auth/oauth/myspace")
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "E002").await;
    // An off-site redirect target is replaced by "/".
    let s = start(app, "google", "https://evil.test/steal").await;
    let cb = consent(app, &s, "redir").await;
    let r = callback(app, &cb, Some(&s.state_cookie)).await;
    assert_eq!(location(&r), "/");
}

#[tokio::test]
async fn provider_error_is_reported_without_a_session() {
    let app = main_instance();
    let s = start(app, "google", "/").await;
    let cb = consent(app, &s, "denied").await;
    // Tamper with the code: the provider refuses it (invalid_grant).
    let bad = cb.replacen("code=", "code=x", 1);
    let r = callback(app, &bad, Some(&s.state_cookie)).await;
    assert_eq!(r.status().as_u16(), 502);
    assert!(cookie(&r, "byte_session").is_none());
}

#[tokio::test]
async fn the_role_follows_the_accounts_address_not_the_providers_latest() {
    let app = main_instance();
    let name = format!("eve{}", std::process::id());
    let own = format!("{name}@example.com");
    let (_, first) = sign_in(app, "google", &format!("{name}|{own}")).await;
    assert_eq!(first["user"]["role"], "user");
    // Same Google account (same `sub`), now presenting an address on ADMIN_EMAILS: the account's
    // own address is what counts, and it is not an admin's.
    let admin = unique_email_at("eve", ADMIN_DOMAIN);
    let (token, again) = sign_in(app, "google", &format!("{name}|{admin}")).await;
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    assert_eq!(again["user"]["email"], own.as_str());
    assert_eq!(again["user"]["role"], "user");
    let r = app
        .call(Method::GET, "/api/admin/users", &token, None)
        .await;
    expect_error(r, 403, "E001").await;
}
