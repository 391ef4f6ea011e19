//! Rate limits: exact under concurrency, per key, with the standard headers and Retry-After;
//! sign-in limits per client address whatever the token, and per account with backoff; the
//! preview limit; the WebSocket message size limit.

use crate::harness::{
    expect_error, join_statuses, main_instance, tight_instance, unique_email, Instance, User,
    TIGHT_API_LIMIT, TIGHT_AUTH_LIMIT, TIGHT_LOGIN_BACKOFF_SECONDS, TIGHT_LOGIN_FREE_FAILURES,
    TIGHT_PREVIEW_LIMIT,
};
use reqwest::{Method, Response};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

/// Registers a fresh user from client address `ip` (each test its own addresses, so the
/// per-address sign-in budget of one test is not another's).
async fn register_from(app: &Instance, ip: &str, tag: &str) -> User {
    let email = unique_email(tag);
    let r = app
        .req(Method::POST, "/api/auth/register")
        .header("CF-Connecting-IP", ip)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "register {email}");
    let body: Value = r.json().await.unwrap();
    User {
        id: body["user"]["id"].as_str().unwrap().to_string(),
        email,
        token: body["token"].as_str().unwrap().to_string(),
    }
}

async fn login_from(app: &Instance, ip: &str, email: &str, password: &str) -> Response {
    app.req(Method::POST, "/api/auth/login")
        .header("CF-Connecting-IP", ip)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

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
    let ok = count(&statuses, 200) as u64;
    let limited = count(&statuses, 429) as u64;
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
    // Each attempt names another account, so the per-account backoff plays no part.
    let statuses = join_statuses(m, |_| {
        app.req(Method::POST, "/api/auth/login")
            .header("CF-Connecting-IP", "203.0.113.7")
            .json(&serde_json::json!({"email": unique_email("nobody"), "password": "nope nope"}))
            .send()
    })
    .await;
    let limited = count(&statuses, 429);
    let answered = count(&statuses, 401);
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

#[tokio::test]
async fn sign_in_is_limited_per_address_whatever_bearer_token_comes_with_it() {
    let app = tight_instance();
    // Three throwaway accounts, registered from elsewhere.
    let mut tokens = Vec::new();
    for i in 0..3 {
        tokens.push(
            register_from(app, &format!("198.51.100.{}", 10 + i), "throwaway")
                .await
                .token,
        );
    }
    // Their tokens do not buy the address a budget each: exactly the limit passes.
    let extra = 4;
    let m = TIGHT_AUTH_LIMIT as usize + extra;
    let statuses = join_statuses(m, |i| {
        app.req(Method::POST, "/api/auth/login")
            .header("CF-Connecting-IP", "198.51.100.20")
            .bearer_auth(&tokens[i % tokens.len()])
            .json(&json!({"email": unique_email("nobody"), "password": "nope nope"}))
            .send()
    })
    .await;
    let limited = count(&statuses, 429);
    let answered = count(&statuses, 401);
    assert_eq!(
        (answered, limited),
        (TIGHT_AUTH_LIMIT as usize, extra),
        "{statuses:?}"
    );
    // Registration shares the address's budget.
    let r = app
        .req(Method::POST, "/api/auth/register")
        .header("CF-Connecting-IP", "198.51.100.20")
        .bearer_auth(&tokens[0])
        .json(&json!({"email": unique_email("late"), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    expect_error(r, 429, "E003").await;
    // A signed-in route of the auth class still counts per user: the token's owner is not
    // limited by that address's sign-in traffic.
    let r = app
        .req(Method::GET, "/api/auth/me")
        .header("CF-Connecting-IP", "198.51.100.20")
        .bearer_auth(&tokens[1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_from_every_address() {
    let app = tight_instance();
    let u = register_from(app, "198.51.100.30", "victim").await;
    // Each wrong password from another address: the per-address limit never applies.
    for i in 0..TIGHT_LOGIN_FREE_FAILURES {
        let r = login_from(
            app,
            &format!("198.51.100.{}", 31 + i),
            &u.email,
            "wrong password",
        )
        .await;
        expect_error(r, 401, "E001").await;
    }
    // Locked now: even the right password, from a fresh address, is refused without a check.
    let r = login_from(app, "198.51.100.40", &u.email, PASSWORD).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=TIGHT_LOGIN_BACKOFF_SECONDS).contains(&retry),
        "retry-after {retry}"
    );
    let e = expect_error(r, 429, "E003").await;
    let m = e["error"]["message"].as_str().unwrap();
    assert!(m.contains("too many failed sign-ins"), "{m}");
    // Another account is unaffected, from the same address.
    let other = register_from(app, "198.51.100.41", "bystander").await;
    let r = login_from(app, "198.51.100.40", &other.email, PASSWORD).await;
    assert_eq!(r.status(), 200);
    // A success clears the count: two failures, a success, two more failures stay 401s
    // (without the reset the fourth failure would be locked out).
    let fails = TIGHT_LOGIN_FREE_FAILURES - 1;
    for _ in 0..fails {
        let r = login_from(app, "198.51.100.42", &other.email, "wrong password").await;
        expect_error(r, 401, "E001").await;
    }
    let r = login_from(app, "198.51.100.43", &other.email, PASSWORD).await;
    assert_eq!(r.status(), 200);
    for _ in 0..fails {
        let r = login_from(app, "198.51.100.44", &other.email, "wrong password").await;
        expect_error(r, 401, "E001").await;
    }
}

#[tokio::test]
async fn a_preview_flood_from_one_address_gets_429s() {
    let app = tight_instance();
    // No such app: the limit applies before any lookup (each admitted request is a 404).
    let host = format!("{}.preview.localhost", "ab".repeat(16));
    let client = app.client_for_host(&host);
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let url = format!("http://{host}:{port}/");
    let extra = 3;
    let m = TIGHT_PREVIEW_LIMIT as usize + extra;
    let statuses = join_statuses(m, |_| {
        client
            .get(&url)
            .header("CF-Connecting-IP", "192.0.2.50")
            .send()
    })
    .await;
    let limited = count(&statuses, 429);
    let missing = count(&statuses, 404);
    assert_eq!(
        (missing, limited),
        (TIGHT_PREVIEW_LIMIT as usize, extra),
        "{statuses:?}"
    );
    let r = client
        .get(&url)
        .header("CF-Connecting-IP", "192.0.2.50")
        .send()
        .await
        .unwrap();
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&retry), "retry-after {retry}");
    let e = expect_error(r, 429, "E003").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("preview rate limit"),
        "{e}"
    );
    // Another address is unaffected.
    let r = client
        .get(&url)
        .header("CF-Connecting-IP", "192.0.2.51")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// The socket's next frame, within 30 s.
async fn next(ws: &mut WsStream) -> tokio_tungstenite::tungstenite::Message {
    use futures_util::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(30), ws.next())
        .await
        .expect("a message within 30 s")
        .expect("the socket is open")
        .expect("a frame")
}

#[tokio::test]
async fn an_oversized_websocket_message_is_refused_and_the_socket_closed() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message;
    let app = main_instance();
    let u = app.user("ws-big").await;
    let app_id = app.app(&u, "Big messages", "private").await;
    let addr = app.base.trim_start_matches("http://");
    let mut req = format!("ws://{addr}/api/agent/{app_id}/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", u.token).parse().unwrap(),
    );
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    let first = next(&mut ws).await;
    let Message::Text(t) = first else {
        panic!("{first:?}")
    };
    assert_eq!(serde_json::from_str::<Value>(&t).unwrap()["type"], "state");
    // A command just over the limit (64 KiB), well within what the runtime accepts.
    let big = json!({"type": "message", "text": "x".repeat(64 * 1024)}).to_string();
    ws.send(Message::Text(big.into())).await.unwrap();
    let reply = next(&mut ws).await;
    let Message::Text(t) = reply else {
        panic!("{reply:?}")
    };
    let ev: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(ev["type"], "error", "{ev}");
    assert_eq!(ev["code"], "E004", "{ev}");
    assert_eq!(ev["recoverable"], false, "{ev}");
    assert!(
        ev["message"]
            .as_str()
            .unwrap()
            .contains("exceeds the limit of 65536 bytes"),
        "{ev}"
    );
    let close = next(&mut ws).await;
    let Message::Close(Some(frame)) = close else {
        panic!("{close:?}")
    };
    assert_eq!(frame.code, CloseCode::Size);
}

/// How many of `statuses` are `status`.
fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}
