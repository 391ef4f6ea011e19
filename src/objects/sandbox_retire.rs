//! The sandbox object's part in an app's deletion (`domain::deletion`): [`SandboxCall::Retire`]
//! stops the sandbox for good, [`SandboxCall::Erase`] empties the object.
//!
//! Invariants: once retired, the object starts, saves and forwards nothing (in-flight lifecycle
//! steps drop their outcome), so erased storage stays erased; `retire` answers 200 only on the
//! agent's word that the workspace is gone (deleted now, or byte-sandbox's own 404), or when no
//! agent can be running anything of this app, and no lifecycle step was in flight (it could
//! create the workspace again before it sees the flag); anything else is a 503 the plan retries.

use super::sandbox_do::UserAppSandboxService;
use crate::domain::ids::AppId;
use crate::domain::sandbox::preview_label;
use crate::domain::sandbox_call::SandboxCall;
use byte_protocol::parse_reply;
use worker::{Headers, Method, Response, Result};

impl UserAppSandboxService {
    /// Answers a deletion call.
    pub(super) async fn erasure(&self, call: SandboxCall) -> Result<Response> {
        match call {
            SandboxCall::Retire { app_id } => self.retire(&app_id).await,
            SandboxCall::Erase => self.erase().await,
            other => Response::error(format!("{} is not a deletion call", other.to_json()), 400),
        }
    }

    async fn retire(&self, app_id: &AppId) -> Result<Response> {
        let Some(ws) = preview_label(app_id.as_str()) else {
            return Response::error("not an app id", 400);
        };
        self.retired.set(true);
        self.state.storage().delete_alarm().await?;
        if self.agent_may_run()? {
            // Deleting the workspace is how byte-sandbox stops everything it runs for it.
            let sent = self
                .send(
                    Method::Delete,
                    &format!("/v1/workspaces/{ws}"),
                    Headers::new(),
                    None,
                )
                .await;
            let mut resp = match sent {
                Ok(r) => r,
                Err(e) => return Response::error(format!("sandbox agent unreachable: {e}"), 503),
            };
            let status = resp.status_code();
            let body = resp.bytes().await.unwrap_or_default();
            if !(200..300).contains(&status) {
                match parse_reply::<serde_json::Value>(status, &body) {
                    // The agent's own "no such workspace": nothing of it runs.
                    Err(e) if e.status == 404 && e.code.as_deref() == Some("E002") => {}
                    Err(e) => return Response::error(format!("workspace not deleted {e}"), 503),
                    Ok(_) => return Response::error("unexpected agent answer", 503),
                }
            }
        }
        self.stop_container()?;
        if self.advancing.get() {
            // A step awaiting the agent may still create what was just deleted: it stops at its
            // next check, and the retry deletes again.
            return Response::error("a lifecycle step was in flight; retry", 503);
        }
        Response::ok("stopped")
    }

    async fn erase(&self) -> Result<Response> {
        self.retired.set(true);
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await?;
        *self.cached.borrow_mut() = None;
        Response::ok("erased")
    }
}
