//! Cross-cutting behaviour: health, unknown routes, security headers, CORS.

use crate::harness::{expect_error, main_instance};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn health_reports_storage_and_version() {
    let app = main_instance();
    let r = app.req(Method::GET, "/api/health").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["status"], "ok");
    for c in ["d1", "kv", "r2"] {
        assert_eq!(h["checks"][c]["ok"], true, "{c}");
    }
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let app = main_instance();
    expect_error(
        app.req(Method::GET, "/api/nope").send().await.unwrap(),
        404,
        "E002",
    )
    .await;
    expect_error(
        app.req(Method::GET, "/api/apps/x/y/z")
            .send()
            .await
            .unwrap(),
        404,
        "E002",
    )
    .await;
    let r = app.req(Method::PUT, "/api/apps").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    // The web app is served outside /api.
    let r = app.req(Method::GET, "/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let app = main_instance();
    for path in ["/api/health", "/api/nope", "/"] {
        let r = app.req(Method::GET, path).send().await.unwrap();
        let h = r.headers();
        // The spec's policy, tightened where the web app allows (no inline or evaluated
        // scripts), framing only the previews.
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
            ) && csp.contains("frame-ancestors 'none'")
                && csp.ends_with(
                    "; frame-src 'self' https://*.preview.localhost:* http://*.preview.localhost:*"
                ),
            "{path}: {csp}"
        );
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .starts_with("max-age="),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
}

#[tokio::test]
async fn cors_allows_only_configured_origins_and_never_wildcards() {
    let app = main_instance();
    let r = app
        .req(Method::GET, "/api/health")
        .header("Origin", "http://allowed.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://allowed.test"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let r = app
        .req(Method::GET, "/api/health")
        .header("Origin", "http://evil.test")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = app
        .req(Method::OPTIONS, "/api/apps")
        .header("Origin", "http://allowed.test")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type, x-csrf-token",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://allowed.test"
    );
    assert!(r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("X-CSRF-Token"));
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PATCH"));
}

#[tokio::test]
async fn bad_query_parameters_name_the_fields() {
    let app = main_instance();
    let u = app.user("query").await;
    let r = app
        .req(
            Method::GET,
            "/api/apps?page=0&limit=101&sort=size&visibility=everyone",
        )
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 400, "E004").await;
    for f in ["page", "limit", "sort", "visibility"] {
        assert!(e["error"]["fields"][f].is_string(), "{f}: {e}");
    }
    let r = app
        .call(Method::GET, "/api/apps?page=abc", &u.token, None)
        .await;
    expect_error(r, 400, "E004").await;
}

/// DNS rebinding: a page on another site whose name resolves to 127.0.0.1 reaches the port, but
/// its `Host` header still names that site. Only our own names are answered.
#[tokio::test]
async fn foreign_host_names_are_refused() {
    let app = main_instance();
    for host in ["evil.example", "evil.example:8787", "127.0.0.1.nip.io"] {
        for path in ["/api/health", "/api/auth/me", "/"] {
            let r = app
                .req(Method::GET, path)
                .header("Host", host)
                .send()
                .await
                .unwrap();
            let body = expect_error(r, 421, "E004").await;
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("host name"),
                "{host}{path}: {body}"
            );
        }
    }
    // The loopback names a developer's browser uses are served.
    for host in ["localhost", "127.0.0.1", "localhost:8787"] {
        let r = app
            .req(Method::GET, "/api/health")
            .header("Host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{host}");
    }
}
