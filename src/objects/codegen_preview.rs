//! Preview addresses as the `CodeGeneratorAgent` sends them: minted when an event goes out, not
//! when it was stored, so a `state` snapshot or a replayed `preview_ready` never carries a token
//! that expired while the event waited (see [`crate::domain::codegen::run::with_fresh_preview`]).

use super::codegen_do::CodeGeneratorAgent;
use crate::domain::codegen::events::AgentEvent;
use crate::domain::codegen::run::{replay_with_fresh_preview, with_fresh_preview};
use crate::http::App;
use crate::services::sandbox as sandbox_service;

impl CodeGeneratorAgent {
    /// A preview address for the run's app, minted now (`None`: no origin recorded yet, or the
    /// configuration cannot sign).
    pub(super) fn fresh_preview_url(&self) -> Option<String> {
        let (origin, app_id) = self.read(|s| (s.origin.clone(), s.app_id.clone()));
        let api = worker::Url::parse(origin.as_deref()?).ok()?;
        let app = App::new(self.env.clone()).ok()?;
        sandbox_service::preview_url(&app.keys, &app.cfg.preview_domain, &api, &app_id).ok()
    }

    /// `ev` with its preview address (if it has one) minted now.
    pub(super) fn fresh(&self, ev: AgentEvent) -> AgentEvent {
        let wants = match &ev {
            AgentEvent::State(s) => s.preview_url.is_some(),
            AgentEvent::PreviewReady { .. } => true,
            _ => false,
        };
        if !wants {
            return ev;
        }
        with_fresh_preview(ev, self.fresh_preview_url().as_deref())
    }

    /// The stored events after `since` (at most `limit`), as they are replayed now.
    pub(super) fn replay(&self, since: u64, limit: u32) -> Vec<(u64, String)> {
        let events = self.store.events_after(since, limit);
        if !events.iter().any(|(_, j)| j.contains("\"preview_ready\"")) {
            return events;
        }
        let url = self.fresh_preview_url();
        events
            .into_iter()
            .map(|(seq, j)| (seq, replay_with_fresh_preview(j, url.as_deref())))
            .collect()
    }
}
