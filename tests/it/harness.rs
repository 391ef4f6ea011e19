//! Test harness: starts `wrangler dev` instances with fresh local state on free ports, plus the
//! fake external services on loopback, and gives tests a small typed client.
//!
//! Instances are shared per configuration (one process each for the whole test binary); tests
//! isolate themselves by using fresh users. Every spawned process group is killed at exit.

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const JWT_SECRET: &str = "integration-test-secret-0123456789abcdef";
pub const ADMIN_EMAIL: &str = "root@admin.test";
/// Every address at this domain is on the main instance's `ADMIN_EMAILS` (fresh admins per test).
pub const ADMIN_DOMAIN: &str = "admins.test";
pub const PASSWORD: &str = "correct horse battery";

/// Process groups to end at exit, each with the signal that ends it properly.
static GROUPS: Mutex<Vec<(i32, i32)>> = Mutex::new(Vec::new());

extern "C" fn kill_groups() {
    if let Ok(groups) = GROUPS.lock() {
        for (pgid, signal) in groups.iter() {
            unsafe {
                libc::kill(-pgid, *signal);
            }
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wrangler() -> PathBuf {
    std::env::var_os("WRANGLER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("node_modules/.bin/wrangler"))
}

/// A command for `program` under a watchdog shell that takes its whole process group down as
/// soon as this test process is gone, however it ends (the atexit hook covers normal exits).
fn watched(program: &std::path::Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(r#"parent=$1; shift; "$@" & child=$!; while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done; kill -TERM -- -$$ 2>/dev/null"#)
        .arg("watchdog")
        .arg(std::process::id().to_string())
        .arg(program);
    cmd
}

/// Starts a [`watched`] command in its own process group, sent `exit_signal` at exit; a thread
/// reaps it. Returns the process group id.
fn spawn_watched(mut cmd: Command, exit_signal: i32) -> i32 {
    static ATEXIT: OnceLock<()> = OnceLock::new();
    ATEXIT.get_or_init(|| unsafe {
        libc::atexit(kill_groups);
    });
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let child = cmd.spawn().expect("spawn a test service");
    let pgid = child.id() as i32;
    GROUPS.lock().unwrap().push((pgid, exit_signal));
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    pgid
}

/// The env file a test instance's wrangler reads instead of the developer's: empty.
const ENV_FILE: &str = "test.env";

/// Runs a wrangler command (its subcommand already given) from the project root, isolated from
/// the developer's environment: wrangler reads `.dev.vars` (and `.env`) beside `wrangler.toml`
/// unless `--env-file` names another file, so every command names the instance's empty
/// [`ENV_FILE`]; and process variables never become Worker secrets
/// (`CLOUDFLARE_INCLUDE_PROCESS_ENV`). Everything an instance needs arrives with `--var`.
fn isolate(cmd: &mut Command, state: &std::path::Path) {
    cmd.current_dir(root())
        .arg("--env-file")
        .arg(state.join(ENV_FILE))
        .env_remove("CLOUDFLARE_INCLUDE_PROCESS_ENV")
        .env_remove("CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true");
}

/// A running `wrangler dev`.
pub struct Instance {
    pub base: String,
    pub client: Client,
    /// The instance's local state directory (D1, KV, R2, Durable Objects).
    pub state: PathBuf,
    port: u16,
    vars: Mutex<Vec<(String, String)>>,
    /// The running `wrangler dev`'s process group.
    pgid: Mutex<i32>,
}

/// Serves `app` on an ephemeral loopback port from a thread of its own (with its own runtime, so
/// it outlives every test's runtime); returns the base URL.
pub fn serve(app: axum::Router) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

impl Instance {
    /// Starts wrangler dev with the given extra vars and waits until `/api/health` answers.
    pub fn start(vars: &[(&str, String)]) -> Instance {
        assert!(
            root().join("build/worker/shim.mjs").exists()
                && root().join("frontend/dist/index.html").exists(),
            "the Worker is not built: run `make test` (or `make build` first)"
        );
        let state = tempdir("wrangler-state");
        std::fs::write(state.join(ENV_FILE), "").unwrap();
        let mut migrate = Command::new(wrangler());
        migrate
            .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
            .arg(&state);
        isolate(&mut migrate, &state);
        let status = migrate
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("wrangler runs");
        assert!(status.success(), "migrations failed");
        let mut all: Vec<(String, String)> = vec![
            ("JWT_SECRET".into(), JWT_SECRET.to_string()),
            ("ADMIN_EMAILS".into(), ADMIN_EMAIL.into()),
        ];
        // A var given here replaces the default one.
        all.retain(|(k, _)| !vars.iter().any(|(v, _)| v == k));
        all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        // No idle pooling: each test has its own runtime, and a pooled connection would outlive it.
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let i = Instance {
            base,
            client,
            state,
            port,
            vars: Mutex::new(all),
            pgid: Mutex::new(0),
        };
        i.launch();
        i
    }

    /// Runs `wrangler dev` on the instance's port and state, and waits until it answers.
    fn launch(&self) {
        let mut cmd = watched(&wrangler());
        cmd.args([
            "dev",
            "--ip",
            "127.0.0.1",
            "--show-interactive-dev-session=false",
            "--log-level",
            "warn",
        ])
        .args([
            "--port",
            &self.port.to_string(),
            "--inspector-port",
            &free_port().to_string(),
        ])
        .arg("--persist-to")
        .arg(&self.state);
        isolate(&mut cmd, &self.state);
        for (k, v) in self.vars.lock().unwrap().iter() {
            cmd.arg("--var").arg(format!("{k}:{v}"));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state.join("wrangler.log"))
            .unwrap();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        *self.pgid.lock().unwrap() = spawn_watched(cmd, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(90);
        while !health_ok(&self.base) {
            assert!(
                Instant::now() < deadline,
                "wrangler dev did not start; see {}",
                self.state.join("wrangler.log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Restarts the instance (same state) with `vars` replacing the ones it had, as an operator
    /// changing the configuration would.
    pub fn restart_with(&self, vars: &[(&str, String)]) {
        {
            let mut current = self.vars.lock().unwrap();
            current.retain(|(k, _)| !vars.iter().any(|(v, _)| v == k));
            current.extend(vars.iter().map(|(k, v)| (k.to_string(), v.clone())));
        }
        self.restart();
    }

    /// Kills `wrangler dev` outright (as a crash would) and starts it again on the same port
    /// and state.
    pub fn restart(&self) {
        let pgid = *self.pgid.lock().unwrap();
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "wrangler dev did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.launch();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Registers a fresh user (address not verified) and returns it with its token.
    pub async fn user(&self, tag: &str) -> User {
        self.register(&unique_email(tag)).await
    }

    /// Registers `email` with [`PASSWORD`] (address not verified).
    pub async fn register(&self, email: &str) -> User {
        let r = self
            .req(Method::POST, "/api/auth/register")
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "register {email}");
        let body: Value = r.json().await.unwrap();
        User {
            id: body["user"]["id"].as_str().unwrap().to_string(),
            email: email.to_string(),
            token: body["token"].as_str().unwrap().to_string(),
        }
    }

    /// Registers `email` and verifies it through the dev outbox (the instance must run with
    /// `MAIL_BACKEND=outbox`).
    pub async fn register_verified(&self, email: &str) -> User {
        let u = self.register(email).await;
        self.verify(email).await;
        u
    }

    /// A fresh user with a verified address.
    pub async fn verified_user(&self, tag: &str) -> User {
        self.register_verified(&unique_email(tag)).await
    }

    /// The dev outbox's messages to `to`, oldest first.
    pub async fn outbox(&self, to: &str) -> Vec<Value> {
        let r = self
            .req(
                Method::GET,
                &format!(
                    "/api/dev/outbox?to={}",
                    to.replace('+', "%2B").replace('@', "%40")
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "the dev outbox answers");
        r.json::<Value>().await.unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The token of the newest verification link sent to `to`.
    pub async fn verification_token(&self, to: &str) -> String {
        let messages = self.outbox(to).await;
        let link = messages.last().unwrap_or_else(|| panic!("no mail to {to}"))["link"]
            .as_str()
            .unwrap()
            .to_string();
        link.split_once("#token=")
            .expect("the token rides in the link's fragment")
            .1
            .to_string()
    }

    /// Uses the newest verification link sent to `to`; returns the response.
    pub async fn use_link(&self, token: &str) -> Response {
        self.req(Method::POST, "/api/auth/verify")
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap()
    }

    /// Verifies `to` with the newest link sent to it.
    pub async fn verify(&self, to: &str) {
        let token = self.verification_token(to).await;
        let r = self.use_link(&token).await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "verify {to}: {:?}",
            r.text().await
        );
    }

    /// Signs in with the password and returns the response.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.req(Method::POST, "/api/auth/login")
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// Creates an app for `u` and returns its id.
    pub async fn app(&self, u: &User, title: &str, visibility: &str) -> String {
        let r = self
            .req(Method::POST, "/api/apps")
            .bearer_auth(&u.token)
            .json(&json!({ "title": title, "visibility": visibility }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

pub struct User {
    pub id: String,
    pub email: String,
    pub token: String,
}

pub fn unique_email(tag: &str) -> String {
    unique_email_at(tag, "example.com")
}

/// A fresh address at `domain`.
pub fn unique_email_at(tag: &str, domain: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}-{}-{}@{domain}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn tempdir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "byte-it-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts an error response: status, code, and returns the body.
pub async fn expect_error(r: Response, status: u16, code: &str) -> Value {
    let got = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "body: {body}");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
    body
}

/// A blocking readiness probe (plain TCP, HTTP/1.0) usable outside any runtime.
fn health_ok(base: &str) -> bool {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /api/health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && &buf[9..12] == b"200"
}

/// The main instance: spec defaults, OAuth pointed at the fake provider.
pub fn main_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        let fake = crate::fakes::oauth_provider();
        Instance::start(&[
            ("GOOGLE_CLIENT_ID", "google-client".into()),
            ("GOOGLE_CLIENT_SECRET", "google-secret".into()),
            (
                "GOOGLE_OAUTH_AUTHORIZE_URL",
                format!("{fake}/google/authorize"),
            ),
            ("GOOGLE_OAUTH_TOKEN_URL", format!("{fake}/google/token")),
            ("GOOGLE_USERINFO_URL", format!("{fake}/google/userinfo")),
            ("GITHUB_CLIENT_ID", "github-client".into()),
            ("GITHUB_CLIENT_SECRET", "github-secret".into()),
            (
                "GITHUB_OAUTH_AUTHORIZE_URL",
                format!("{fake}/github/authorize"),
            ),
            ("GITHUB_OAUTH_TOKEN_URL", format!("{fake}/github/token")),
            ("GITHUB_API_URL", format!("{fake}/github/api")),
            ("ALLOWED_ORIGINS", "http://allowed.test".into()),
            ("ADMIN_EMAILS", format!("{ADMIN_EMAIL}, *@{ADMIN_DOMAIN}")),
            ("MAIL_BACKEND", "outbox".into()),
        ])
    })
}

/// Only this domain is on the gated instance's `ALLOWED_EMAIL`.
pub const ALLOWED_DOMAIN: &str = "allowed.test";

/// An instance with an allow-list (`ALLOWED_EMAIL=*@allowed.test`) and the dev outbox.
pub fn gated_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        Instance::start(&[
            ("ALLOWED_EMAIL", format!("*@{ALLOWED_DOMAIN}")),
            ("MAIL_BACKEND", "outbox".into()),
        ])
    })
}

/// An instance with tiny limits, for the rate-limit and quota tests.
pub const TIGHT_API_LIMIT: u64 = 8;
pub const TIGHT_AUTH_LIMIT: u64 = 10;
pub const TIGHT_MAX_APPS: u64 = 3;
pub const TIGHT_PREVIEW_LIMIT: u64 = 5;
/// Wrong passwords an account may send before it is locked; the first lock is a minute long, so
/// no test depends on timing.
pub const TIGHT_LOGIN_FREE_FAILURES: u64 = 3;
pub const TIGHT_LOGIN_BACKOFF_SECONDS: u64 = 60;

/// The tight instance also stands for a production configuration: an https `PUBLIC_URL` (so a
/// `__Host-` session cookie) and mail through the `send_email` binding (simulated by wrangler
/// dev), no outbox.
pub const TIGHT_PUBLIC_URL: &str = "https://byte.test";

pub fn tight_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        Instance::start(&[
            ("PUBLIC_URL", TIGHT_PUBLIC_URL.into()),
            ("RATE_LIMIT_API", format!("{TIGHT_API_LIMIT}/60")),
            ("RATE_LIMIT_AUTH", format!("{TIGHT_AUTH_LIMIT}/60")),
            ("MAX_APPS_PER_USER", TIGHT_MAX_APPS.to_string()),
            ("RATE_LIMIT_PREVIEW", format!("{TIGHT_PREVIEW_LIMIT}/60")),
            ("LOGIN_FREE_FAILURES", TIGHT_LOGIN_FREE_FAILURES.to_string()),
            (
                "LOGIN_BACKOFF_BASE_SECONDS",
                TIGHT_LOGIN_BACKOFF_SECONDS.to_string(),
            ),
        ])
    })
}

/// Sends `n` requests at once and returns their statuses in order.
pub async fn join_statuses<F, Fut>(n: usize, f: F) -> Vec<u16>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::new();
    for h in handles {
        match h.await.unwrap() {
            Ok(r) => out.push(r.status().as_u16()),
            Err(e) => panic!("request failed: {e:?}"),
        }
    }
    out
}

pub const SANDBOX_SECRET: &str = "integration-sandbox-secret";
pub const SANDBOX_QUOTA: u64 = 2;

/// The `byte-sandbox` process on loopback (one per test binary, with its own workspace root);
/// returns its base URL.
pub fn sandbox_agent() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(start_sandbox_agent).clone()
}

fn start_sandbox_agent() -> String {
    let bin = root().join("target/debug/byte-sandbox");
    assert!(
        bin.exists(),
        "byte-sandbox is not built: run `make test` (it runs `cargo build -p byte-sandbox` first)"
    );
    let port = free_port();
    let workspaces = tempdir("workspaces");
    let mut cmd = watched(&bin);
    cmd.env("SANDBOX_SECRET", SANDBOX_SECRET)
        .env("SANDBOX_LISTEN", format!("127.0.0.1:{port}"))
        .env("SANDBOX_ROOT", &workspaces)
        .env("SANDBOX_TEMPLATES_DIR", root().join("templates"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(workspaces.join("agent.log")).unwrap());
    // SIGTERM, not SIGKILL: byte-sandbox then stops the dev servers it started in their own
    // process groups (a killed agent would leave them running after the suite).
    spawn_watched(cmd, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "byte-sandbox did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

/// An instance wired to a real byte-sandbox agent (the local backend of `make dev`).
pub fn sandbox_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        let agent = sandbox_agent();
        Instance::start(&[
            ("SANDBOX_BACKEND", "local".into()),
            ("SANDBOX_URL", agent),
            ("SANDBOX_SECRET", SANDBOX_SECRET.into()),
            ("MAX_SANDBOX_INSTANCES", SANDBOX_QUOTA.to_string()),
        ])
    })
}

/// An instance whose sandboxes stop after [`IDLE_SECONDS`] without activity.
pub const IDLE_SECONDS: u64 = 10;

pub fn idle_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        Instance::start(&[
            ("SANDBOX_BACKEND", "local".into()),
            ("SANDBOX_URL", sandbox_agent()),
            ("SANDBOX_SECRET", SANDBOX_SECRET.into()),
            ("SANDBOX_IDLE_TIMEOUT_SECONDS", IDLE_SECONDS.to_string()),
        ])
    })
}

