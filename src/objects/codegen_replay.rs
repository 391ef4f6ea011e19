//! Readers of the code generator's stored events: the SSE stream (state, replay, then live
//! events) and the state with the events after an id.

use super::codegen_do::CodeGeneratorAgent;
use super::codegen_store::event_type;
use crate::domain::codegen::agent_call::Requester;
use crate::domain::codegen::events::AgentEvent;
use crate::domain::codegen::run::RunState;
use crate::domain::codegen::sse;
use serde_json::json;
use worker::{Response, Result};

impl CodeGeneratorAgent {
    /// An SSE response: the state, the stored events after `since`, then (while the run is
    /// active) live events.
    pub(super) fn subscribe(&self, since: Option<u64>) -> Result<Response> {
        let mut replay = vec![self.state_event().to_sse().into_bytes()];
        if let Some(since) = since {
            for (seq, json) in self.replay(since, 10_000) {
                if let Some(kind) = event_type(&json) {
                    replay.push(sse::encode_event_with_id(seq, &kind, &json).into_bytes());
                }
            }
        }
        let live = self.read(RunState::is_active);
        let consumer = self.streams.borrow_mut().subscribe(replay, live);
        let headers = worker::Headers::new();
        headers.set("Content-Type", "text/event-stream; charset=utf-8")?;
        headers.set("Cache-Control", "no-cache")?;
        let body = futures_util::StreamExt::map(consumer, Ok::<Vec<u8>, worker::Error>);
        Ok(Response::from_stream(body)?.with_headers(headers))
    }

    /// The state with the stored events after `since` (at most 1000), as JSON.
    pub(super) fn state_since(&self, by: &Requester, since: u64) -> Result<Response> {
        let events: Vec<serde_json::Value> = self
            .replay(since, 1000)
            .into_iter()
            .map(|(seq, j)| {
                let mut v: serde_json::Value = serde_json::from_str(&j).unwrap_or_default();
                v["id"] = json!(seq);
                v
            })
            .collect();
        let AgentEvent::State(snap) = self.state_event() else {
            return Response::error("no state", 500);
        };
        let mut snap = serde_json::to_value(snap)?;
        snap["appId"] = json!(by.app_id);
        Response::from_json(
            &json!({ "state": snap, "events": events, "running": self.running.get() }),
        )
    }
}
