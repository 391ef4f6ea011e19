//! Email + password accounts, sessions, logout, CSRF under cookie auth, admin level; verified
//! identities (verification links, resend, change of address, the allow- and admin lists) and
//! session cookie hardening.

use crate::harness::{
    expect_error, gated_instance, main_instance, set_cookies, tight_instance, unique_email,
    unique_email_at, Instance, ADMIN_DOMAIN, ALLOWED_DOMAIN, PASSWORD,
};
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
    let cookies: Vec<String> = set_cookies(&r);
    assert!(cookies.iter().any(|c| c.starts_with("byte_session=")
        && c.contains("HttpOnly")
        && c.contains("Secure")
        && c.contains("SameSite=Lax")));
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["user"]["email"], email,
        "email is normalized to lower case"
    );
    assert_eq!(body["user"]["emailVerified"], false);
    assert_eq!(body["verificationSent"], true);
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

    // ADMIN_EMAILS promotes a verified address (the harness lists a whole domain).
    let admin = app
        .register_verified(&unique_email_at("admin", ADMIN_DOMAIN))
        .await;
    let token = admin.token;
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

fn session_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().find_map(|c| {
        let c = c.to_str().ok()?;
        c.strip_prefix(&format!("{name}="))?
            .split(';')
            .next()
            .map(str::to_string)
            .filter(|v| !v.is_empty())
    })
}

