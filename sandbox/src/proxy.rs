//! Preview proxy: forwards a request to the workspace's dev server on 127.0.0.1, streaming
//! bodies both ways, and tunnels WebSocket upgrades (Vite HMR, subprotocol `vite-hmr`).
//!
//! Cookies follow the platform's one preview cookie policy ([`byte_protocol::preview`], which
//! the Worker applies too): the app receives its own cookies, never the platform's cookies nor
//! `Authorization`; the app's `Set-Cookie` headers come back, except those naming a platform
//! cookie, and without a `Domain` attribute (host-only). A `Cookie` or `Set-Cookie` value that
//! is not UTF-8 cannot be judged and is dropped. Hop-by-hop headers are dropped both ways.
//! WebSocket upgrades are forwarded as an HTTP/1.1
//! upgrade to the dev server; its `101` (with the subprotocol it accepted and the
//! `Sec-WebSocket-Accept` computed from the client's own key) goes back to the client, then
//! bytes are copied both ways, so frames pass through untouched.

use std::borrow::Cow;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, StatusCode, Uri};
use axum::response::IntoResponse;
use byte_protocol::preview;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;

use crate::api_error::ApiError;

pub type HttpClient = Client<HttpConnector, Body>;

pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// Copies `from` minus hop-by-hop headers (and those the `Connection` header names).
fn end_to_end(from: &HeaderMap, also_drop: &[&str]) -> HeaderMap {
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || also_drop.contains(&n) || named.iter().any(|x| x == n) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The request headers sent upstream: end-to-end headers minus the withheld credentials,
/// `Cookie` reduced to the app's own cookies (one header), `Host` set to the dev server (Vite
/// only answers hosts it allows; loopback IPs always are), and the original host kept in
/// `X-Forwarded-Host`.
fn upstream_headers(original: &HeaderMap, port: u16) -> HeaderMap {
    let mut drop = vec!["cookie", "host"];
    drop.extend(preview::WITHHELD_REQUEST_HEADERS);
    let mut headers = end_to_end(original, &drop);
    if let Some(cookies) = app_cookies(original) {
        headers.insert(header::COOKIE, cookies);
    }
    if let Some(host) = original.get(header::HOST) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    if let Ok(host) = HeaderValue::from_str(&format!("127.0.0.1:{port}")) {
        headers.insert(header::HOST, host);
    }
    headers
}

/// The app's own cookies from every `Cookie` header of a request, joined into one.
fn app_cookies(original: &HeaderMap) -> Option<HeaderValue> {
    let kept: Vec<String> = original
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        .filter_map(preview::app_cookies)
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_bytes(kept.join("; ").as_bytes()).ok()
}

/// Appends to `out` the `Set-Cookie` headers of `from` that the policy lets through.
fn append_app_set_cookies(from: &HeaderMap, out: &mut HeaderMap) {
    for value in from.get_all(header::SET_COOKIE) {
        let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
            continue;
        };
        let kept = match preview::app_set_cookie(text) {
            Some(Cow::Borrowed(_)) => value.clone(),
            Some(Cow::Owned(changed)) => match HeaderValue::from_bytes(changed.as_bytes()) {
                Ok(v) => v,
                Err(_) => continue,
            },
            None => continue,
        };
        out.append(header::SET_COOKIE, kept);
    }
}

/// The response headers sent back: end-to-end headers, with the app's `Set-Cookie` headers
/// filtered by the preview cookie policy.
fn downstream_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = end_to_end(upstream, &["set-cookie"]);
    append_app_set_cookies(upstream, &mut out);
    out
}

fn upstream_uri(port: u16, path_and_query: &str) -> Result<Uri, ApiError> {
    format!("http://127.0.0.1:{port}{path_and_query}")
        .parse()
        .map_err(|_| ApiError::validation("the preview path is not a valid URI"))
}

