//! Preview proxy: forwards a request to the workspace's dev server on 127.0.0.1, streaming
//! bodies both ways, and tunnels WebSocket upgrades (Vite HMR, subprotocol `vite-hmr`).
//!
//! The platform's credentials never reach the app: `Authorization` and `Cookie` are
//! stripped, as are hop-by-hop headers. WebSocket upgrades are forwarded as an HTTP/1.1
//! upgrade to the dev server; its `101` (with the subprotocol it accepted and the
//! `Sec-WebSocket-Accept` computed from the client's own key) goes back to the client, then
//! bytes are copied both ways, so frames pass through untouched.

use std::time::Duration;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, StatusCode, Uri};
use axum::response::IntoResponse;
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

/// Request headers the app must never see.
const PRIVATE: &[&str] = &["authorization", "cookie"];

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

/// The request headers sent upstream: end-to-end headers minus credentials, `Host` set to
/// the dev server (Vite only answers hosts it allows; loopback IPs always are), and the
/// original host kept in `X-Forwarded-Host`.
fn upstream_headers(original: &HeaderMap, port: u16) -> HeaderMap {
    let mut headers = end_to_end(original, &[PRIVATE[0], PRIVATE[1], "host"]);
    if let Some(host) = original.get(header::HOST) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    if let Ok(host) = HeaderValue::from_str(&format!("127.0.0.1:{port}")) {
        headers.insert(header::HOST, host);
    }
    headers
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
    *out.headers_mut() = end_to_end(&parts.headers, &[]);
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
        *out.headers_mut() = end_to_end(&parts.headers, &[]);
        return Ok(out);
    }

    let upstream_upgrade = hyper::upgrade::on(&mut response);
    let mut out = Response::new(Body::empty());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in response.headers() {
        out.headers_mut().append(name.clone(), value.clone());
    }
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
        h.insert("cookie", "session=1".parse().unwrap());
        h.insert("host", "app.preview.localhost:8787".parse().unwrap());
        h.insert("connection", "keep-alive, x-custom-hop".parse().unwrap());
        h.insert("x-custom-hop", "1".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("accept", "text/html".parse().unwrap());
        h.append("x-multi", "a".parse().unwrap());
        h.append("x-multi", "b".parse().unwrap());
        let out = upstream_headers(&h, 41000);
        assert!(out.get("authorization").is_none());
        assert!(out.get("cookie").is_none());
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
    fn upgrade_detection() {
        let mut h = HeaderMap::new();
        h.insert("upgrade", "websocket".parse().unwrap());
        assert!(!is_upgrade(&h));
        h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        assert!(is_upgrade(&h));
    }
}
