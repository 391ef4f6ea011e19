//! One generation run's pure bookkeeping, for the `CodeGeneratorAgent` Durable Object: what the
//! run persists ([`RunState`]), what each parsed block of model output turns into ([`step`]:
//! a sandbox write or delete, or an event for clients), and the snapshot reconnecting clients get.
//!
//! Invariants:
//! - a block becomes a write only once it closed whole ([`files_format`] emits nothing for a block
//!   cut off), so a truncated stream never leaves a partial file;
//! - a rejected path or block is an `error` event with `recoverable: true`: the other blocks of
//!   the phase still land;
//! - a diff applies to the file's current content, or is reported (never half-applied).

use super::blueprint::{Blueprint, PhaseStatus};
use super::events::{AgentEvent, FileSummary, PhaseSummary, RunStatus, StateSnapshot};
use super::files_format::Event;
use crate::domain::error::ErrorCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A file the run wrote: its content hash (FNV-1a, 64 bits, hex) and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    pub hash: String,
    pub bytes: u64,
}

/// What the agent persists about its run (one JSON row in its storage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    pub status: RunStatus,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub blueprint: Option<Blueprint>,
    /// One per blueprint phase, in order.
    #[serde(default)]
    pub phases: Vec<PhaseStatus>,
    #[serde(default)]
    pub current_phase: Option<usize>,
    #[serde(default)]
    pub files: BTreeMap<String, WrittenFile>,
    #[serde(default)]
    pub preview_url: Option<String>,
}

impl Default for RunState {
    fn default() -> Self {
        Self {
            status: RunStatus::Idle,
            prompt: None,
            blueprint: None,
            phases: Vec::new(),
            current_phase: None,
            files: BTreeMap::new(),
            preview_url: None,
        }
    }
}

impl RunState {
    /// A new run from `prompt`: planning, nothing written yet (files of earlier runs are kept).
    pub fn start(&mut self, prompt: &str) {
        self.status = RunStatus::Planning;
        self.prompt = Some(prompt.to_string());
        self.blueprint = None;
        self.phases.clear();
        self.current_phase = None;
    }

    /// The plan is accepted: every phase planned, generation begins.
    pub fn planned(&mut self, b: Blueprint) {
        self.phases = vec![PhaseStatus::Planned; b.phases.len()];
        self.blueprint = Some(b);
        self.status = RunStatus::Generating;
    }

    pub fn record_write(&mut self, path: &str, content: &str) {
        self.files.insert(
            path.to_string(),
            WrittenFile {
                hash: content_hash(content),
                bytes: content.len() as u64,
            },
        );
    }

    pub fn record_delete(&mut self, path: &str) {
        self.files.remove(path);
    }

    /// What a (re)connecting client sees.
    pub fn snapshot(&self, app_id: &str, last_event_id: u64) -> StateSnapshot {
        let phases = match &self.blueprint {
            Some(b) => b
                .phases
                .iter()
                .zip(self.phases.iter())
                .map(|(p, s)| PhaseSummary {
                    name: p.name.clone(),
                    kind: p.kind,
                    status: *s,
                })
                .collect(),
            None => Vec::new(),
        };
        StateSnapshot {
            app_id: app_id.to_string(),
            status: self.status,
            title: self.blueprint.as_ref().map(|b| b.title.clone()),
            phases,
            current_phase: self
                .current_phase
                .and_then(|i| self.blueprint.as_ref()?.phases.get(i))
                .map(|p| p.name.clone()),
            files: self
                .files
                .iter()
                .map(|(path, f)| FileSummary {
                    path: path.clone(),
                    bytes: f.bytes,
                })
                .collect(),
            preview_url: self.preview_url.clone(),
            queued_messages: 0,
            last_event_id,
        }
    }
}

/// FNV-1a (64-bit) of `s`, as 16 hex digits: enough to tell file versions apart.
pub fn content_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// What one parsed block of model output asks the agent to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Write the file to the sandbox, then tell clients (`file_generated`).
    Write { path: String, content: String },
    /// Delete the file in the sandbox, then tell clients (`file_deleted`).
    Delete { path: String },
    /// Tell clients only (a chunk for live display, or a recoverable error).
    Emit(AgentEvent),
}

fn rejected(message: String) -> Step {
    Step::Emit(AgentEvent::Error {
        code: ErrorCode::E005,
        message,
        recoverable: true,
    })
}