/// Forwards `req` to `http://127.0.0.1:{port}{path_and_query}`.
pub async fn forward(
    client: &HttpClient,
    port: u16,
    path_and_query: &str,
    req: Request<Body>,
    shutdown: watch::Receiver<bool>,
) -> Response<Body> {
    let result = if is_upgrade(req.headers()) {
        forward_upgrade(port, path_and_query, req, shutdown).await
    } else {
        forward_http(client, port, path_and_query, req).await
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn forward_http(
    client: &HttpClient,
    port: u16,
    path_and_query: &str,
    req: Request<Body>,
) -> Result<Response<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let mut upstream = Request::new(body);
    *upstream.method_mut() = parts.method;
    *upstream.uri_mut() = upstream_uri(port, path_and_query)?;
    *upstream.headers_mut() = upstream_headers(&parts.headers, port);
    let response = client.request(upstream).await.map_err(|e| {
        tracing::debug!(error = %e, port, "preview upstream failed");
        bad_gateway()
    })?;
    let (parts, body) = response.into_parts();
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    *out.headers_mut() = downstream_headers(&parts.headers);
    Ok(out)
}

fn bad_gateway() -> ApiError {
    let mut e = ApiError::unavailable("the dev server did not answer");
    e.status = StatusCode::BAD_GATEWAY;
    e
}

async fn forward_upgrade(
    port: u16,
    path_and_query: &str,
    mut req: Request<Body>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let client_upgrade = hyper::upgrade::on(&mut req);
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|_| bad_gateway())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|_| bad_gateway())?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "preview websocket upstream connection ended");
        }
    });

    let mut headers = upstream_headers(req.headers(), port);
    // `end_to_end` dropped these; an upgrade needs them.
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(upgrade) = req.headers().get(header::UPGRADE) {
        headers.insert(header::UPGRADE, upgrade.clone());
    }
    let mut upstream = Request::new(Empty::<Bytes>::new());
    *upstream.method_mut() = req.method().clone();
    *upstream.uri_mut() = path_and_query
        .parse()
        .map_err(|_| ApiError::validation("the preview path is not a valid URI"))?;
    *upstream.headers_mut() = headers;
    let mut response = sender
        .send_request(upstream)
        .await
        .map_err(|_| bad_gateway())?;

    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Refused (e.g. a bad token): pass the answer on as is.
        let (parts, body) = response.into_parts();
        let mut out = Response::new(Body::new(body));
        *out.status_mut() = parts.status;
        *out.headers_mut() = downstream_headers(&parts.headers);
        return Ok(out);
    }

    let upstream_upgrade = hyper::upgrade::on(&mut response);
    let mut out = Response::new(Body::empty());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in response.headers() {
        if name != header::SET_COOKIE {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    append_app_set_cookies(response.headers(), out.headers_mut());
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "preview websocket upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer secret".parse().unwrap());
        h.insert("proxy-authorization", "Basic eA==".parse().unwrap());
        h.insert("cookie", "byte_session=1; byte_preview=p".parse().unwrap());
        h.insert("host", "app.preview.localhost:8787".parse().unwrap());
        h.insert("connection", "keep-alive, x-custom-hop".parse().unwrap());
        h.insert("x-custom-hop", "1".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("accept", "text/html".parse().unwrap());
        h.append("x-multi", "a".parse().unwrap());
        h.append("x-multi", "b".parse().unwrap());
        let out = upstream_headers(&h, 41000);
        assert!(out.get("authorization").is_none());
        assert!(out.get("proxy-authorization").is_none());
        assert!(
            out.get("cookie").is_none(),
            "only platform cookies: none left"
        );
        assert!(out.get("connection").is_none());
        assert!(out.get("x-custom-hop").is_none());
        assert!(out.get("transfer-encoding").is_none());
        assert_eq!(out.get("host").unwrap(), "127.0.0.1:41000");
        assert_eq!(
            out.get("x-forwarded-host").unwrap(),
            "app.preview.localhost:8787"
        );
        assert_eq!(out.get("accept").unwrap(), "text/html");
        assert_eq!(out.get_all("x-multi").iter().count(), 2);
    }

    #[test]
    fn the_app_gets_its_own_cookies_in_one_header() {
        let mut h = HeaderMap::new();
        h.append(
            "cookie",
            "theme=dark; byte_session=s; byte_csrf=c".parse().unwrap(),
        );
        h.append("cookie", "byte_preview=p; cart=3".parse().unwrap());
        h.append(
            "cookie",
            HeaderValue::from_bytes(b"bad=\xff; byte_session=s").unwrap(),
        );
        h.append(
            "cookie",
            HeaderValue::from_bytes("name=caf\u{e9}".as_bytes()).unwrap(),
        );
        let out = upstream_headers(&h, 41000);
        assert_eq!(out.get_all("cookie").iter().count(), 1);
        assert_eq!(
            out.get("cookie").unwrap().as_bytes(),
            "theme=dark; cart=3; name=caf\u{e9}".as_bytes(),
            "non-UTF-8 headers are dropped, UTF-8 ones kept byte for byte"
        );
    }

    #[test]
    fn the_apps_set_cookie_comes_back_minus_platform_cookies() {
        let mut h = HeaderMap::new();
        h.append("set-cookie", "app_cookie=1; Path=/".parse().unwrap());
        h.append("set-cookie", "byte_session=forged; Path=/".parse().unwrap());
        h.append(
            "set-cookie",
            "tossed=1; Domain=preview.localhost; Path=/"
                .parse()
                .unwrap(),
        );
        h.append("connection", "close".parse().unwrap());
        h.append("content-type", "text/plain".parse().unwrap());
        let out = downstream_headers(&h);
        let cookies: Vec<&str> = out
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(cookies, ["app_cookie=1; Path=/", "tossed=1; Path=/"]);
        assert!(out.get("connection").is_none());
        assert_eq!(out.get("content-type").unwrap(), "text/plain");
    }

    /// A dev server that answers with the `Cookie` and `Authorization` it received and sets
    /// three cookies: its own, a platform one, and one for a parent domain.
    async fn cookie_echo_server() -> u16 {
        use axum::routing::get;
        let app = axum::Router::new().route(
            "/cookie-echo",
            get(|headers: HeaderMap| async move {
                let seen = |name: &str| {
                    headers
                        .get(name)
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_else(|| "-".into())
                };
                let body = format!(
                    "cookie={} authorization={}",
                    seen("cookie"),
                    seen("authorization")
                );
                let mut out = Response::new(Body::from(body));
                for c in [
                    "app_cookie=from-app; Path=/; HttpOnly",
                    "byte_session=forged; Path=/",
                    "tossed=1; Domain=preview.localhost; Path=/",
                ] {
                    out.headers_mut()
                        .append(header::SET_COOKIE, HeaderValue::from_static(c));
                }
                out
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    #[tokio::test]
    async fn a_proxied_request_carries_the_apps_cookie_and_its_set_cookie_comes_back() {
        let port = cookie_echo_server().await;
        let req = Request::builder()
            .uri("/v1/workspaces/w/preview/cookie-echo?x=1")
            .header("host", "abc.preview.localhost:8787")
            .header("authorization", "Bearer agent-secret")
            .header(
                "cookie",
                "app_cookie=hello; byte_session=stolen; byte_preview=p",
            )
            .body(Body::empty())
            .unwrap();
        let (_stop, shutdown) = watch::channel(false);
        let resp = forward(&client(), port, "/cookie-echo?x=1", req, shutdown).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let cookies: Vec<String> = resp
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            cookies,
            ["app_cookie=from-app; Path=/; HttpOnly", "tossed=1; Path=/"]
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "cookie=app_cookie=hello authorization=-"
        );
    }

    #[test]
    fn upgrade_detection() {
        let mut h = HeaderMap::new();
        h.insert("upgrade", "websocket".parse().unwrap());
        assert!(!is_upgrade(&h));
        h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        assert!(is_upgrade(&h));
    }
}
