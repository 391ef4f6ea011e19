//! `UserAppSandboxService`: one object per app sandbox. It owns the sandbox's lifecycle
//! ([`crate::domain::sandbox::Status`]), persisted in its SQLite storage so a restarted object
//! knows where it was, and it is the only path to the `byte-sandbox` agent that runs the app:
//! a Cloudflare Container in production, a local process in `make dev` ([`Backend`]).
//!
//! Invariants: lifecycle steps run from the alarm, one at a time, each idempotent and persisted
//! before the next, so an evicted object resumes where it stopped; a ready sandbox idle for
//! `SANDBOX_IDLE_TIMEOUT_SECONDS` is stopped by the alarm.

use crate::domain::sandbox::{preview_label, Command, State as SandboxState, Status};
use serde_json::json;
use std::cell::RefCell;
use worker::{
    durable_object, ContainerStartupOptions, DurableObject, Env, Fetch, Headers, Method, Request,
    RequestInit, Response, Result, SqlStorageValue, State,
};

pub const BINDING: &str = "SANDBOX";
pub const INSTALL_COMMAND: &str = "npm install --prefer-offline --no-audit --no-fund";
pub const INSTALL_TIMEOUT_MS: u64 = 300_000;
const READY_TIMEOUT_MS: i64 = 90_000;

/// Where the agent runs.
enum Backend {
    /// `make dev`: one `byte-sandbox` process on loopback serving every sandbox.
    Local { base: String },
    /// Production: this object's own container, port 8080.
    Container,
}

#[durable_object]
pub struct UserAppSandboxService {
    state: State,
    env: Env,
    cached: RefCell<Option<SandboxState>>,
}

fn now() -> i64 {
    js_sys::Date::now() as i64
}

fn var(env: &Env, k: &str) -> Option<String> {
    env.var(k)
        .map(|v| v.to_string())
        .ok()
        .or_else(|| env.secret(k).map(|v| v.to_string()).ok())
        .filter(|v| !v.is_empty())
}

impl UserAppSandboxService {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn load(&self) -> Result<Option<SandboxState>> {
        if let Some(s) = self.cached.borrow().clone() {
            return Ok(Some(s));
        }
        self.sql().exec("CREATE TABLE IF NOT EXISTS sandbox (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)", None)?;
        #[derive(serde::Deserialize)]
        struct Row {
            state: String,
        }
        let rows: Vec<Row> = self
            .sql()
            .exec("SELECT state FROM sandbox WHERE id = 1", None)?
            .to_array()?;
        let s = rows
            .first()
            .and_then(|r| serde_json::from_str::<SandboxState>(&r.state).ok());
        *self.cached.borrow_mut() = s.clone();
        Ok(s)
    }

    fn save(&self, s: &SandboxState) -> Result<()> {
        let text = serde_json::to_string(s)?;
        self.sql().exec(
            "INSERT INTO sandbox (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state",
            vec![SqlStorageValue::String(text)],
        )?;
        *self.cached.borrow_mut() = Some(s.clone());
        Ok(())
    }

    /// Moves to `next` (if the lifecycle allows it), persists, mirrors to D1.
    async fn transition(
        &self,
        s: &mut SandboxState,
        next: Status,
        reason: Option<String>,
    ) -> Result<()> {
        // A step that ran long may have been overtaken (the owner stopped or re-created the
        // sandbox meanwhile): the persisted state wins and this step's outcome is dropped.
        if let Some(current) = self.load()? {
            if current.status != s.status && next != Status::Creating {
                *s = current;
                return Ok(());
            }
        }
        if s.status != next && !s.status.can_move_to(next) {
            return Err(worker::Error::RustError(format!(
                "illegal sandbox transition {:?} → {next:?}",
                s.status
            )));
        }
        s.status = next;
        s.reason = reason;
        s.updated_at_ms = now();
        self.save(s)?;
        if let Ok(db) = self.env.d1(crate::services::db::BINDING) {
            let _ = db
                .prepare(
                    "UPDATE sandboxes SET status = ?1, updated_at = unixepoch() WHERE app_id = ?2",
                )
                .bind(&[next.as_str().into(), s.app_id.as_str().into()])?
                .run()
                .await;
        }
        Ok(())
    }

