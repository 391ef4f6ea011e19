//! Email + password accounts, sessions, logout, CSRF under cookie auth, admin level.

use crate::harness::{expect_error, main_instance, unique_email, ADMIN_EMAIL};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn register_login_me_logout() {
    let app = main_instance();
    let email = unique_email("reg");
    let r = app
        .req(Method::POST, "/api/auth/register")
        .json(&json!({ "email": email.to_uppercase(), "password": "s3cret passphrase", "displayName": "Ada" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(cookies.iter().any(|c| c.starts_with("byte_session=")
        && c.contains("HttpOnly")
        && c.contains("Secure")
        && c.contains("SameSite=Lax")));
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["user"]["email"], email,
        "email is normalized to lower case"
    );
    assert_eq!(body["user"]["displayName"], "Ada");
    assert!(
        body.to_string().find("pbkdf2").is_none(),
        "no hash in responses"
    );

    // Same email again, any case: refused, naming the field.
    let r = app
        .req(Method::POST, "/api/auth/register")
        .json(&json!({ "email": email, "password": "another password" }))
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 400, "E004").await;
    assert_eq!(e["error"]["fields"]["email"], "is already registered");

    let r = app
        .req(Method::POST, "/api/auth/login")
        .json(&json!({ "email": email, "password": "s3cret passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let me: Value = app
        .call(Method::GET, "/api/auth/me", &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["email"], email);
    assert_eq!(me["user"]["role"], "user");

    let r = app
        .call(Method::POST, "/api/auth/logout", &token, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The token is revoked for good.
    let r = app.call(Method::GET, "/api/auth/me", &token, None).await;
    let e = expect_error(r, 401, "E001").await;
    assert!(e["error"]["message"].as_str().unwrap().contains("revoked"));
    let r = app.call(Method::GET, "/api/apps", &token, None).await;
    expect_error(r, 401, "E001").await;
}

#[tokio::test]
async fn login_errors_do_not_reveal_which_emails_exist() {
    let app = main_instance();
    let u = app.user("login").await;
    let wrong_pw = app
        .req(Method::POST, "/api/auth/login")
        .json(&json!({ "email": u.email, "password": "wrong password!" }))
        .send()
        .await
        .unwrap();
    let no_user = app
        .req(Method::POST, "/api/auth/login")
        .json(&json!({ "email": unique_email("nobody"), "password": "wrong password!" }))
        .send()
        .await
        .unwrap();
    let a = expect_error(wrong_pw, 401, "E001").await;
    let b = expect_error(no_user, 401, "E001").await;
    assert_eq!(
        a, b,
        "identical bodies for wrong password and unknown email"
    );
}

#[tokio::test]
async fn registration_validates_every_field() {
    let app = main_instance();
    let r = app
        .req(Method::POST, "/api/auth/register")
        .json(&json!({ "email": "not-an-email", "password": "short" }))
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 400, "E004").await;
    assert_eq!(e["error"]["fields"]["email"], "must be an email address");
    assert_eq!(
        e["error"]["fields"]["password"],
        "must be at least 8 characters"
    );
    let r = app
        .req(Method::POST, "/api/auth/register")
        .json(&json!({ "email": unique_email("x"), "password": 12345678 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(r, 400, "E004").await["error"]["fields"]["password"],
        "must be a string"
    );
}

#[tokio::test]
async fn cookie_auth_requires_csrf_token_for_writes() {
    let app = main_instance();
    let email = unique_email("csrf");
    let r = app
        .req(Method::POST, "/api/auth/register")
        .json(&json!({ "email": email, "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    let mut session = String::new();
    for c in r.headers().get_all("set-cookie") {
        let c = c.to_str().unwrap();
        if let Some(v) = c.strip_prefix("byte_session=") {
            session = v.split(';').next().unwrap().to_string();
        }
    }
    let csrf = r.json::<Value>().await.unwrap()["csrfToken"]
        .as_str()
        .unwrap()
        .to_string();
    let cookie = format!("byte_session={session}");

    // Reads need no CSRF token.
    let r = app
        .req(Method::GET, "/api/apps")
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A write without it is refused, with nothing created.
    let r = app
        .req(Method::POST, "/api/apps")
        .header("Cookie", &cookie)
        .json(&json!({ "title": "x" }))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "E001").await;
    let r = app
        .req(Method::POST, "/api/apps")
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", "0".repeat(64))
        .json(&json!({ "title": "x" }))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "E001").await;
    let list: Value = app
        .req(Method::GET, "/api/apps")
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 0);
    // With the session's token it works.
    let r = app
        .req(Method::POST, "/api/apps")
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .json(&json!({ "title": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn admin_routes_need_the_admin_role() {
    let app = main_instance();
    let plain = app.user("plain").await;
    let r = app
        .call(Method::GET, "/api/admin/users", &plain.token, None)
        .await;
    expect_error(r, 403, "E001").await;
    let r = app
        .req(Method::GET, "/api/admin/users")
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "E001").await;

    // ADMIN_EMAILS promotes at sign-up (the harness sets it); the first test to get here registers it.
    let r = app
        .req(Method::POST, "/api/auth/register")
        .json(&json!({ "email": ADMIN_EMAIL, "password": "admin password 1" }))
        .send()
        .await
        .unwrap();
    let token = if r.status() == StatusCode::CREATED {
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    } else {
        let r = app
            .req(Method::POST, "/api/auth/login")
            .json(&json!({ "email": ADMIN_EMAIL, "password": "admin password 1" }))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let r = app
        .call(Method::GET, "/api/admin/users?limit=100", &token, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert!(body["total"].as_u64().unwrap() >= 2);
    assert!(body["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u.get("password_hash").is_none()));
}

#[tokio::test]
async fn secrets_and_credentials_never_reach_the_log() {
    let app = main_instance();
    let password = "log-canary-password-6c1e";
    let email = unique_email("canary");
    let r = app
        .req(Method::POST, "/api/auth/register")
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Failures that log on the server side: a wrong password, a bad token, a provider error.
    app.req(Method::POST, "/api/auth/login")
        .json(&json!({ "email": email, "password": format!("{password}-x") }))
        .send()
        .await
        .unwrap();
    app.req(Method::GET, "/api/apps")
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap();
    let log = std::fs::read_to_string(app.state.join("wrangler.log")).unwrap();
    for secret in [
        password,
        token.as_str(),
        crate::harness::JWT_SECRET,
        "google-secret",
        "github-secret",
    ] {
        assert!(!log.contains(secret), "the log contains a secret: {secret}");
    }
}
