//! Integration tests: start the real `byte-sandbox` binary on an ephemeral port with a fresh
//! `SANDBOX_ROOT` and this repository's `templates/`, and drive its HTTP API as the Worker
//! would. The `slow_*` tests install the templates' npm dependencies (from the npm cache when
//! warm) and run real Vite dev servers and builds; they are part of the normal suite.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mod common;
use common::host_pids_running;

const SECRET: &str = "test-secret-0123456789";

struct TestApp {
    child: Child,
    base: String,
    http: reqwest::Client,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

static PORT_BLOCK: AtomicU16 = AtomicU16::new(0);

fn shared_deps_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("byte-sandbox-deps");
    std::fs::create_dir_all(&dir).unwrap();
    // The jail's uid must reach the stores' staging directories.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

impl TestApp {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The jail's uid (the agent runs it as another uid when it is root) must reach the root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("workspaces");
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
        // Separate dev-server port ranges per agent, so parallel tests never race for one.
        let block = PORT_BLOCK.fetch_add(1, Ordering::SeqCst);
        let lo = 22000 + (std::process::id() % 40) as u16 * 200 + block * 20;
        let range = format!("{lo}-{}", lo + 19);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_byte-sandbox"));
        cmd.env("SANDBOX_SECRET", SECRET)
            .env("SANDBOX_LISTEN", "127.0.0.1:0")
            .env("SANDBOX_ROOT", &root)
            .env("SANDBOX_TEMPLATES_DIR", &templates)
            // Every agent of the run shares the templates' prepared dependencies (installed
            // by the first workspace that needs them; kept for the next run).
            .env("SANDBOX_DEPS_DIR", shared_deps_dir())
            .env("SANDBOX_PREPARE_DEPS", "0")
            .env("SANDBOX_PORT_RANGE", &range)
            .env("SANDBOX_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start byte-sandbox");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("listening line")
            .to_string();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "unexpected first line: {line:?}"
        );
        TestApp {
            child,
            base,
            http: reqwest::Client::new(),
            root,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(SECRET)
            .timeout(Duration::from_secs(600));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn preview(&self, ws: &str, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(self.url(&format!("/v1/workspaces/{ws}/preview{path}")))
            .bearer_auth(SECRET)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    /// Graceful stop, as the container runtime does it.
    fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn health_auth_and_routing() {
    let app = TestApp::start();
    let resp = reqwest::get(app.url("/health")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["workspaces"], 0);

    for auth in [
        None,
        Some("Bearer wrong"),
        Some(SECRET),
        Some("Basic dGVzdA=="),
    ] {
        let mut req = app.http.get(app.url("/v1/version"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{auth:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "E001");
    }
    // Unknown routes are not revealed without the secret either.
    assert_eq!(
        app.http
            .get(app.url("/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let (s, b) = app.get("/v1/version").await;
    assert_eq!(
        (s, b["version"].as_str()),
        (StatusCode::OK, Some(env!("CARGO_PKG_VERSION")))
    );
    let (s, b) = app.get("/v1/nope").await;
    assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "E002"));
    let (s, b) = app.get("/v1/workspaces/Bad_Id/tree").await;
    assert_eq!((s, error_code(&b)), (StatusCode::BAD_REQUEST, "E004"));
    let (s, b) = app.get("/v1/workspaces/missing/tree").await;
    assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "E002"));
    let (s, b) = app
        .put(
            "/v1/workspaces/w1",
            json!({ "template": "no-such-template" }),
        )
        .await;
    assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "E002"));
    let (s, b) = app.call(Method::PATCH, "/v1/workspaces/w1", None).await;
    assert_eq!((s.as_u16(), error_code(&b)), (405, "E004"));
    let (s, b) = app.put("/v1/workspaces/w1", json!({})).await;
    assert_eq!(
        (s, b),
        (StatusCode::OK, json!({ "id": "w1", "created": true }))
    );
    let (s, b) = app.put("/v1/workspaces/w1", json!({})).await;
    assert_eq!((s, b["created"].clone()), (StatusCode::OK, json!(false)));
    // Bad JSON is a 400, never a 500.
    let resp = app
        .http
        .post(app.url("/v1/workspaces/w1/files"))
        .bearer_auth(SECRET)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (s, b) = app
        .post("/v1/workspaces/w1/files", json!({ "files": "nope" }))
        .await;
    assert_eq!((s, error_code(&b)), (StatusCode::BAD_REQUEST, "E004"));
    let (s, b) = app.post("/v1/workspaces/w1/exec", json!({})).await;
    assert_eq!((s, error_code(&b)), (StatusCode::BAD_REQUEST, "E004"));
    let (s, b) = app.get("/v1/workspaces/w1/logs?since=abc").await;
    assert_eq!((s, error_code(&b)), (StatusCode::BAD_REQUEST, "E004"));
    // Over the 10 MiB body limit.
    let big = "x".repeat(11 * 1024 * 1024);
    let (s, b) = app
        .post(
            "/v1/workspaces/w1/files",
            json!({ "files": [{ "path": "big.txt", "content": big }] }),
        )
        .await;
    assert_eq!((s.as_u16(), error_code(&b)), (413, "E004"));
    // Preview without a dev server.
    let (s, _) = app.preview("w1", "/").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);

    let (s, _) = app.call(Method::DELETE, "/v1/workspaces/w1", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(!app.root.join("w1").exists());
    let (s, b) = app.call(Method::DELETE, "/v1/workspaces/w1", None).await;
    assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "E002"));
}

