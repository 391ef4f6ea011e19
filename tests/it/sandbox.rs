//! Sandboxes through the Worker: create from a template, install, start, preview through the
//! preview hostname; live file changes; structured errors; command timeouts; path confinement;
//! isolation between users; the per-user quota.

use crate::harness::{
    create_ready, eventually, expect_error, sandbox_instance, set_cookies, Instance, User,
    SANDBOX_QUOTA,
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

/// Opens a preview URL like a browser: follows the token exchange, keeps the cookie.
pub struct Preview {
    client: Client,
    origin: String,
    cookie: String,
}

impl Preview {
    pub async fn open(app: &Instance, preview_url: &str) -> Preview {
        let url = url::Url::parse(preview_url).unwrap();
        let host = url.host_str().unwrap().to_string();
        let client = app.client_for_host(&host);
        let r = client.get(preview_url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND, "token exchange");
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        assert!(cookie.starts_with("byte_preview="));
        let origin = format!("{}://{}:{}", url.scheme(), host, url.port().unwrap());
        assert_eq!(
            r.headers()["location"].to_str().unwrap(),
            format!("{origin}/"),
            "token removed from the URL"
        );
        Preview {
            client,
            origin,
            cookie,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.origin))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

async fn write(
    app: &Instance,
    u: &User,
    app_id: &str,
    path: &str,
    content: &str,
) -> reqwest::Response {
    app.call(
        Method::POST,
        &format!("/api/apps/{app_id}/sandbox/files"),
        &u.token,
        Some(&json!({ "files": [{ "path": path, "content": content }] })),
    )
    .await
}

const APP_TSX: &str = r#"export default function App() {
  return <main className="p-8"><h1>MARKER-ONE</h1></main>;
}
"#;

#[tokio::test]
async fn sandbox_lifecycle_preview_changes_errors_and_isolation() {
    let app = sandbox_instance();
    let owner = app.user("sbx").await;
    let intruder = app.user("intruder").await;
    let app_id = app.app(&owner, "Preview me", "private").await;

    // Unknown template is a validation error; nothing starts.
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{app_id}/sandbox"),
            &owner.token,
            Some(&json!({"template": "cobol"})),
        )
        .await;
    let e = expect_error(r, 400, "E004").await;
    assert!(e["error"]["fields"]["template"]
        .as_str()
        .unwrap()
        .contains("react-vite"));

    let state = create_ready(app, &owner, &app_id).await;
    assert_eq!(state["template"], "react-vite");
    let preview_url = state["previewUrl"].as_str().unwrap().to_string();

    // The preview serves the template's page.
    let preview = Preview::open(app, &preview_url).await;
    let (status, html) = preview.get("/").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<div id=\"root\">") && html.contains("/src/main.tsx"),
        "{html}"
    );

    // Without the cookie, or with a forged one, a private preview does not exist.
    let bare = app.client_for_host(url::Url::parse(&preview_url).unwrap().host_str().unwrap());
    let r = bare
        .get(format!("{}/", preview.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = bare
        .get(format!("{}/", preview.origin))
        .header("Cookie", "byte_preview=9999999999.deadbeef")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Vite's HMR WebSocket works through the preview host.
    hmr_connects(app, &preview).await;

    // A changed file is served by the preview.
    assert_eq!(
        write(app, &owner, &app_id, "src/App.tsx", APP_TSX)
            .await
            .status(),
        StatusCode::OK
    );
    eventually(20, "the change in the preview", || async {
        preview.get("/src/App.tsx").await.1.contains("MARKER-ONE")
    })
    .await;

    // A syntax error comes back structured, with file and line.
    assert_eq!(
        write(
            app,
            &owner,
            &app_id,
            "src/App.tsx",
            "export default function App() {\n  return <main>\n}\n"
        )
        .await
        .status(),
        StatusCode::OK
    );
    let _ = preview.get("/src/App.tsx").await;
    let found = std::sync::Arc::new(std::sync::Mutex::new(Value::Null));
    eventually(30, "a structured error for src/App.tsx", || {
        let req = app
            .req(Method::GET, &format!("/api/apps/{app_id}/sandbox/errors"))
            .bearer_auth(&owner.token);
        let found = found.clone();
        async move {
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            match v["errors"]
                .as_array()
                .and_then(|es| es.iter().find(|e| e["file"] == "src/App.tsx"))
            {
                Some(e) => {
                    *found.lock().unwrap() = e.clone();
                    true
                }
                None => false,
            }
        }
    })
    .await;
    let found = found.lock().unwrap().clone();
    assert!(
        found["line"].as_u64().is_some_and(|l| (1..=4).contains(&l)),
        "{found}"
    );
    assert!(found["message"].as_str().is_some_and(|m| !m.is_empty()));

    // A command over its timeout is killed and reported.
    let r = app
        .req(Method::POST, &format!("/api/apps/{app_id}/sandbox/exec"))
        .bearer_auth(&owner.token)
        .json(&json!({ "command": "sleep 30; echo never", "timeoutMs": 500 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["timedOut"], true, "{out}");
    assert!(!out["stdout"].as_str().unwrap().contains("never"));

    // Traversal attempts are refused and nothing is written.
    for bad in [
        "../escape.txt",
        "/etc/passwd",
        "src/../../escape.txt",
        "a\0b",
    ] {
        let r = write(app, &owner, &app_id, bad, "x").await;
        expect_error(r, 400, "E004").await;
    }
    let tree: Value = app
        .call(
            Method::GET,
            &format!("/api/apps/{app_id}/sandbox/tree"),
            &owner.token,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        tree["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["path"].as_str().unwrap().contains("escape")),
        "{tree}"
    );

    // Another user reaches nothing: not the sandbox API, not the preview (even with the owner's
    // preview URL for another app's host).
    for (m, p) in [
        (Method::GET, ""),
        (Method::DELETE, ""),
        (Method::GET, "/errors"),
        (Method::GET, "/logs"),
        (Method::POST, "/exec"),
        // Admitted by the sandbox object itself; a malformed body is no different.
        (Method::POST, "/files"),
        (Method::GET, "/tree"),
    ] {
        let r = app
            .req(m, &format!("/api/apps/{app_id}/sandbox{p}"))
            .bearer_auth(&intruder.token)
            .json(&json!({"command": "id"}))
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "E002").await;
    }
    let other_app = app.app(&intruder, "Other", "private").await;
    let other_host = format!("{}.preview.localhost", other_app.trim_start_matches("app_"));
    let token = url::Url::parse(&preview_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "__byte_preview")
        .unwrap()
        .1
        .into_owned();
    let port = url::Url::parse(&preview_url).unwrap().port().unwrap();
    let r = app
        .client_for_host(&other_host)
        .get(format!(
            "http://{other_host}:{port}/?__byte_preview={token}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "a token opens only its own preview"
    );

    // The live log stream is Server-Sent Events, replaying history first.
    let r = app
        .req(
            Method::GET,
            &format!("/api/apps/{app_id}/sandbox/logs?since=0"),
        )
        .bearer_auth(&owner.token)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = r.bytes_stream();
    let mut seen = String::new();
    use futures_util::StreamExt;
    while !seen.contains("event: log") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("data: {"), "{seen}");
    drop(stream);

    // Logs are there for the owner.
    let logs: Value = app
        .call(
            Method::GET,
            &format!("/api/apps/{app_id}/sandbox/logs"),
            &owner.token,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(!logs["lines"].as_array().unwrap().is_empty());

    // A crashed dev server is reported, with its exit code, not silently restarted. (A command
    // cannot kill it: each run is jailed in its own pid namespace. A config that exits does:
    // Vite reloads its config when it changes.)
    let r = write(
        app,
        &owner,
        &app_id,
        "vite.config.ts",
        "process.exit(7)\nexport default {}\n",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    eventually(20, "the crash to be reported", || {
        let req = app
            .req(Method::GET, &format!("/api/apps/{app_id}/sandbox"))
            .bearer_auth(&owner.token);
        async move {
            let s: Value = req.send().await.unwrap().json().await.unwrap();
            s["status"] == "failed"
                && s["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("dev server exited"))
        }
    })
    .await;

    // Stop: the preview goes away.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/apps/{app_id}/sandbox"),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "stopped");
    let (status, _) = preview.get("/").await;
    assert_ne!(status, 200);
    // A stopped sandbox takes no writes until it is created again; nobody else learns it exists.
    let r = write(app, &owner, &app_id, "src/late.ts", "export {}\n").await;
    let e = expect_error(r, 409, "E006").await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("stopped"),
        "{e}"
    );
    let r = write(app, &intruder, &app_id, "src/late.ts", "export {}\n").await;
    expect_error(r, 404, "E002").await;
}

#[tokio::test]
async fn public_previews_need_no_token_and_quota_is_enforced() {
    let app = sandbox_instance();
    let u = app.user("quota-sbx").await;
    let public = app.app(&u, "Public one", "public").await;
    let state = create_ready(app, &u, &public).await;
    let url = url::Url::parse(state["previewUrl"].as_str().unwrap()).unwrap();
    let host = url.host_str().unwrap().to_string();
    let r = app
        .client_for_host(&host)
        .get(format!("http://{host}:{}/", url.port().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "public preview without token");

    // Fill the quota, then one more is refused with a clear error.
    let mut ids = vec![public];
    for i in 1..SANDBOX_QUOTA {
        let id = app.app(&u, &format!("extra {i}"), "private").await;
        let r = app
            .call(
                Method::POST,
                &format!("/api/apps/{id}/sandbox"),
                &u.token,
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        ids.push(id);
    }
    let over = app.app(&u, "one too many", "private").await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{over}/sandbox"),
            &u.token,
            None,
        )
        .await;
    let e = expect_error(r, 403, "E006").await;
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&format!("at most {SANDBOX_QUOTA}")));
    // Re-requesting an already active sandbox is not a new one.
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{}/sandbox", ids[0]),
            &u.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // Stopping one frees a slot.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/apps/{}/sandbox", ids[1]),
            &u.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{over}/sandbox"),
            &u.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for id in [&ids[0], &over] {
        app.call(
            Method::DELETE,
            &format!("/api/apps/{id}/sandbox"),
            &u.token,
            None,
        )
        .await;
    }
}

/// The react-vite template's `vite.config.ts` plus a plugin that makes the dev server a tiny
/// app with cookies: `/cookie-echo` answers with the `Cookie` and `Authorization` it received
/// and sets its own cookie, one named like the platform's session, and one for a parent domain.
const COOKIE_ECHO_VITE_CONFIG: &str = r#"import { defineConfig, type Plugin } from 'vite'
import react from '@vitejs/plugin-react'
import tailwindcss from '@tailwindcss/vite'

const cookieEcho: Plugin = {
  name: 'cookie-echo',
  configureServer(server) {
    server.middlewares.use('/cookie-echo', (req, res) => {
      res.setHeader('Set-Cookie', [
        'app_cookie=from-app; Path=/; SameSite=Lax',
        'byte_session=forged-by-the-app; Path=/',
        'tossed=1; Domain=preview.localhost; Path=/',
      ])
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify({
        cookie: req.headers.cookie ?? null,
        authorization: req.headers.authorization ?? null,
      }))
    })
  },
}

export default defineConfig({
  plugins: [react(), tailwindcss(), cookieEcho],
  server: {
    allowedHosts: true,
  },
})
"#;

/// The preview cookie policy end to end: a generated app in a real sandbox, reached through its
/// preview hostname, sees its own cookies and never the platform's (session, CSRF, preview
/// token) nor `Authorization`; its `Set-Cookie` comes back to the browser, except one naming a
/// platform cookie, and without a `Domain` attribute.
#[tokio::test]
async fn a_previewed_app_reads_and_sets_its_own_cookies() {
    let app = sandbox_instance();
    let owner = app.user("cookie-jar").await;
    let app_id = app.app(&owner, "Cookie jar", "private").await;
    let state = create_ready(app, &owner, &app_id).await;
    let preview = Preview::open(app, state["previewUrl"].as_str().unwrap()).await;

    assert_eq!(
        write(
            app,
            &owner,
            &app_id,
            "vite.config.ts",
            COOKIE_ECHO_VITE_CONFIG
        )
        .await
        .status(),
        StatusCode::OK
    );
    // What a browser holding the platform's cookies and the app's own would send.
    let echo = |app_cookie: &'static str| {
        let req = preview
            .client
            .get(format!("{}/cookie-echo", preview.origin))
            .header(
                "Cookie",
                format!(
                    "{}; {app_cookie}; byte_session={}; byte_csrf=csrf-token",
                    preview.cookie, owner.token
                ),
            )
            .header("Authorization", format!("Bearer {}", owner.token));
        async move {
            let r = req.send().await.unwrap();
            let json = r
                .headers()
                .get("content-type")
                .is_some_and(|c| c.to_str().unwrap().starts_with("application/json"));
            let cookies: Vec<String> = set_cookies(&r);
            let status = r.status();
            let body = r.text().await.unwrap();
            (status, json, cookies, body)
        }
    };

    // Vite restarts itself for the new config; until then `/cookie-echo` is the app's HTML.
    let found = std::sync::Arc::new(std::sync::Mutex::new(None));
    eventually(90, "the app's /cookie-echo through the preview", || {
        let pending = echo("app_cookie=hello");
        let found = found.clone();
        async move {
            let (status, json, cookies, body) = pending.await;
            if status == StatusCode::OK && json {
                *found.lock().unwrap() = Some((cookies, body));
                true
            } else {
                false
            }
        }
    })
    .await;
    let (cookies, body) = found.lock().unwrap().take().unwrap();
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        seen,
        json!({ "cookie": "app_cookie=hello", "authorization": null }),
        "the app sees its own cookie only"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c == "app_cookie=from-app; Path=/; SameSite=Lax"),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c == "tossed=1; Path=/"),
        "host-only: {cookies:?}"
    );
    assert!(
        !cookies
            .iter()
            .any(|c| c.to_ascii_lowercase().starts_with("byte_")),
        "an app never sets a platform cookie: {cookies:?}"
    );

    // The browser sends the app's cookie back; the app reads it.
    let (status, _, _, body) = echo("app_cookie=from-app").await;
    assert_eq!(status, StatusCode::OK);
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["cookie"], "app_cookie=from-app");

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/apps/{app_id}/sandbox"),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Opens Vite's HMR socket through the Worker and the sandbox object, as the browser client does.
async fn hmr_connects(app: &Instance, preview: &Preview) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let (_, client_js) = preview.get("/@vite/client").await;
    let token = regex::Regex::new(r#"wsToken\s*=\s*"([^"]+)""#)
        .unwrap()
        .captures(&client_js)
        .map(|c| c[1].to_string())
        .expect("Vite client carries its ws token");
    let url = url::Url::parse(&preview.origin).unwrap();
    let host = url.host_str().unwrap();
    let mut req = format!("ws://{host}:{}/?token={token}", url.port().unwrap())
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "vite-hmr".parse().unwrap());
    req.headers_mut()
        .insert("Cookie", preview.cookie.parse().unwrap());
    req.headers_mut()
        .insert("Origin", preview.origin.parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tcp)
        .await
        .expect("HMR upgrade through the Worker");
    assert_eq!(resp.status().as_u16(), 101);
    use futures_util::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("a message")
        .unwrap()
        .unwrap();
    match first {
        Message::Text(t) => assert!(t.contains("connected"), "{t}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn an_idle_sandbox_is_stopped_by_its_alarm() {
    let app = crate::harness::idle_instance();
    let u = app.user("idle").await;
    let id = app.app(&u, "Idle", "private").await;
    create_ready(app, &u, &id).await;
    // No activity from here on; status reads do not count as activity.
    eventually(crate::harness::IDLE_SECONDS + 30, "the idle stop", || {
        let req = app
            .req(Method::GET, &format!("/api/apps/{id}/sandbox"))
            .bearer_auth(&u.token);
        async move {
            let s: Value = req.send().await.unwrap().json().await.unwrap();
            s["status"] == "stopped" && s["reason"].as_str().is_some_and(|r| r.contains("idle"))
        }
    })
    .await;
}