impl Instance {
    /// A client that sends `host` to this instance, as a browser resolving `*.localhost` would.
    pub fn client_for_host(&self, host: &str) -> Client {
        let addr: std::net::SocketAddr = self.base.trim_start_matches("http://").parse().unwrap();
        Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .resolve(host, addr)
            .build()
            .unwrap()
    }
}

impl Instance {
    /// Sends one request as `token`'s user, with an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> Response {
        let mut req = self.req(method, path).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.unwrap()
    }
}

/// The contract instance (OpenAPI checks, schemathesis, the authorization matrix): user keys can
/// be stored, and limits are high enough for a fuzzer's request rate.
pub fn contract_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        let i = Instance::start(&[
            (
                "SECRETS_ENCRYPTION_KEY",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into(),
            ),
            ("RATE_LIMIT_API", "100000/60".into()),
            ("RATE_LIMIT_AUTH", "100000/60".into()),
            ("MAIL_BACKEND", "outbox".into()),
            ("ADMIN_EMAILS", format!("{ADMIN_EMAIL}, *@{ADMIN_DOMAIN}")),
        ]);
        i.publish_templates();
        i
    })
}

impl Instance {
    /// Publishes the templates to the instance's R2, as `make dev` does for the developer's.
    pub fn publish_templates(&self) {
        let status = Command::new("bash")
            .arg(root().join("scripts/publish-templates.sh"))
            .current_dir(root())
            .env("PERSIST", &self.state)
            .env("WRANGLER", wrangler())
            .env("WRANGLER_SEND_METRICS", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("publish-templates.sh runs");
        assert!(status.success(), "publishing the templates failed");
    }
}

pub const ADMIN_PASSWORD: &str = "admin password 1";

impl Instance {
    /// Signs in as the administrator ([`ADMIN_EMAIL`], promoted by `ADMIN_EMAILS` once its address
    /// is verified), registering and verifying it (through the dev outbox: the instance runs with
    /// `MAIL_BACKEND=outbox`) on the instance's first call: every test that needs an admin goes
    /// through here.
    pub async fn admin(&self) -> User {
        // Tests on one instance ask at once: registering and verifying happen once, in turn.
        static SETUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _turn = SETUP.lock().await;
        let creds = json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD });
        let r = self
            .req(Method::POST, "/api/auth/register")
            .json(&creds)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::CREATED {
            self.verify(ADMIN_EMAIL).await;
        }
        let r = self
            .req(Method::POST, "/api/auth/login")
            .json(&creds)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "admin sign-in: {status} {body}");
        assert_eq!(body["user"]["role"], "admin", "{body}");
        User {
            id: body["user"]["id"].as_str().unwrap().to_string(),
            email: ADMIN_EMAIL.to_string(),
            token: body["token"].as_str().unwrap().to_string(),
        }
    }

    /// A session of `u` that is not `u.token` (for routes that end the session they are given).
    pub async fn fresh_token(&self, email: &str, password: &str) -> String {
        let r = self
            .req(Method::POST, "/api/auth/login")
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "login {email}");
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// The `Set-Cookie` headers of a response, as text.
pub fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// Polls until `f` says yes (file watchers, dev servers and alarms take a moment); panics after
/// `secs`.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the app's sandbox is ready (failing at once if it failed or stopped); its state.
pub async fn sandbox_ready(app: &Instance, u: &User, app_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let s: Value = app
            .call(
                Method::GET,
                &format!("/api/apps/{app_id}/sandbox"),
                &u.token,
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        match s["status"].as_str() {
            Some("ready") => return s,
            Some("failed" | "stopped") => panic!("the sandbox did not come up: {s}"),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the sandbox still {} after 240 s",
            s["status"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates the app's sandbox (202) and waits until it is ready; its state.
pub async fn create_ready(app: &Instance, u: &User, app_id: &str) -> Value {
    let r = app
        .call(
            Method::POST,
            &format!("/api/apps/{app_id}/sandbox"),
            &u.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    sandbox_ready(app, u, app_id).await
}

/// Sends a chat message to the app's agent and reads the whole SSE stream until the run ends:
/// `(id, event)` in order.
pub async fn chat(
    app: &Instance,
    u: &User,
    app_id: &str,
    message: &str,
) -> Vec<(
    Option<u64>,
    byte_platform::domain::codegen::events::AgentEvent,
)> {
    use byte_platform::domain::codegen::events::parse_event;
    // Sandbox creation and install can take a while: a longer limit than the shared client's.
    let client = Client::builder()
        .timeout(Duration::from_secs(400))
        .build()
        .unwrap();
    let r = client
        .post(app.url(&format!("/api/agent/chat/{app_id}")))
        .bearer_auth(&u.token)
        .json(&json!({ "message": message }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    let mut out = Vec::new();
    for frame in text.split("\n\n").filter(|f| !f.trim().is_empty()) {
        let mut id = None;
        let mut name = "";
        let mut data = String::new();
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("event: ") {
                name = v;
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        let ev = parse_event(&data).unwrap_or_else(|e| panic!("{e}: {frame}"));
        assert_eq!(ev.sse_name(), name, "{frame}");
        out.push((id, ev));
    }
    out
}
