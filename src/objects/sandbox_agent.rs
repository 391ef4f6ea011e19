//! The `byte-sandbox` agent as `UserAppSandboxService` reaches it: its own Cloudflare Container
//! (port 8080) in production, or the one local process at `SANDBOX_URL` in `make dev`. Every
//! request carries the shared secret; typed calls read replies as `byte_protocol` types; a
//! forwarded preview request carries only what the preview cookie policy lets through.

use super::sandbox_do::{config, UserAppSandboxService};
use crate::domain::sandbox::preview_agent_headers;
use crate::domain::sandbox_call::{AgentMethod, AgentRoute};
use byte_protocol::process::ServerInfo;
use byte_protocol::{parse_reply, AgentError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{
    ContainerStartupOptions, Fetch, Headers, Method, Request, RequestInit, Response, Result,
};

/// Where the agent runs.
enum Backend {
    /// `make dev`: one `byte-sandbox` process on loopback serving every sandbox.
    Local { base: String },
    /// Production: this object's own container, port 8080.
    Container,
}

impl UserAppSandboxService {
    fn backend(&self) -> Result<Backend> {
        use crate::domain::config::SandboxBackend;
        Ok(match &config(&self.env)?.sandbox_backend {
            SandboxBackend::Container => Backend::Container,
            SandboxBackend::Local { url } => Backend::Local { base: url.clone() },
        })
    }

    fn secret(&self) -> Result<String> {
        config(&self.env)?
            .sandbox_secret
            .as_ref()
            .map(|s| s.expose().to_string())
            .ok_or_else(|| worker::Error::RustError("SANDBOX_SECRET is not set".into()))
    }

    /// Sends one request to the agent. `path` starts with `/`.
    pub(super) async fn send(
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

    /// One typed call to the agent: `Err` when it could not be reached, `Ok(Err)` when it
    /// answered with an error (or something unreadable), `Ok(Ok)` with its reply.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<std::result::Result<T, AgentError>> {
        let h = Headers::new();
        let body = match body {
            Some(b) => {
                h.set("Content-Type", "application/json")?;
                Some(serde_json::to_string(b)?.into())
            }
            None => None,
        };
        let mut resp = self.send(method, path, h, body).await?;
        let status = resp.status_code();
        let bytes = resp.bytes().await.unwrap_or_default();
        Ok(parse_reply(status, &bytes))
    }

    /// The dev server's status.
    pub(super) async fn server(
        &self,
        ws: &str,
    ) -> Result<std::result::Result<ServerInfo, AgentError>> {
        self.call(
            Method::Get,
            &format!("/v1/workspaces/{ws}/process"),
            None::<&()>,
        )
        .await
    }

    /// A workspace or preview call (already authorized by the Worker), sent on to the agent;
    /// its answer unchanged. `req` is the request the call came on (a preview forwards it).
    pub(super) async fn forward(&self, req: Request, route: AgentRoute) -> Result<Response> {
        self.touch(matches!(route, AgentRoute::Forward { .. }))?;
        let headers = Headers::new();
        match route {
            AgentRoute::Call {
                method,
                path,
                json,
                event_stream,
            } => {
                let method = match method {
                    AgentMethod::Get => Method::Get,
                    AgentMethod::Post => Method::Post,
                    AgentMethod::Delete => Method::Delete,
                };
                if json.is_some() {
                    headers.set("Content-Type", "application/json")?;
                }
                if event_stream {
                    headers.set("Accept", "text/event-stream")?;
                }
                self.send(method, &path, headers, json.map(Into::into))
                    .await
            }
            AgentRoute::Forward { path, websocket } => {
                for (k, v) in preview_agent_headers(req.headers().entries()) {
                    headers.append(&k, &v)?;
                }
                let method = req.method();
                let body = if websocket || matches!(method, Method::Get | Method::Head) {
                    None
                } else {
                    req.inner().body().map(|b| b.into())
                };
                self.send(method, &path, headers, body).await
            }
        }
    }

    /// Whether the agent may be running anything of this object's: always for the shared local
    /// process; in production, while this object's container runs.
    pub(super) fn agent_may_run(&self) -> Result<bool> {
        Ok(match self.backend()? {
            Backend::Local { .. } => true,
            Backend::Container => self.state.container().is_some_and(|c| c.running()),
        })
    }

    /// Production: signals this object's container to stop (nothing to do locally).
    pub(super) fn stop_container(&self) -> Result<()> {
        if let (Backend::Container, Some(c)) = (self.backend()?, self.state.container()) {
            if c.running() {
                let _ = c.signal(15);
            }
        }
        Ok(())
    }
}

/// An agent call as a lifecycle step sees it: the reply on success, or why the step failed.
pub(super) fn step<T>(
    result: Result<std::result::Result<T, AgentError>>,
    what: &str,
) -> std::result::Result<T, String> {
    match result {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(format!("{what} {e}")),
        Err(e) => Err(format!("sandbox agent unreachable: {e}")),
    }
}