async fn me(app: &Instance, token: &str) -> Value {
    let r = app.call(Method::GET, "/api/auth/me", token, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_verification_link_proves_the_address_once() {
    let app = main_instance();
    let u = app.user("verify").await;
    assert_eq!(me(app, &u.token).await["user"]["emailVerified"], false);
    let mails = app.outbox(&u.email).await;
    assert_eq!(mails.len(), 1, "one mail at sign-up: {mails:?}");
    assert_eq!(mails[0]["to"], u.email.as_str());
    let token = app.verification_token(&u.email).await;

    let r = app.use_link(&token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["emailVerified"], true);
    assert_eq!(me(app, &u.token).await["user"]["emailVerified"], true);

    // Single use.
    let e = expect_error(app.use_link(&token).await, 400, "E004").await;
    assert!(e["error"]["fields"]["token"].is_string(), "{e}");
    // Forgeries, junk and a session token are not verification tokens.
    for bad in [format!("{token}x"), "junk".to_string(), u.token.clone()] {
        let e = expect_error(app.use_link(&bad).await, 400, "E004").await;
        assert!(e["error"]["fields"]["token"].is_string(), "{e}");
    }
    let r = app
        .req(Method::POST, "/api/auth/verify")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "E004").await;
}

#[tokio::test]
async fn an_admin_address_gets_no_admin_role_until_verified() {
    let app = main_instance();
    let email = unique_email_at("squatter", ADMIN_DOMAIN);
    let u = app.register(&email).await;
    assert_eq!(me(app, &u.token).await["user"]["role"], "user");
    let r = app
        .call(Method::GET, "/api/admin/users", &u.token, None)
        .await;
    expect_error(r, 403, "E001").await;
    // Signing in again changes nothing while the address is unproved.
    let r = app.login(&email, PASSWORD).await;
    assert_eq!(r.json::<Value>().await.unwrap()["user"]["role"], "user");

    app.verify(&email).await;
    assert_eq!(me(app, &u.token).await["user"]["role"], "admin");
    let r = app
        .call(Method::GET, "/api/admin/users", &u.token, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn resending_replaces_the_link_and_is_limited_per_account() {
    let app = main_instance();
    let u = app.user("resend").await;
    let first = app.verification_token(&u.email).await;
    // Sign-up sent one mail; four more fit in the hour's five.
    for _ in 0..4 {
        let r = app
            .call(Method::POST, "/api/auth/verify/resend", &u.token, None)
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let r = app
        .call(Method::POST, "/api/auth/verify/resend", &u.token, None)
        .await;
    expect_error(r, 429, "E003").await;
    assert_eq!(app.outbox(&u.email).await.len(), 5);
    // Only the newest link works.
    expect_error(app.use_link(&first).await, 400, "E004").await;
    app.verify(&u.email).await;

    // A verified address needs no link (another account, with budget left).
    let v = app.verified_user("resend-done").await;
    let r = app
        .call(Method::POST, "/api/auth/verify/resend", &v.token, None)
        .await;
    expect_error(r, 400, "E004").await;
}

#[tokio::test]
async fn a_new_address_takes_effect_only_once_verified() {
    let app = main_instance();
    let u = app.verified_user("mover").await;
    let new = unique_email_at("mover", ADMIN_DOMAIN);
    let token = u.token.clone();
    let change = |body: Value| {
        let token = token.clone();
        async move {
            app.call(Method::POST, "/api/auth/email", &token, Some(&body))
                .await
        }
    };
    let e = expect_error(change(json!({ "email": new })).await, 400, "E004").await;
    assert!(e["error"]["fields"]["password"].is_string(), "{e}");
    expect_error(
        change(json!({ "email": new, "password": "wrong password" })).await,
        403,
        "E001",
    )
    .await;
    let e = expect_error(
        change(json!({ "email": "nope", "password": PASSWORD })).await,
        400,
        "E004",
    )
    .await;
    assert!(e["error"]["fields"]["email"].is_string(), "{e}");
    let r = change(json!({ "email": new, "password": PASSWORD })).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // Nothing changes until the link is used: not the address, not the role.
    let m = me(app, &u.token).await;
    assert_eq!(m["user"]["email"], u.email.as_str());
    assert_eq!(m["user"]["pendingEmail"], new.as_str());
    assert_eq!(m["user"]["role"], "user");
    expect_error(app.login(&new, PASSWORD).await, 401, "E001").await;

    app.verify(&new).await;
    let m = me(app, &u.token).await;
    assert_eq!(
        (
            &m["user"]["email"],
            &m["user"]["emailVerified"],
            &m["user"]["role"]
        ),
        (&json!(new), &json!(true), &json!("admin")),
        "{m}"
    );
    assert_eq!(m["user"]["pendingEmail"], Value::Null);
    assert_eq!(app.login(&new, PASSWORD).await.status(), StatusCode::OK);
    expect_error(app.login(&u.email, PASSWORD).await, 401, "E001").await;
}

#[tokio::test]
async fn duplicate_session_cookies_are_refused() {
    let app = main_instance();
    let u = app.user("dup").await;
    let get_me = |cookie: String| {
        app.req(Method::GET, "/api/auth/me")
            .header("Cookie", cookie)
            .send()
    };
    let one = get_me(format!("byte_session={}", u.token)).await.unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    // A planted copy next to the real one: neither is trusted.
    let other = app.user("dup-planted").await;
    for cookie in [
        format!("byte_session={}; byte_session={}", other.token, u.token),
        format!(
            "byte_session={}; theme=dark; byte_session={}",
            u.token, u.token
        ),
    ] {
        let e = expect_error(get_me(cookie).await.unwrap(), 401, "E001").await;
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("more than once"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn https_deployments_use_a_host_prefixed_cookie_and_no_outbox() {
    // The tight instance has an https PUBLIC_URL and MAIL_BACKEND unset (send_email, which
    // wrangler dev simulates).
    let app = tight_instance();
    let r = app
        .req(Method::GET, "/api/dev/outbox")
        .header("CF-Connecting-IP", "203.0.113.90")
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "E002").await;

    let r = app
        .req(Method::POST, "/api/auth/register")
        .header("CF-Connecting-IP", "203.0.113.90")
        .json(&json!({ "email": unique_email("host"), "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let session = session_cookie(&r, "__Host-byte_session").expect("a __Host- session cookie");
    assert!(session_cookie(&r, "byte_session").is_none());
    let set: Vec<String> = set_cookies(&r);
    assert!(set.iter().any(|c| c.starts_with("__Host-byte_session=")
        && c.contains("; Path=/;")
        && c.contains("Secure")
        && !c.contains("Domain")));
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["verificationSent"], true,
        "send_email (simulated) took the mail"
    );

    let with = |cookie: String| {
        app.req(Method::GET, "/api/auth/me")
            .header("Cookie", cookie)
            .send()
    };
    assert_eq!(
        with(format!("__Host-byte_session={session}"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // The plain name is not read on https.
    let r = with(format!("byte_session={session}")).await.unwrap();
    expect_error(r, 401, "E001").await;
}

#[tokio::test]
async fn the_allow_list_is_not_passed_while_unverified() {
    let app = gated_instance();
    let r = app
        .req(Method::POST, "/api/auth/register")
        .json(&json!({ "email": unique_email_at("out", "elsewhere.test"), "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    expect_error(r, 403, "E001").await;

    let email = unique_email_at("in", ALLOWED_DOMAIN);
    let u = app.register(&email).await;
    let r = app.call(Method::GET, "/api/apps", &u.token, None).await;
    let e = expect_error(r, 403, "E001").await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("verify"),
        "{e}"
    );
    // The account can still see itself (and verify).
    assert_eq!(me(app, &u.token).await["user"]["emailVerified"], false);
    app.verify(&email).await;
    let r = app.call(Method::GET, "/api/apps", &u.token, None).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn removal_from_admin_emails_demotes() {
    // An instance of its own: the test changes its configuration.
    let boss = unique_email("boss");
    let app = Instance::start(&[
        ("ADMIN_EMAILS", boss.clone()),
        ("MAIL_BACKEND", "outbox".into()),
    ]);
    let u = app.register_verified(&boss).await;
    let admin_users = |token: String| {
        let app = &app;
        async move {
            app.call(Method::GET, "/api/admin/users", &token, None)
                .await
        }
    };
    assert_eq!(admin_users(u.token.clone()).await.status(), StatusCode::OK);

    app.restart_with(&[("ADMIN_EMAILS", String::new())]);
    // At once, with the session the admin already had...
    expect_error(admin_users(u.token.clone()).await, 403, "E001").await;
    // ...and in the role the next sign-in records.
    let r = app.login(&boss, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["role"], "user");
    let token = body["token"].as_str().unwrap().to_string();
    expect_error(admin_users(token).await, 403, "E001").await;
}
