//! The code generator object's part in a deployment (`domain::deploy`): the app's deployer asks
//! it to have the sandbox running with the app's files ([`AgentCall::PrepareDeploy`], using the
//! driver's own restore, so a stopped sandbox is brought back exactly as a resumed run would)
//! and hands it the deployment's events to store and send to the app's clients
//! ([`AgentCall::Publish`]).
//!
//! Invariant: nothing is built while the agent writes the app (the answer is a 409), so a
//! deployment never captures half a phase.
//!
//! [`AgentCall::PrepareDeploy`]: crate::domain::codegen::agent_call::AgentCall::PrepareDeploy
//! [`AgentCall::Publish`]: crate::domain::codegen::agent_call::AgentCall::Publish

use super::codegen_do::CodeGeneratorAgent;
use crate::domain::codegen::agent_call::PreparedDeploy;
use crate::domain::codegen::driver::{Cancel, Driver};
use crate::domain::codegen::events::AgentEvent;
use crate::domain::codegen::run::RunState;
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::sandbox_call::Owner;
use crate::domain::templates;
use crate::http::{error_response, App};
use worker::{Response, Result};

impl CodeGeneratorAgent {
    pub(super) async fn prepare_deploy(&self, by: &Owner) -> Result<Response> {
        if self.running.get() || self.read(RunState::is_active) {
            return Ok(error_response(&ApiError::new(
                409,
                ErrorCode::E007,
                "the agent is still writing this app: deploy it when the run has finished",
            )));
        }
        let app = match App::new(self.env.clone()) {
            Ok(a) => a,
            Err(e) => {
                worker::console_error!("misconfigured: {e}");
                return Ok(error_response(&ApiError::unavailable(
                    "service misconfigured",
                )));
            }
        };
        // An app written without the agent (files put into its sandbox directly) has no run
        // yet: the sandbox port needs to know whose it is.
        self.update(|s| {
            if s.app_id.as_str().is_empty() {
                s.app_id = by.app_id.clone();
                s.user_id = by.user_id.clone();
            }
        });
        let (model, sandbox) = self.ports(&app, Cancel::default());
        let planned = self.read(|s| s.blueprint.as_ref().map(|b| b.template.clone()));
        let template = match planned {
            Some(t) => t,
            None => match sandbox.status().await {
                Ok(Some(s)) => s.template,
                Ok(None) => templates::DEFAULT.to_string(),
                Err(e) => return Ok(error_response(&e)),
            },
        };
        let clients = self.clients();
        let driver = Driver::new(
            &model,
            &sandbox,
            &self.store,
            &clients,
            Cancel::default(),
            app.cfg.max_corrections,
        );
        if let Err(e) = driver.ensure_sandbox(&template).await {
            return Ok(error_response(&e));
        }
        Response::from_json(&PreparedDeploy {
            version: self.read(|s| s.version),
            template,
        })
    }

    /// A deployment event from the app's deployer: stored and sent like the agent's own.
    pub(super) fn publish_event(&self, event: AgentEvent) -> Result<Response> {
        self.emit(event);
        Response::empty().map(|r| r.with_status(204))
    }
}