    fn backend(&self) -> Result<Backend> {
        match var(&self.env, "SANDBOX_BACKEND")
            .as_deref()
            .unwrap_or("local")
        {
            "container" => Ok(Backend::Container),
            _ => Ok(Backend::Local {
                base: var(&self.env, "SANDBOX_URL")
                    .ok_or_else(|| worker::Error::RustError("SANDBOX_URL is not set".into()))?,
            }),
        }
    }

    fn secret(&self) -> Result<String> {
        var(&self.env, "SANDBOX_SECRET")
            .ok_or_else(|| worker::Error::RustError("SANDBOX_SECRET is not set".into()))
    }

    /// Sends one request to the agent. `path` starts with `/`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: Headers,
        body: Option<worker::wasm_bindgen::JsValue>,
    ) -> Result<Response> {
        headers.set("Authorization", &format!("Bearer {}", self.secret()?))?;
        let mut init = RequestInit::new();
        init.with_method(method)
            .with_headers(headers)
            .with_body(body);
        match self.backend()? {
            Backend::Local { base } => {
                let req = Request::new_with_init(
                    &format!("{}{path}", base.trim_end_matches('/')),
                    &init,
                )?;
                Fetch::Request(req).send().await
            }
            Backend::Container => {
                let container = self.state.container().ok_or_else(|| {
                    worker::Error::RustError("no container bound to this object".into())
                })?;
                if !container.running() {
                    let mut opts = ContainerStartupOptions::new();
                    opts.add_env("SANDBOX_SECRET", &self.secret()?);
                    opts.add_env("SANDBOX_LISTEN", "0.0.0.0:8080");
                    opts.enable_internet(true);
                    container.start(Some(opts))?;
                }
                let port = container.get_tcp_port(8080)?;
                port.fetch(format!("http://container{path}"), Some(init))
                    .await
            }
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: serde_json::Value,
    ) -> Result<(u16, serde_json::Value)> {
        let h = Headers::new();
        h.set("Content-Type", "application/json")?;
        let body = if method == Method::Get {
            None
        } else {
            Some(body.to_string().into())
        };
        let mut resp = self.send(method, path, h, body).await?;
        let status = resp.status_code();
        let v = resp
            .json::<serde_json::Value>()
            .await
            .unwrap_or(serde_json::Value::Null);
        Ok((status, v))
    }

    fn ws(s: &SandboxState) -> String {
        preview_label(&s.app_id).unwrap_or("invalid").to_string()
    }

    /// Runs lifecycle steps until the sandbox is ready, failed or stopped.
    async fn advance(&self) -> Result<()> {
        let Some(mut s) = self.load()? else {
            return Ok(());
        };
        let ws = Self::ws(&s);
        loop {
            match s.status {
                Status::Creating => {
                    let put = self
                        .call(
                            Method::Put,
                            &format!("/v1/workspaces/{ws}"),
                            json!({ "template": s.template }),
                        )
                        .await;
                    match step(put, "workspace creation failed") {
                        Ok(_) => self.transition(&mut s, Status::WritingFiles, None).await?,
                        Err(why) => return self.fail(&mut s, why).await,
                    }
                }
                // Template files were copied by the agent; generated files arrive through the API.
                Status::WritingFiles => self.transition(&mut s, Status::Installing, None).await?,
                Status::Installing => {
                    let body =
                        json!({ "command": INSTALL_COMMAND, "timeoutMs": INSTALL_TIMEOUT_MS });
                    match self
                        .call(Method::Post, &format!("/v1/workspaces/{ws}/exec"), body)
                        .await
                    {
                        Ok((200, r)) if r["exitCode"] == 0 => {
                            self.transition(&mut s, Status::Starting, None).await?
                        }
                        Ok((_, r)) => {
                            let tail: String = r["stderr"]
                                .as_str()
                                .unwrap_or("")
                                .lines()
                                .rev()
                                .take(5)
                                .collect::<Vec<_>>()
                                .join(" | ");
                            let why = if r["timedOut"] == true {
                                "timed out".to_string()
                            } else {
                                format!("exit code {}", r["exitCode"])
                            };
                            return self
                                .fail(&mut s, format!("dependency install failed ({why}): {tail}"))
                                .await;
                        }
                        Err(e) => {
                            return self
                                .fail(&mut s, format!("sandbox agent unreachable: {e}"))
                                .await
                        }
                    }
                }
                Status::Starting => {
                    let start = self
                        .call(
                            Method::Post,
                            &format!("/v1/workspaces/{ws}/process/start"),
                            json!({}),
                        )
                        .await;
                    if let Err(why) = step(start, "dev server did not start") {
                        return self.fail(&mut s, why).await;
                    }
                    let deadline = now() + READY_TIMEOUT_MS;
                    loop {
                        let (_, p) = self
                            .call(
                                Method::Get,
                                &format!("/v1/workspaces/{ws}/process"),
                                json!({}),
                            )
                            .await?;
                        match p["status"].as_str() {
                            Some("running") => break,
                            Some("crashed") | Some("stopped") => {
                                return self
                                    .fail(
                                        &mut s,
                                        format!("dev server exited with code {}", p["exitCode"]),
                                    )
                                    .await
                            }
                            _ if now() > deadline => {
                                return self
                                    .fail(&mut s, "dev server did not become ready in time".into())
                                    .await
                            }
                            _ => worker::Delay::from(std::time::Duration::from_millis(250)).await,
                        }
                    }
                    s.last_activity_ms = now();
                    self.transition(&mut s, Status::Ready, None).await?;
                    self.schedule_idle(&s).await?;
                    return Ok(());
                }
                Status::Ready => {
                    let idle_ms = self.idle_timeout_ms();
                    if now() >= crate::domain::sandbox::idle_deadline(s.last_activity_ms, idle_ms) {
                        self.stop(&mut s, "stopped after being idle".into()).await?;
                    } else {
                        self.schedule_idle(&s).await?;
                    }
                    return Ok(());
                }
                Status::Failed | Status::Stopped => return Ok(()),
            }
        }
    }

    fn idle_timeout_ms(&self) -> i64 {
        var(&self.env, "SANDBOX_IDLE_TIMEOUT_SECONDS")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(900)
            .max(10)
            * 1000
    }

    async fn schedule_idle(&self, s: &SandboxState) -> Result<()> {
        let at = crate::domain::sandbox::idle_deadline(s.last_activity_ms, self.idle_timeout_ms())
            + 1000;
        super::set_alarm_at(&self.state.storage(), at).await
    }

    async fn fail(&self, s: &mut SandboxState, reason: String) -> Result<()> {
        worker::console_error!("sandbox {} failed: {reason}", s.app_id);
        self.transition(s, Status::Failed, Some(reason)).await
    }

    async fn stop(&self, s: &mut SandboxState, reason: String) -> Result<()> {
        let ws = Self::ws(s);
        let _ = self
            .call(
                Method::Post,
                &format!("/v1/workspaces/{ws}/process/stop"),
                json!({}),
            )
            .await;
        if let (Backend::Container, Some(c)) = (self.backend()?, self.state.container()) {
            if c.running() {
                let _ = c.signal(15);
            }
        }
        self.transition(s, Status::Stopped, Some(reason)).await?;
        self.state.storage().delete_alarm().await
    }

    async fn command(&self, cmd: Command) -> Result<Response> {
        match cmd {
            Command::Create {
                app_id,
                user_id,
                template,
            } => {
                let mut s = match self.load()? {
                    Some(s) if s.status.is_active() => return Response::from_json(&s),
                    Some(mut s) => {
                        s.template = template;
                        s
                    }
                    None => SandboxState {
                        app_id,
                        user_id,
                        template,
                        status: Status::Stopped,
                        reason: None,
                        instance_type: var(&self.env, "SANDBOX_INSTANCE_TYPE")
                            .unwrap_or_else(|| "standard-3".into()),
                        updated_at_ms: now(),
                        last_activity_ms: now(),
                    },
                };
                s.last_activity_ms = now();
                self.transition(&mut s, Status::Creating, None).await?;
                // The alarm drives the steps, so they survive this request and an eviction.
                super::set_alarm_at(&self.state.storage(), now()).await?;
                Response::from_json(&s)
            }
            Command::Status => match self.load()? {
                Some(mut s) => {
                    if s.status == Status::Ready {
                        self.check_server(&mut s).await?;
                    }
                    Response::from_json(&s)
                }
                None => Response::error("no sandbox", 404),
            },
            Command::Stop => match self.load()? {
                Some(mut s) if s.status != Status::Stopped => {
                    self.stop(&mut s, "stopped by the owner".into()).await?;
                    Response::from_json(&s)
                }
                Some(s) => Response::from_json(&s),
                None => Response::error("no sandbox", 404),
            },
            Command::Touch => {
                self.touch()?;
                Response::ok("")
            }
        }
    }

    /// A ready sandbox whose dev server died is reported as failed with the exit code (and the
    /// agent does not restart it behind anyone's back); re-creating it starts it again.
    async fn check_server(&self, s: &mut SandboxState) -> Result<()> {
        let ws = Self::ws(s);
        match self
            .call(
                Method::Get,
                &format!("/v1/workspaces/{ws}/process"),
                json!({}),
            )
            .await
        {
            Ok((200, p)) if matches!(p["status"].as_str(), Some("crashed") | Some("stopped")) => {
                let reason = format!("dev server exited (code {})", p["exitCode"]);
                self.fail(s, reason).await
            }
            Ok(_) => Ok(()),
            Err(e) => {
                self.fail(s, format!("sandbox agent unreachable: {e}"))
                    .await
            }
        }
    }

    fn touch(&self) -> Result<()> {
        if let Some(mut s) = self.load()? {
            // Persist at most every 10 s: activity is a hint for idle shutdown, not a ledger.
            let t = now();
            if t - s.last_activity_ms > 10_000 {
                s.last_activity_ms = t;
                self.save(&s)?;
            } else {
                s.last_activity_ms = t;
                *self.cached.borrow_mut() = Some(s);
            }
        }
        Ok(())
    }

    /// Forwards a request (already authorized by the Worker) to the agent's workspace API.
    async fn proxy(&self, req: Request, rest: &str) -> Result<Response> {
        let Some(s) = self.load()? else {
            return Response::error("no sandbox", 404);
        };
        self.touch()?;
        let url = req.url()?;
        let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
        let path = format!("/v1/workspaces/{}/{rest}{query}", Self::ws(&s));
        let headers = Headers::new();
        for (k, v) in req.headers().entries() {
            if !matches!(
                k.as_str(),
                "authorization" | "cookie" | "host" | "cf-connecting-ip" | "x-forwarded-for"
            ) {
                headers.append(&k, &v)?;
            }
        }
        let method = req.method();
        let body = if matches!(method, Method::Get | Method::Head) {
            None
        } else {
            req.inner().body().map(|b| b.into())
        };
        self.send(method, &path, headers, body).await
    }
}

/// An agent call as a lifecycle step sees it: the body on success, or why the step failed.
fn step(
    result: Result<(u16, serde_json::Value)>,
    what: &str,
) -> std::result::Result<serde_json::Value, String> {
    match result {
        Ok((200..=299, body)) => Ok(body),
        Ok((code, body)) => Err(format!("{what} ({code}): {}", message(&body))),
        Err(e) => Err(format!("sandbox agent unreachable: {e}")),
    }
}

fn message(v: &serde_json::Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or("no detail")
        .to_string()
}

impl DurableObject for UserAppSandboxService {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            cached: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        if let Some(rest) = path.strip_prefix("/proxy/") {
            let rest = rest.to_string();
            return self.proxy(req, &rest).await;
        }
        let cmd: Command = match req.json().await {
            Ok(c) => c,
            Err(_) => return Response::error("bad sandbox command", 400),
        };
        self.command(cmd).await
    }

    async fn alarm(&self) -> Result<Response> {
        self.advance().await?;
        Response::ok("")
    }
}