/// Maps one parser event to its step. `current` gives a file's content for a diff to apply to
/// (`None`: the file does not exist).
pub fn step(event: Event, current: impl FnOnce(&str) -> Option<String>) -> Option<Step> {
    match event {
        Event::Text(_) | Event::FileStart { .. } => None,
        Event::FileChunk { path, text } => {
            Some(Step::Emit(AgentEvent::FileChunk { path, chunk: text }))
        }
        Event::FileComplete { path, content } => Some(Step::Write { path, content }),
        Event::DiffComplete { path, diff } => {
            let base = current(&path);
            let applied = match (&base, diff.is_new_file()) {
                (None, true) => diff.apply(""),
                (None, false) => {
                    return Some(rejected(format!(
                        "diff for {path} not applied: the file does not exist"
                    )))
                }
                (Some(b), _) => diff.apply(b),
            };
            Some(match applied {
                Ok(content) => Step::Write { path, content },
                Err(e) => rejected(format!("diff for {path} not applied: {e}")),
            })
        }
        Event::Delete { path } => Some(Step::Delete { path }),
        Event::PathRejected { path, reason } => {
            Some(rejected(format!("path {path:?} rejected: {reason}")))
        }
        Event::BlockRejected { path, reason } => {
            Some(rejected(format!("block for {path:?} rejected: {reason}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::codegen::blueprint::{validate, PhaseKind};
    use crate::domain::codegen::files_format::{parse_all, UnifiedDiff};
    use serde_json::json;

    fn blueprint() -> Blueprint {
        validate(
            &json!({
                "title": "T", "description": "d", "template": "react-vite", "frameworks": [],
                "files": [{"path": "src/App.tsx", "purpose": "root"}],
                "phases": [
                    {"name": "Base", "kind": "foundation", "description": "d", "files": ["src/App.tsx"]},
                    {"name": "UI", "kind": "core", "description": "d", "files": ["src/App.tsx"]}
                ]
            }),
            &["react-vite"],
        )
        .unwrap()
    }

    #[test]
    fn blocks_become_writes_and_bad_paths_become_recoverable_errors() {
        let out = "hi\n===FILE: src/a.ts===\nexport const a = 1;\n===END FILE===\n===FILE: ../evil.ts===\nx\n===END FILE===\n===FILE: src/b.ts===\nb\n===END FILE===\n===DELETE: src/old.ts===\n";
        let (events, end) = parse_all(out);
        assert!(end.is_ok());
        let steps: Vec<Step> = events
            .into_iter()
            .filter_map(|e| step(e, |_| None))
            .collect();
        let writes: Vec<&str> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Write { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(writes, ["src/a.ts", "src/b.ts"]);
        assert!(steps.iter().any(|s| matches!(s,
            Step::Emit(AgentEvent::Error { recoverable: true, message, .. }) if message.contains("../evil.ts"))));
        assert!(steps.contains(&Step::Delete {
            path: "src/old.ts".into()
        }));
    }

    #[test]
    fn a_truncated_block_writes_nothing() {
        let (events, end) = parse_all("===FILE: src/a.ts===\nexport const a");
        assert!(end.is_err());
        assert!(!events
            .into_iter()
            .filter_map(|e| step(e, |_| None))
            .any(|s| matches!(s, Step::Write { .. })));
    }

    #[test]
    fn diffs_apply_to_the_current_content_or_are_reported() {
        let diff = UnifiedDiff::compute("src/a.ts", "a\nb\n", "a\nB\n");
        let s = step(
            Event::DiffComplete {
                path: "src/a.ts".into(),
                diff: diff.clone(),
            },
            |_| Some("a\nb\n".into()),
        );
        assert_eq!(
            s,
            Some(Step::Write {
                path: "src/a.ts".into(),
                content: "a\nB\n".into()
            })
        );
        let s = step(
            Event::DiffComplete {
                path: "src/a.ts".into(),
                diff,
            },
            |_| None,
        );
        assert!(matches!(
            s,
            Some(Step::Emit(AgentEvent::Error {
                recoverable: true,
                ..
            }))
        ));
    }

    #[test]
    fn state_round_trips_and_snapshots() {
        let mut st = RunState::default();
        st.start("make a thing");
        assert_eq!(st.status, RunStatus::Planning);
        st.planned(blueprint());
        st.current_phase = Some(1);
        st.phases[0] = PhaseStatus::Complete;
        st.phases[1] = PhaseStatus::Implementing;
        st.record_write("src/App.tsx", "x");
        st.record_write("src/gone.ts", "y");
        st.record_delete("src/gone.ts");
        let back: RunState = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
        assert_eq!(back, st);
        let snap = st.snapshot("app_1", 7);
        assert_eq!(snap.status, RunStatus::Generating);
        assert_eq!(snap.current_phase.as_deref(), Some("UI"));
        assert_eq!(snap.phases[1].kind, PhaseKind::Core);
        assert_eq!(snap.phases[0].status, PhaseStatus::Complete);
        assert_eq!(snap.files.len(), 1);
        assert_eq!(snap.last_event_id, 7);
    }

    #[test]
    fn hashes_differ_by_content() {
        assert_eq!(content_hash(""), "cbf29ce484222325");
        assert_ne!(content_hash("a"), content_hash("b"));
        assert_eq!(content_hash("a"), content_hash("a"));
    }
}
