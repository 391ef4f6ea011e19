//! Rate limits: exact under concurrency, per key, with the standard headers and Retry-After.

use crate::harness::{
    expect_error, join_statuses, tight_instance, TIGHT_API_LIMIT, TIGHT_AUTH_LIMIT,
};
use reqwest::Method;

#[tokio::test]
async fn exactly_n_of_m_simultaneous_requests_pass() {
    let app = tight_instance();
    let u = app.user("rl").await;
    let m = 30;
    let statuses = join_statuses(m, |_| {
        app.req(Method::GET, "/api/apps")
            .bearer_auth(&u.token)
            .send()
    })
    .await;
    let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
    let limited = statuses.iter().filter(|s| **s == 429).count() as u64;
    assert_eq!(
        (ok, limited),
        (TIGHT_API_LIMIT, m as u64 - TIGHT_API_LIMIT),
        "{statuses:?}"
    );

    let r = app.call(Method::GET, "/api/apps", &u.token, None).await;
    let h = r.headers().clone();
    assert_eq!(h["x-ratelimit-limit"], TIGHT_API_LIMIT.to_string().as_str());
    assert_eq!(h["x-ratelimit-remaining"], "0");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry), "retry-after {retry}");
    let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        reset >= now && reset <= now + 121,
        "reset {reset} vs now {now}"
    );
    let e = expect_error(r, 429, "E003").await;
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("rate limit"));

    // Another user has a budget of their own.
    let other = app.user("rl2").await;
    let r = app.call(Method::GET, "/api/apps", &other.token, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-ratelimit-remaining"],
        (TIGHT_API_LIMIT - 1).to_string().as_str()
    );
}

#[tokio::test]
async fn anonymous_auth_requests_are_limited_per_client_address() {
    let app = tight_instance();
    let m = TIGHT_AUTH_LIMIT as usize + 10;
    let statuses = join_statuses(m, |_| {
        app.req(Method::POST, "/api/auth/login")
            .header("CF-Connecting-IP", "203.0.113.7")
            .json(&serde_json::json!({"email": "a@b.co", "password": "nope nope"}))
            .send()
    })
    .await;
    let limited = statuses.iter().filter(|s| **s == 429).count();
    let answered = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(
        (answered, limited),
        (TIGHT_AUTH_LIMIT as usize, 10),
        "{statuses:?}"
    );
    // A different address is unaffected.
    let r = app
        .req(Method::GET, "/api/auth/providers")
        .header("CF-Connecting-IP", "203.0.113.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
