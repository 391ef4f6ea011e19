//! The code generator's agent object's part in implementing orchestration tickets: a ticket
//! queued as an edit of the app ([`crate::domain::orchestrator::implement::TicketJob`], kept with
//! the run), an imported app's saved files taken up first, and the job reported when the run ends
//! ([`ticket_work::report`]), retried while GitHub or D1 are unavailable
//! ([`TicketJob::report_failed`]).

use super::codegen_do::CodeGeneratorAgent;
use super::codegen_store::{now, HEARTBEAT_MS};
use crate::domain::codegen::agent_call::Requester;
use crate::domain::codegen::driver::{FileChange, Store};
use crate::domain::codegen::run::RunState;
use crate::domain::error::{ApiError, ErrorCode};
use crate::domain::orchestrator::implement::{AfterFailedReport, TicketJob};
use crate::http::App;
use crate::services::ticket_work::{self, Report};
use serde_json::json;
use worker::{Response, Result};

impl CodeGeneratorAgent {
    /// A ticket's implementation ([`AgentCall::Implement`]): its edit request queued with its
    /// job, on an app that has been generated and whose agent is idle.
    pub(super) async fn implement(&self, c: &Requester, job: TicketJob) -> Result<Response> {
        let refuse = |m: String| {
            Ok(crate::http::error_response(&ApiError::new(
                409,
                ErrorCode::E004,
                m,
            )))
        };
        if !self.read(RunState::has_app) && !self.read(RunState::is_active) {
            self.adopt_saved_files(&c.app_id).await;
        }
        if !self.read(RunState::has_app) {
            return refuse(
                "the project's app has no generated files yet: generate it in its workspace first, then implement tickets in it"
                    .into(),
            );
        }
        let queued = self.update(|s| {
            let r = s.enqueue_ticket(job);
            if r.is_ok() {
                c.bind(s);
                s.config = None;
            }
            r
        });
        if let Err(m) = queued {
            return refuse(m);
        }
        self.emit(self.state_event());
        self.kick().await;
        Ok(Response::from_json(&json!({ "queued": true }))?.with_status(202))
    }

    /// An app this agent never generated but whose files are saved (a repository imported for a
    /// project): its latest version becomes the agent's app ([`RunState::adopt`]), each text file
    /// committed as the generator commits its own.
    async fn adopt_saved_files(&self, app_id: &crate::domain::ids::AppId) {
        let saved = match crate::services::github::saved_files(&self.env, app_id).await {
            Ok(Some(saved)) => saved,
            Ok(None) => return,
            Err(e) => {
                worker::console_error!(
                    "codegen: reading the saved files of {app_id}: {}",
                    e.message
                );
                return;
            }
        };
        let (version, files) = saved;
        let title = match self.env.d1(crate::services::db::BINDING) {
            Ok(db) => crate::services::db::app_by_id(&db, app_id)
                .await
                .ok()
                .flatten()
                .map(|a| a.title),
            Err(_) => None,
        }
        .unwrap_or_else(|| "App".into());
        for (path, bytes) in files {
            let Ok(content) = String::from_utf8(bytes) else {
                continue;
            };
            let file = FileChange::Write {
                path: &path,
                content: &content,
            };
            self.store.commit(
                |s| {
                    s.record_write(&path, &content);
                },
                Some(file),
                None,
            );
        }
        self.update(|s| {
            s.app_id = app_id.clone();
            s.adopt(&title, version);
        });
    }

    /// Reports the ticket job of a run that ended ([`ticket_work::report`]); a run that ended
    /// without the job's edit ending fails it first. `true` while the alarm stays armed for a
    /// retry (or for work that arrived meanwhile).
    pub(super) async fn settle_ticket(&self, app: &App) -> bool {
        let Some(mut job) = self.read(|s| s.ticket.clone()) else {
            return false;
        };
        if job.is_open() {
            job.abandoned("the run ended before the ticket's change was made");
            let stored = job.clone();
            self.update(|s| s.ticket = Some(stored));
        }
        // An isolate that dies while reporting is picked up by this alarm.
        self.store.arm(now() + HEARTBEAT_MS).await;
        self.running.set(true);
        let app_id = self.read(|s| s.app_id.clone());
        let report = ticket_work::report(app, &app_id, &job).await;
        self.running.set(false);
        let retry = match report {
            Report::Done => {
                self.update(|s| s.ticket = None);
                false
            }
            Report::Retry(why) => match job.report_failed() {
                AfterFailedReport::GiveUp => {
                    worker::console_error!(
                        "codegen: reporting ticket {} failed {} times, given up: {why}",
                        job.ticket_id,
                        job.report_attempts
                    );
                    self.update(|s| s.ticket = None);
                    false
                }
                AfterFailedReport::RetryInMs(wait) => {
                    worker::console_warn!(
                        "codegen: reporting ticket {} failed ({why}); retrying",
                        job.ticket_id
                    );
                    self.update(|s| s.ticket = Some(job));
                    self.store.arm(now() + wait).await;
                    true
                }
            },
        };
        if self.read(RunState::is_active) {
            // Work arrived while the report ran.
            self.store.arm(now()).await;
            return true;
        }
        retry
    }
}
