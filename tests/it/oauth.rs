//! OAuth sign-in through the fake provider: first login creates the user, later ones find it;
//! the state is single-use and bound to the browser that started the flow.

use crate::harness::{expect_error, main_instance, Instance};
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
    let (_, second) = sign_in(app, "github", &login).await;
    assert_eq!(first["user"]["id"], second["user"]["id"]);
}

#[tokio::test]
async fn google_login_links_to_an_existing_account_with_the_same_verified_email() {
    let app = main_instance();
    let u = app.user("linked").await;
    let (_, me) = sign_in(app, "google", &format!("ada|{}", u.email)).await;
    assert_eq!(me["user"]["id"], u.id.as_str());
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
