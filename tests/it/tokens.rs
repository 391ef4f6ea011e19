//! Every kind of bad token is a 401 E001: tampered, expired, revoked, wrong secret, `none` and
//! RS256 algorithms, malformed, wrong scheme.

use crate::harness::{expect_error, main_instance, JWT_SECRET};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use byte_platform::domain::token::{SessionClaims, TokenKeys};
use reqwest::Method;
use serde_json::json;

async fn assert_rejected(token: &str, why: &str) {
    let app = main_instance();
    let r = app
        .req(Method::GET, "/api/apps")
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 401, "E001").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid authentication token"),
        "{why}: {e}"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let app = main_instance();
    let u = app.user("tok").await;
    let parts: Vec<&str> = u.token.split('.').collect();
    let payload: serde_json::Value =
        serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();

    // Tampered payload: claim to be someone else, keep the signature.
    let mut forged = payload.clone();
    forged["userId"] = json!("usr_00000000000000000000000000000000");
    let forged_b64 = B64.encode(serde_json::to_vec(&forged).unwrap());
    assert_rejected(
        &format!("{}.{}.{}", parts[0], forged_b64, parts[2]),
        "tampered payload",
    )
    .await;
    // Tampered signature.
    let mut sig = B64.decode(parts[2]).unwrap();
    sig[0] ^= 1;
    assert_rejected(
        &format!("{}.{}.{}", parts[0], parts[1], B64.encode(sig)),
        "tampered signature",
    )
    .await;
    // alg: none, and an RS256 header over the same payload.
    for alg in ["none", "RS256"] {
        let h = B64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        assert_rejected(&format!("{h}.{}.", parts[1]), alg).await;
        assert_rejected(&format!("{h}.{}.{}", parts[1], parts[2]), alg).await;
    }
    // Signed with another secret.
    let claims = SessionClaims {
        user_id: u.id.clone().into(),
        email: u.email.clone(),
        display_name: "x".into(),
        provider: "email".into(),
        sid: payload["sid"].as_str().unwrap().into(),
    };
    let other = TokenKeys::new("some-other-secret-0123456789abcdefgh").unwrap();
    assert_rejected(&other.issue(claims.clone(), now_ms()), "wrong secret").await;
    // Correctly signed but expired (issued 31 days ago).
    let keys = TokenKeys::new(JWT_SECRET).unwrap();
    assert_rejected(
        &keys.issue(claims.clone(), now_ms() - 31 * 24 * 3600 * 1000),
        "expired",
    )
    .await;
    // Correctly signed, live, but for a session that was never opened.
    let mut unknown = claims.clone();
    unknown.sid = "ses_ffffffffffffffffffffffffffffffff".into();
    assert_rejected(&keys.issue(unknown, now_ms()), "unknown session").await;
    // Garbage.
    for t in ["", "abc", "a.b.c", &"x".repeat(5000)] {
        assert_rejected(t, "garbage").await;
    }
    // A fresh token for the real session still works: the checks above were about the tokens.
    let r = app
        .req(Method::GET, "/api/apps")
        .bearer_auth(keys.issue(claims, now_ms()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Wrong scheme.
    let r = app
        .req(Method::GET, "/api/apps")
        .header("Authorization", format!("Basic {}", u.token))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "E001").await;
    // No token at all.
    let r = app.req(Method::GET, "/api/apps").send().await.unwrap();
    expect_error(r, 401, "E001").await;
}