#[tokio::test]
async fn files_and_traversal_attempts() {
    let app = TestApp::start();
    app.put("/v1/workspaces/files-ws", json!({})).await;
    let base = "/v1/workspaces/files-ws";
    let (s, b) = app
        .post(
            &format!("{base}/files"),
            json!({ "files": [
                { "path": "src/App.tsx", "content": "export default 1\n" },
                { "path": "public/logo.bin", "content": "AAEC/w==", "encoding": "base64" },
            ]}),
        )
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::OK,
            json!({ "written": ["src/App.tsx", "public/logo.bin"] })
        )
    );
    let (s, b) = app.get(&format!("{base}/files?path=src/App.tsx")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        json!({ "path": "src/App.tsx", "content": "export default 1\n", "encoding": "utf8", "size": 17 })
    );
    let (_, b) = app.get(&format!("{base}/files?path=public/logo.bin")).await;
    assert_eq!(
        (
            b["encoding"].as_str(),
            b["content"].as_str(),
            b["size"].as_u64()
        ),
        (Some("base64"), Some("AAEC/w=="), Some(4))
    );
    let (_, b) = app.get(&format!("{base}/tree")).await;
    assert_eq!(
        b["files"],
        json!([{ "path": "public/logo.bin", "size": 4 }, { "path": "src/App.tsx", "size": 17 }])
    );

    // A directory outside the workspace, and a symlink to it planted inside.
    let outside = app.root.parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, app.root.join("files-ws/escape")).unwrap();

    let attempts = [
        "../evil.txt",
        "../../evil.txt",
        "src/../../evil.txt",
        "/etc/evil.txt",
        "/tmp/evil.txt",
        "..\\evil.txt",
        "src\\..\\..\\evil.txt",
        "C:/evil.txt",
        "c:evil.txt",
        "evil\u{0}.txt",
        "escape/evil.txt",
        "escape/deeper/evil.txt",
        "",
        "..",
    ];
    let long = "a/".repeat(300) + "x";
    for bad in attempts.iter().copied().chain([long.as_str()]) {
        let (s, b) = app
            .post(
                &format!("{base}/files"),
                json!({ "files": [{ "path": "ok-first.txt", "content": "fine" }, { "path": bad, "content": "evil" }] }),
            )
            .await;
        assert_eq!(
            (s, error_code(&b)),
            (StatusCode::BAD_REQUEST, "E004"),
            "{bad:?}: {b}"
        );
        assert!(
            b["error"]["fields"]["files[1].path"].is_string(),
            "{bad:?}: {b}"
        );
        let message = b["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains(outside.to_str().unwrap()),
            "host path leaked: {message}"
        );
    }
    for bad in ["../evil.txt", "escape/anything.txt", "/etc/passwd", ""] {
        let (s, b) = app
            .get(&format!("{base}/files?path={}", urlencode(bad)))
            .await;
        assert_eq!(
            (s, error_code(&b)),
            (StatusCode::BAD_REQUEST, "E004"),
            "read {bad:?}"
        );
        let (s, _) = app
            .call(
                Method::DELETE,
                &format!("{base}/files?path={}", urlencode(bad)),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "delete {bad:?}");
    }
    // Nothing was written anywhere.
    assert!(!app.root.join("files-ws/ok-first.txt").exists());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(
        !app.root.join("evil.txt").exists()
            && !app.root.parent().unwrap().join("evil.txt").exists()
    );

    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("{base}/files?path=src/App.tsx"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app
        .call(
            Method::DELETE,
            &format!("{base}/files?path=src/App.tsx"),
            None,
        )
        .await;
    assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "E002"));
    let (s, b) = app.get(&format!("{base}/files?path=src/App.tsx")).await;
    assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "E002"));
    let (s, b) = app.get("/v1/workspaces/%FF/tree").await;
    assert_eq!((s, error_code(&b)), (StatusCode::BAD_REQUEST, "E004"));

    // Deleting the workspace ends its live log streams.
    let stream = app
        .http
        .get(app.url(&format!("{base}/logs/stream?since=0")))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    let mut events = stream.bytes_stream();
    let (s, _) = app.call(Method::DELETE, base, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = events.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "log stream still open after the workspace was deleted"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn exec_timeout_caps_and_logs() {
    let mut app = TestApp::start_with(&[("SANDBOX_OUTPUT_CAP_BYTES", "1000")]);
    app.put("/v1/workspaces/cmd", json!({})).await;
    let base = "/v1/workspaces/cmd";

    // Live log stream, subscribed before the commands run.
    let stream = app
        .http
        .get(app.url(&format!("{base}/logs/stream")))
        .bearer_auth(SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut events = stream.bytes_stream();

    let (s, b) = app
        .post(&format!("{base}/exec"), json!({ "command": "echo hello $NAME; echo warn >&2; exit 4", "env": { "NAME": "byte" } }))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            b["exitCode"].as_i64(),
            b["stdout"].as_str(),
            b["stderr"].as_str(),
            b["timedOut"].as_bool()
        ),
        (Some(4), Some("hello byte\n"), Some("warn\n"), Some(false))
    );
    assert!(b["durationMs"].is_u64());

    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("hello byte") && Instant::now() < deadline {
        if let Ok(Some(Ok(chunk))) =
            tokio::time::timeout(Duration::from_secs(5), events.next()).await
        {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(seen.contains("event: log"), "{seen}");
    assert!(
        seen.contains(r#""line":"hello byte""#) && seen.contains(r#""source":"exec""#),
        "{seen}"
    );

    // The secret is not visible to commands.
    let (_, b) = app
        .post(
            &format!("{base}/exec"),
            json!({ "command": "echo \"[${SANDBOX_SECRET:-}]\"" }),
        )
        .await;
    assert_eq!(b["stdout"], "[]\n");

    // Output cap.
    let (_, b) = app
        .post(&format!("{base}/exec"), json!({ "command": "seq 1 400" }))
        .await;
    assert_eq!(
        (
            b["stdout"].as_str().unwrap().len(),
            b["stdoutTruncated"].as_bool()
        ),
        (1000, Some(true))
    );
    assert_eq!(b["exitCode"], 0);

    // Timeout kills the process tree.
    let started = Instant::now();
    let (s, b) = app
        .post(
            &format!("{base}/exec"),
            json!({ "command": "sleep 30.0701 & echo started; sleep 30", "timeoutMs": 700 }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (b["timedOut"].as_bool(), b["exitCode"].clone()),
        (Some(true), Value::Null),
        "{b}"
    );
    assert_eq!(b["stdout"], "started\n");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Pids inside the jail are its own namespace's: find the child by its command line.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !host_pids_running("30.0701").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        host_pids_running("30.0701").is_empty(),
        "background child survived the timeout"
    );

    let (_, b) = app.get(&format!("{base}/logs?since=0")).await;
    let lines = b["lines"].as_array().unwrap();
    assert!(lines
        .iter()
        .any(|l| l["line"] == "warn" && l["stream"] == "stderr"));
    assert!(lines
        .iter()
        .any(|l| l["stream"] == "system" && l["line"].as_str().unwrap().contains("timed out")));
    let next = b["nextSeq"].as_u64().unwrap();
    let (_, b) = app.get(&format!("{base}/logs?since={next}")).await;
    assert_eq!(b["lines"], json!([]));

    // Errors from a command's output (a real tsc line) come back structured.
    let (_, _) = app
        .post(&format!("{base}/exec"), json!({ "command": "echo \"src/App.tsx(3,7): error TS2322: Type 'string' is not assignable to type 'number'.\"" }))
        .await;
    let (_, b) = app.get(&format!("{base}/errors")).await;
    assert_eq!(
        b["errors"],
        json!([{ "file": "src/App.tsx", "line": 3, "column": 7, "message": "TS2322 Type 'string' is not assignable to type 'number'.", "kind": "typescript" }])
    );
    // Writing the file makes that error stale.
    app.post(
        &format!("{base}/files"),
        json!({ "files": [{ "path": "src/App.tsx", "content": "export {}\n" }] }),
    )
    .await;
    let (_, b) = app.get(&format!("{base}/errors")).await;
    assert_eq!(b["errors"], json!([]));

    // SIGTERM: the agent exits cleanly and kills a running command's group.
    let http = app.http.clone();
    let url = app.url(&format!("{base}/exec"));
    let pending = tokio::spawn(async move {
        http.post(url)
            .bearer_auth(SECRET)
            .json(&json!({ "command": "sleep 60.0563 & echo $! > long.pid; sleep 60", "timeoutMs": 120000 }))
            .send()
            .await
    });
    let pid_file = app.root.join("cmd/long.pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !host_pids_running("60.0563").is_empty(),
        "the background command is not running"
    );
    let status = app.terminate();
    assert!(status.success(), "{status:?}");
    let _ = pending.await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while !host_pids_running("60.0563").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        host_pids_running("60.0563").is_empty(),
        "command survived agent shutdown"
    );
}

/// The preview cookie policy through the real agent: a dev server (a few lines of Node)
/// receives the app's own cookies and never the platform's nor `Authorization`, and its
/// `Set-Cookie` headers come back minus any naming a platform cookie, host-only.
#[tokio::test]
async fn preview_passes_the_apps_cookies_both_ways() {
    let app = TestApp::start();
    app.put("/v1/workspaces/cookies", json!({})).await;
    let base = "/v1/workspaces/cookies";
    let server = r#"
const http = require('node:http');
http.createServer((req, res) => {
  res.setHeader('Set-Cookie', [
    'app_cookie=from-app; Path=/',
    'byte_session=forged; Path=/',
    'tossed=1; Domain=preview.localhost; Path=/',
  ]);
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({
    cookie: req.headers.cookie ?? null,
    authorization: req.headers.authorization ?? null,
  }));
}).listen(Number(process.env.PORT), '127.0.0.1');
"#;
    let (s, b) = app
        .post(
            &format!("{base}/files"),
            json!({ "files": [{ "path": "server.cjs", "content": server }] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app
        .post(
            &format!("{base}/process/start"),
            json!({ "command": "exec node server.cjs" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    wait_running(&app, "cookies").await;

    let resp = app
        .http
        .get(app.url(&format!("{base}/preview/cookie-echo")))
        .bearer_auth(SECRET)
        .header(
            "cookie",
            "app_cookie=hello; byte_session=stolen; byte_csrf=c; byte_preview=p",
        )
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let set_cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        set_cookies,
        ["app_cookie=from-app; Path=/", "tossed=1; Path=/"]
    );
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(
        seen,
        json!({ "cookie": "app_cookie=hello", "authorization": null })
    );

    // Only platform cookies: the app sees no Cookie header at all.
    let resp = app
        .http
        .get(app.url(&format!("{base}/preview/cookie-echo")))
        .bearer_auth(SECRET)
        .header("cookie", "byte_session=stolen")
        .send()
        .await
        .unwrap();
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["cookie"], Value::Null);

    let (s, _) = app.post(&format!("{base}/process/stop"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
}

async fn npm_install(app: &TestApp, ws: &str) {
    let started = Instant::now();
    let (s, b) = app
        .post(
            &format!("/v1/workspaces/{ws}/exec"),
            json!({ "command": "npm install --prefer-offline --no-audit --no-fund", "timeoutMs": 600000 }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["exitCode"], 0, "npm install failed: {b}");
    eprintln!("[{ws}] npm install took {:?}", started.elapsed());
}

async fn wait_running(app: &TestApp, ws: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, b) = app.get(&format!("/v1/workspaces/{ws}/process")).await;
        match b["status"].as_str() {
            Some("running") => return b["port"].as_u64().unwrap(),
            Some("starting") if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            _ => {
                let (_, logs) = app.get(&format!("/v1/workspaces/{ws}/logs")).await;
                panic!("dev server not running: {b}\nlogs: {logs}");
            }
        }
    }
}

/// `GET …/errors` until `done` holds (at most ~2.5 s): the dev server's file watcher is
/// asynchronous, and a loaded machine can make it slower than the agent's settle time.
async fn poll_errors(app: &TestApp, base: &str, done: impl Fn(&Vec<Value>) -> bool) -> Value {
    let mut body = Value::Null;
    for _ in 0..10 {
        body = app.get(&format!("{base}/errors")).await.1;
        if body["errors"].as_array().is_some_and(&done) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    body
}

#[tokio::test]
async fn slow_react_vite_preview_hmr_errors_and_build() {
    let app = TestApp::start();
    let ws = "react-app";
    let base = format!("/v1/workspaces/{ws}");
    let t0 = Instant::now();
    let (s, b) = app.put(&base, json!({ "template": "react-vite" })).await;
    assert_eq!(
        (s, b),
        (StatusCode::OK, json!({ "id": ws, "created": true }))
    );
    assert!(!app.root.join(ws).join("template.json").exists());
    npm_install(&app, ws).await;

    let (s, b) = app.post(&format!("{base}/process/start"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        matches!(b["status"].as_str(), Some("starting" | "running")),
        "{b}"
    );
    let pid = b["pid"].clone();
    let (_, again) = app.post(&format!("{base}/process/start"), json!({})).await;
    assert_eq!(again["pid"], pid, "start is idempotent");

    // The preview waits for readiness by itself.
    let (s, html) = app.preview(ws, "/").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains(r#"<div id="root"></div>"#) && html.contains("/src/main.tsx"),
        "{html}"
    );
    eprintln!(
        "[{ws}] create → install → preview 200 in {:?}",
        t0.elapsed()
    );
    let port = wait_running(&app, ws).await;
    assert!(port > 0);
    // The template's Vite answers only its allowed hosts: loopback (what the proxy sends) and
    // the preview domain; any other name (DNS rebinding) is refused.
    for (host, allowed) in [
        ("app-1.preview.localhost:8787", true),
        ("evil.example", false),
        ("app-1.preview.localhost.evil.example", false),
    ] {
        let status = app
            .http
            .get(format!("http://127.0.0.1:{port}/"))
            .header("host", host)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status == StatusCode::OK, allowed, "Host {host}: {status}");
    }

    let (s, module) = app.preview(ws, "/src/App.tsx").await;
    assert_eq!(s, StatusCode::OK);
    assert!(module.contains("Your app starts here"), "{module}");

    // HMR WebSocket through the proxy, with Vite's token and subprotocol.
    let (_, client) = app.preview(ws, "/@vite/client").await;
    let token = client
        .split("const wsToken = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("wsToken in /@vite/client")
        .to_string();
    let ws_url = format!(
        "{}/v1/workspaces/{ws}/preview/?token={token}",
        app.base.replace("http://", "ws://")
    );
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)
            .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {SECRET}").parse().unwrap());
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "vite-hmr".parse().unwrap());
    request.headers_mut().insert(
        "origin",
        "http://react-app.preview.localhost:8787".parse().unwrap(),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket through the proxy");
    assert_eq!(response.headers()["sec-websocket-protocol"], "vite-hmr");
    let first = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        first.to_text().unwrap().contains(r#""type":"connected""#),
        "{first:?}"
    );

    // A change is served right away, and announced over HMR.
    let changed = std::fs::read_to_string(app.root.join(ws).join("src/App.tsx"))
        .unwrap()
        .replace("Your app starts here", "Hello from the sandbox test");
    let write_started = Instant::now();
    let (s, _) = app
        .post(
            &format!("{base}/files"),
            json!({ "files": [{ "path": "src/App.tsx", "content": changed }] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // The preview holds requests until the dev server's watcher has had time to see the
    // write; on a loaded machine the watcher may be slower still, so allow retries.
    let mut module = String::new();
    for _ in 0..20 {
        module = app.preview(ws, "/src/App.tsx").await.1;
        if module.contains("Hello from the sandbox test") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(module.contains("Hello from the sandbox test"), "{module}");
    eprintln!(
        "[{ws}] write → new content served in {:?}",
        write_started.elapsed()
    );
    let mut announced = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !announced && Instant::now() < deadline {
        if let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), socket.next()).await
        {
            let text = msg.to_text().unwrap_or("").to_string();
            announced = text.contains("App.tsx")
                && (text.contains("update") || text.contains("full-reload"));
        }
    }
    assert!(announced, "HMR update for App.tsx over the proxied socket");
    let _ = socket
        .send(tokio_tungstenite::tungstenite::Message::Close(None))
        .await;

    // A syntax error comes back structured, with file and line, without a browser.
    let broken = changed.replacen(
        "export default function App() {",
        "export default function App() {\n  const oops = 'a' 'b'",
        1,
    );
    let line = broken
        .lines()
        .position(|l| l.contains("const oops"))
        .unwrap() as u64
        + 1;
    app.post(
        &format!("{base}/files"),
        json!({ "files": [{ "path": "src/App.tsx", "content": broken }] }),
    )
    .await;
    let b = poll_errors(&app, &base, |errors| {
        errors.iter().any(|e| e["file"] == "src/App.tsx")
    })
    .await;
    let errors = b["errors"].as_array().unwrap();
    let err = errors
        .iter()
        .find(|e| e["file"] == "src/App.tsx")
        .unwrap_or_else(|| panic!("no App.tsx error: {b}"));
    assert_eq!(
        (err["kind"].as_str(), err["line"].as_u64()),
        (Some("vite"), Some(line)),
        "{b}"
    );
    let (_, t) = app.post(&format!("{base}/typecheck"), json!({})).await;
    assert_eq!(t["ok"], false, "{t}");
    let ts = t["errors"].as_array().unwrap();
    assert!(
        ts.iter()
            .any(|e| e["file"] == "src/App.tsx" && e["kind"] == "typescript" && e["line"] == line),
        "{t}"
    );

    // Fixing it clears the errors.
    app.post(
        &format!("{base}/files"),
        json!({ "files": [{ "path": "src/App.tsx", "content": changed }] }),
    )
    .await;
    let b = poll_errors(&app, &base, |errors| errors.is_empty()).await;
    assert_eq!(b["errors"], json!([]), "{b}");
    let (_, t) = app.post(&format!("{base}/typecheck"), json!({})).await;
    assert_eq!(
        (t["ok"].clone(), t["errors"].clone()),
        (json!(true), json!([])),
        "{t}"
    );
    // The workspace's warm type checker answered (see `slow_warm_typecheck_*`): the same
    // error brought back is found again, then cleared again.
    assert!(warm_checks(&app, &base).await >= 1);
    for (content, ok) in [(&broken, false), (&changed, true)] {
        app.post(
            &format!("{base}/files"),
            json!({ "files": [{ "path": "src/App.tsx", "content": content }] }),
        )
        .await;
        let (_, t) = app.post(&format!("{base}/typecheck"), json!({})).await;
        assert_eq!(t["ok"], ok, "{t}");
    }

    // Production build returns the output tree.
    let (s, b) = app.post(&format!("{base}/build"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["ok"], true, "{}", b["stderr"]);
    let files = b["files"].as_array().unwrap();
    let index = files
        .iter()
        .find(|f| f["path"] == "dist/index.html")
        .expect("dist/index.html");
    use base64::Engine;
    let html = base64::engine::general_purpose::STANDARD
        .decode(index["content"].as_str().unwrap())
        .unwrap();
    assert!(String::from_utf8(html)
        .unwrap()
        .contains("<div id=\"root\">"));
    assert!(files
        .iter()
        .any(|f| f["path"].as_str().unwrap().ends_with(".js")));

    // Stop: the port closes and the preview answers 503.
    let (_, b) = app.post(&format!("{base}/process/stop"), json!({})).await;
    assert_eq!(
        (b["status"].as_str(), b["port"].clone()),
        (Some("stopped"), Value::Null)
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port as u16)).is_err());
    let (s, _) = app.preview(ws, "/").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);

    // A command that is not a server crashes and is reported, not restarted.
    let (_, _) = app
        .post(
            &format!("{base}/process/start"),
            json!({ "command": "echo no server here; exit 3" }),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut b = Value::Null;
    while Instant::now() < deadline {
        b = app.get(&format!("{base}/process")).await.1;
        if b["status"] == "crashed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (
            b["status"].as_str(),
            b["exitCode"].as_i64(),
            b["restarts"].as_u64()
        ),
        (Some("crashed"), Some(3), Some(0))
    );
    let (s, e) = app.preview(ws, "/").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");

    let (s, _) = app.call(Method::DELETE, &base, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(!app.root.join(ws).exists());
}

#[tokio::test]
async fn slow_react_vite_worker_api_and_bundle() {
    let app = TestApp::start();
    let ws = "worker-app";
    let base = format!("/v1/workspaces/{ws}");
    app.put(&base, json!({ "template": "react-vite-worker" }))
        .await;
    npm_install(&app, ws).await;

    let (s, b) = app.post(&format!("{base}/build"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["ok"], true, "{}", b["stderr"]);
    let paths: Vec<&str> = b["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"dist/index.html") && paths.contains(&"dist/_worker.js"),
        "{paths:?}"
    );

    app.post(&format!("{base}/process/start"), json!({})).await;
    let (s, body) = app.preview(ws, "/api/notes").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let notes: Value = serde_json::from_str(&body).unwrap();
    assert!(notes["notes"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Worker API"));
    // POST with a body through the proxy.
    let resp = app
        .http
        .post(app.url(&format!("{base}/preview/api/notes")))
        .bearer_auth(SECRET)
        .json(&json!({ "text": "from the test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    // A runtime error in the Worker API shows up as a runtime error in its source file.
    let source = std::fs::read_to_string(app.root.join(ws).join("worker/index.ts")).unwrap();
    let broken = source.replace(
        "    return json({ ok: true, time: new Date().toISOString() })",
        "    const config = (globalThis as any).appConfig\n    return json({ ok: true, region: config.region })",
    );
    assert_ne!(broken, source);
    app.post(
        &format!("{base}/files"),
        json!({ "files": [{ "path": "worker/index.ts", "content": broken }] }),
    )
    .await;
    // The preview waits for the dev server's watcher to see the write (retried in case the
    // watcher is slower on a loaded machine).
    let mut s = StatusCode::OK;
    for _ in 0..20 {
        s = app.preview(ws, "/api/health").await.0;
        if s == StatusCode::INTERNAL_SERVER_ERROR {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    let (_, b) = app.get(&format!("{base}/errors")).await;
    let errors = b["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["kind"] == "runtime"
            && e["file"] == "worker/index.ts"
            && e["line"].is_u64()
            && e["message"].as_str().unwrap().contains("region")),
        "{b}"
    );
}

/// A gzipped npm tarball (`package/…`) of a one-file ES module package exporting `text`.
fn npm_tarball(dir: &Path, name: &str, text: &str) -> Vec<u8> {
    let pkg = dir.join(format!("{name}-src/package"));
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("package.json"),
        format!(r#"{{"name":"{name}","version":"1.0.0","type":"module","main":"index.js"}}"#),
    )
    .unwrap();
    std::fs::write(
        pkg.join("index.js"),
        format!("export const text = {text:?};\n"),
    )
    .unwrap();
    let out = dir.join(format!("{name}.tgz"));
    let status = Command::new("tar")
        .arg("czf")
        .arg(&out)
        .arg("-C")
        .arg(pkg.parent().unwrap())
        .arg("package")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
}

/// The preview after each write shows that write (read-after-write), 50 times in a row;
/// an app that adds a dependency gets only that one installed and previews with it.
#[tokio::test]
async fn slow_read_after_write_and_an_added_dependency() {
    let app = TestApp::start();
    let ws = "fresh-app";
    let base = format!("/v1/workspaces/{ws}");
    let (s, b) = app.put(&base, json!({ "template": "react-vite" })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The template's prepared dependencies are in place: the install has nothing to do.
    let (s, b) = app
        .post(
            &format!("{base}/exec"),
            json!({ "command": "npm install --prefer-offline --no-audit --no-fund" }),
        )
        .await;
    assert_eq!(
        (s, b["exitCode"].clone()),
        (StatusCode::OK, json!(0)),
        "{b}"
    );
    assert!(
        b["stdout"].as_str().unwrap().contains("nothing to install"),
        "{b}"
    );
    let store = std::fs::read_dir(shared_deps_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.starts_with("react-vite-") && !name.starts_with("react-vite-worker")
        })
        .expect("the template's store");
    let react = "node_modules/react/package.json";
    assert_eq!(
        inode(&app.root.join(ws).join(react)),
        inode(&store.join(react)),
        "node_modules is hard-linked from the store"
    );

    let (s, b) = app.post(&format!("{base}/process/start"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    wait_running(&app, ws).await;
    let (s, _) = app.preview(ws, "/src/App.tsx").await;
    assert_eq!(s, StatusCode::OK);
    for i in 0..50 {
        let marker = format!("fresh-{i}-{}", std::process::id());
        let (s, b) = app
            .post(
                &format!("{base}/files"),
                json!({ "files": [{ "path": "src/App.tsx", "content": format!("export default function App() {{ return <h1>{marker}</h1> }}\n") }] }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, code) = app.preview(ws, "/src/App.tsx").await;
        assert_eq!(s, StatusCode::OK, "{code}");
        assert!(code.contains(&marker), "write {i} not served: {code}");
    }

    // A dependency the template does not have (a local tarball: no registry needed).
    let dir = tempfile::tempdir().unwrap();
    let tgz = npm_tarball(dir.path(), "hello-dep", "hello from an added dependency");
    let manifest = std::fs::read_to_string(app.root.join(ws).join("package.json")).unwrap();
    let mut manifest: Value = serde_json::from_str(&manifest).unwrap();
    manifest["dependencies"]["hello-dep"] = json!("file:vendor/hello-dep.tgz");
    use base64::Engine;
    let (s, b) = app
        .post(
            &format!("{base}/files"),
            json!({ "files": [
                { "path": "vendor/hello-dep.tgz", "content": base64::engine::general_purpose::STANDARD.encode(&tgz), "encoding": "base64" },
                { "path": "package.json", "content": serde_json::to_string_pretty(&manifest).unwrap() },
            ] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app
        .post(
            &format!("{base}/exec"),
            json!({ "command": "npm install --prefer-offline --no-audit --no-fund", "timeoutMs": 600000 }),
        )
        .await;
    assert_eq!(
        (s, b["exitCode"].clone()),
        (StatusCode::OK, json!(0)),
        "{b}"
    );
    assert!(
        !b["stdout"].as_str().unwrap().contains("nothing to install"),
        "a changed package.json runs npm: {b}"
    );
    assert!(app
        .root
        .join(ws)
        .join("node_modules/hello-dep/index.js")
        .is_file());
    assert_eq!(
        inode(&app.root.join(ws).join(react)),
        inode(&store.join(react)),
        "only the difference was installed: the template's packages stay linked"
    );
    let (s, b) = app
        .post(
            &format!("{base}/files"),
            json!({ "files": [{ "path": "src/App.tsx", "content": "import { text } from 'hello-dep'\nexport default function App() { return <h1>{text}</h1> }\n" }] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, code) = app.preview(ws, "/src/App.tsx").await;
    assert_eq!(s, StatusCode::OK, "{code}");
    let import = code
        .split('"')
        .find(|part| part.contains("hello-dep") && part.starts_with('/'))
        .unwrap_or_else(|| panic!("no import of hello-dep in {code}"))
        .to_string();
    let (s, dep) = app.preview(ws, &import).await;
    assert_eq!(s, StatusCode::OK, "{dep}");
    assert!(dep.contains("hello from an added dependency"), "{dep}");
}

/// Changing a template's manifest or lockfile prepares its dependencies anew; workspaces
/// made before keep theirs.
#[tokio::test]
async fn a_template_change_invalidates_its_prepared_dependencies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let templates = dir.path().join("templates");
    let tpl = templates.join("mini");
    std::fs::create_dir_all(&tpl).unwrap();
    let deps = dir.path().join("deps");
    // Version 1 of the template: a dependency from a tarball, with its lockfile.
    let make = |text: &str| {
        let tgz = npm_tarball(dir.path(), "dep-a", text);
        std::fs::write(tpl.join("dep-a.tgz"), tgz).unwrap();
        std::fs::write(
            tpl.join("package.json"),
            r#"{"name":"mini","private":true,"dependencies":{"dep-a":"file:dep-a.tgz"}}"#,
        )
        .unwrap();
        let _ = std::fs::remove_file(tpl.join("package-lock.json"));
        let out = Command::new("npm")
            .args([
                "install",
                "--package-lock-only",
                "--offline",
                "--no-audit",
                "--no-fund",
            ])
            .current_dir(&tpl)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    make("version one");
    let app = TestApp::start_with(&[
        ("SANDBOX_TEMPLATES_DIR", templates.to_str().unwrap()),
        ("SANDBOX_DEPS_DIR", deps.to_str().unwrap()),
    ]);
    let read_dep = |ws: &str| {
        std::fs::read_to_string(app.root.join(ws).join("node_modules/dep-a/index.js")).unwrap()
    };
    let (s, b) = app
        .put("/v1/workspaces/one", json!({ "template": "mini" }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(read_dep("one").contains("version one"));
    let stores = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&deps)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with('.'))
            .collect();
        v.sort();
        v
    };
    let first = stores();
    assert_eq!(first.len(), 1, "{first:?}");

    // The dependency changes (so do its integrity and the lockfile).
    make("version two");
    let (s, b) = app
        .put("/v1/workspaces/two", json!({ "template": "mini" }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(read_dep("two").contains("version two"));
    let second = stores();
    assert_eq!(second.len(), 1, "the outdated store is removed: {second:?}");
    assert_ne!(first, second);
    assert!(
        read_dep("one").contains("version one"),
        "older workspaces keep theirs"
    );
    // Nothing to install in either: each holds its own template version's tree.
    for ws in ["one", "two"] {
        let (_, b) = app
            .post(
                &format!("/v1/workspaces/{ws}/exec"),
                json!({ "command": "npm install --no-audit --no-fund" }),
            )
            .await;
        assert_eq!(b["exitCode"], 0, "{b}");
    }
}

/// Host pids of workspace `ws`'s warm type checker (found by its script's first line, and
/// told from other agents' checkers by a file only this workspace has, seen from inside).
fn checker_pids(app: &TestApp, ws: &str, unique: &str) -> Vec<i32> {
    assert!(app.root.join(ws).join(unique).is_file());
    host_pids_running("byte-sandbox type checker")
        .into_iter()
        .filter(|pid| Path::new(&format!("/proc/{pid}/cwd")).join(unique).exists())
        .collect()
}

async fn warm_checks(app: &TestApp, base: &str) -> usize {
    let (_, logs) = app.get(&format!("{base}/logs")).await;
    logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["line"] == "$ tsc --noEmit -p . (warm type checker)")
        .count()
}

/// The warm type checker answers what `tsc` answers for the files as just written: 50
/// writes in a row, each checked at once (an error that moves, a fix, a change that breaks
/// the file importing it); `tsc` itself agrees; a killed checker costs one cold check (tsc
/// runs instead) and the next check is warm again.
#[tokio::test]
async fn slow_warm_typecheck_reads_after_write_and_survives_a_crash() {
    let app = TestApp::start();
    let ws = "checked-app";
    let base = format!("/v1/workspaces/{ws}");
    let (s, b) = app.put(&base, json!({ "template": "react-vite" })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let unique = format!("checker-{}.txt", std::process::id());
    let write = |files: Vec<(&str, String)>| {
        let files: Vec<Value> = files
            .into_iter()
            .map(|(p, c)| json!({ "path": p, "content": c }))
            .collect();
        let app = &app;
        let url = format!("{base}/files");
        async move {
            let (s, b) = app.post(&url, json!({ "files": files })).await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
    };
    let check = || {
        let app = &app;
        let url = format!("{base}/typecheck");
        async move {
            let (s, b) = app.post(&url, json!({})).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            b
        }
    };
    write(vec![
        (unique.as_str(), "marks this workspace".into()),
        (
            "src/use.ts",
            "import { value } from './check';\nexport const doubled: number = value * 2;\n".into(),
        ),
    ])
    .await;
    for i in 0..50 {
        let broken = i % 2 == 1;
        let line = i % 7 + 1;
        let body = if broken {
            "export const value: number = 'text';"
        } else {
            "export const value: number = 42;"
        };
        write(vec![(
            "src/check.ts",
            format!("{}{body}\n", "\n".repeat(line - 1)),
        )])
        .await;
        let b = check().await;
        let errors = b["errors"].as_array().unwrap();
        if broken {
            assert_eq!(b["ok"], false, "write {i}: {b}");
            assert_eq!(errors.len(), 1, "write {i}: {b}");
            assert_eq!(errors[0]["file"], "src/check.ts", "write {i}: {b}");
            assert_eq!(errors[0]["line"], line as u64, "write {i}: {b}");
            assert_eq!(errors[0]["kind"], "typescript", "write {i}: {b}");
        } else {
            assert_eq!(
                (b["ok"].clone(), errors.len()),
                (json!(true), 0),
                "write {i}: {b}"
            );
        }
    }
    assert!(
        warm_checks(&app, &base).await >= 49,
        "the warm checker answered (at most the first check may have been cold)"
    );
    // A change that breaks another file: the importer's error is reported.
    write(vec![(
        "src/check.ts",
        "export const value: string = 'x';\nexport const bad: number = 'y';\n".into(),
    )])
    .await;
    let b = check().await;
    let mut warm: Vec<String> = b["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}({},{})",
                e["file"].as_str().unwrap(),
                e["line"],
                e["column"]
            )
        })
        .collect();
    warm.sort();
    assert!(warm.iter().any(|e| e.starts_with("src/use.ts(2,")), "{b}");
    // tsc run by hand reports the same places.
    let (s, out) = app
        .post(
            &format!("{base}/exec"),
            json!({ "command": "./node_modules/.bin/tsc --noEmit -p .", "timeoutMs": 300000 }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let mut cold: Vec<String> = out["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| l.contains("): error TS"))
        .map(|l| l.split("): ").next().unwrap().to_string() + ")")
        .collect();
    cold.sort();
    assert_eq!(
        warm, cold,
        "the warm checker and tsc disagree: {b} vs {out}"
    );

    // Kill the checker: this check falls back to tsc (and is still right), the next is warm.
    let pids = checker_pids(&app, ws, &unique);
    assert_eq!(pids.len(), 1, "one checker per workspace: {pids:?}");
    unsafe { libc::kill(pids[0], libc::SIGKILL) };
    write(vec![(
        "src/check.ts",
        "export const value: number = 'broken';\n".into(),
    )])
    .await;
    let before = warm_checks(&app, &base).await;
    let b = check().await;
    assert_eq!(b["errors"][0]["file"], "src/check.ts", "{b}");
    assert_eq!(b["errors"][0]["line"], 1, "{b}");
    let (_, logs) = app.get(&format!("{base}/logs")).await;
    assert!(
        logs.to_string().contains("warm type checker crashed"),
        "the fallback is logged"
    );
    assert_eq!(warm_checks(&app, &base).await, before, "that check ran tsc");
    write(vec![(
        "src/check.ts",
        "export const value: number = 7;\n".into(),
    )])
    .await;
    let b = check().await;
    assert_eq!(b["ok"], true, "{b}");
    assert_eq!(
        warm_checks(&app, &base).await,
        before + 1,
        "a new checker answered"
    );
    let new = checker_pids(&app, ws, &unique);
    assert_eq!(new.len(), 1);
    assert_ne!(new, pids);
    // Deleting the workspace ends its checker.
    let pid = new[0];
    let (s, _) = app.call(Method::DELETE, &base, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(10);
    while host_pids_running("byte-sandbox type checker").contains(&pid) {
        assert!(
            Instant::now() < deadline,
            "the checker outlived its workspace"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
