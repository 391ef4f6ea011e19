//! One generation run's pure bookkeeping, for the driver ([`super::driver`]): what the
//! run persists ([`RunState`]), what each parsed block of model output turns into ([`step`]:
//! a sandbox write or delete, or an event for clients), and the snapshot reconnecting clients get.
//!
//! Invariants:
//! - a block becomes a write only once it closed whole ([`super::files_format`] emits nothing for a block
//!   cut off), so a truncated stream never leaves a partial file;
//! - a rejected path or block is an `error` event with `recoverable: true`: the other blocks of
//!   the phase still land;
//! - a diff applies to the file's current content, or is reported (never half-applied);
//! - work is chosen from the persisted state alone ([`RunState::next_work`]), so a run picked up
//!   by a fresh object after an eviction or restart continues exactly where it was; the unit of
//!   work that was streaming when it stopped is continued from its committed output
//!   ([`RunState::unit_output`]; see the driver's guarantee in [`super::driver`]).

use super::blueprint::Blueprint;
use super::events::{
    add_usage, AgentEvent, CallUsage, FileSummary, ModelUsage, PhaseSummary, RunStatus,
    StateSnapshot,
};
use super::files_format::Event;
use super::models::ModelOverride;
use super::phase::PhaseStatus;
use super::phase_plan::PhaseDetail;
use crate::domain::error::ErrorCode;
use crate::domain::ids::{AppId, UserId};
use crate::domain::orchestrator::implement::TicketJob;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Chat messages that may wait while a run works; more are refused.
pub const MAX_QUEUED_MESSAGES: usize = 10;

/// A file the run wrote: its content hash (SHA-256, hex; the R2 key of its content) and size.
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
    /// Each phase's detailed plan, made right before it is implemented (by phase index).
    #[serde(default)]
    pub phase_details: BTreeMap<usize, PhaseDetail>,
    /// Phases planned ahead whose plan was unusable: they keep the blueprint's list and are not
    /// asked again (the tokens were spent once).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub planned_without_detail: std::collections::BTreeSet<usize>,
    #[serde(default)]
    pub files: BTreeMap<String, WrittenFile>,
    #[serde(default)]
    pub preview_url: Option<String>,
    /// Who the run works for (an alarm resumes it without a request).
    #[serde(default)]
    pub app_id: AppId,
    #[serde(default)]
    pub user_id: UserId,
    /// Where the API was reached (`scheme://host[:port]`), for fresh preview URLs.
    #[serde(default)]
    pub origin: Option<String>,
    /// The request's model override, kept for the whole run.
    #[serde(default)]
    pub config: Option<ModelOverride>,
    /// Follow-up chat messages waiting for the current unit of work to finish.
    #[serde(default)]
    pub queue: Vec<String>,
    /// The chat edit being applied, if any.
    #[serde(default)]
    pub edit: Option<EditState>,
    /// What the unit of work currently streaming has applied so far (path → content hash, or
    /// `None` for a delete). Cleared when a unit starts; kept when one is resumed.
    #[serde(default)]
    pub attempt: BTreeMap<String, Option<String>>,
    /// The model's output of the unit of work in progress, up to the end of its last block
    /// applied (committed with that block); a resumed unit replays it and continues it.
    ///
    /// Stored apart from the rest of the state (it grows with every block, and is appended to,
    /// see [`OutputChange`]); read from older stored states that still carry it.
    #[serde(default, skip_serializing)]
    pub unit_output: String,
    /// A file being written to (or deleted from) the sandbox and not yet committed; a resumed
    /// run puts the committed content back first. Stored apart, like `unit_output`.
    #[serde(default, skip_serializing)]
    pub pending_write: Option<String>,
    /// Planned phases wait (a follow-up message to a stopped or failed run edits the app
    /// without resuming the plan; `resume` releases them).
    #[serde(default)]
    pub hold_phases: bool,
    /// The last version saved (one per completed phase or edit).
    #[serde(default)]
    pub version: u32,
    /// The files each phase wrote (by phase index; correction rounds included), each once.
    #[serde(default)]
    pub phase_written: BTreeMap<usize, Vec<String>>,
    /// The tokens each model used in this run (since the last `generate`).
    #[serde(default)]
    pub usage: Vec<ModelUsage>,
    /// An orchestration ticket being implemented as one of the queued edits, until its outcome
    /// is reported (see [`crate::domain::orchestrator::implement`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketJob>,
}

/// A follow-up chat message being applied to the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditState {
    pub message: String,
    pub status: PhaseStatus,
}

/// How a store brings its copy of [`RunState::unit_output`] from `saved` to `new`: within a unit
/// the output only grows, so a commit appends what is new instead of rewriting the whole output
/// (which would make storing a unit quadratic in its length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputChange<'a> {
    Unchanged,
    Append(&'a str),
    /// A new unit (or a shorter output): replace everything with this (possibly empty) text.
    Replace(&'a str),
}

impl<'a> OutputChange<'a> {
    pub fn between(saved: &str, new: &'a str) -> Self {
        if new.len() == saved.len() && new == saved {
            OutputChange::Unchanged
        } else if new.len() > saved.len() && new.starts_with(saved) {
            OutputChange::Append(&new[saved.len()..])
        } else {
            OutputChange::Replace(new)
        }
    }
}

/// What the agent should do next, decided from its persisted state alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Nothing: the run is not active.
    Idle,
    /// Ask the model for the blueprint.
    Plan,
    /// Work on phase `i` (start it, or continue where it was).
    Phase(usize),
    /// Continue the chat edit in progress.
    Edit,
    /// Start applying the first queued message.
    NextMessage,
    /// Everything is done: end the run.
    Finish,
}

impl Default for RunState {
    fn default() -> Self {
        Self {
            status: RunStatus::Idle,
            prompt: None,
            blueprint: None,
            phases: Vec::new(),
            current_phase: None,
            phase_details: BTreeMap::new(),
            planned_without_detail: Default::default(),
            files: BTreeMap::new(),
            preview_url: None,
            app_id: AppId::default(),
            user_id: UserId::default(),
            origin: None,
            config: None,
            queue: Vec::new(),
            edit: None,
            attempt: BTreeMap::new(),
            unit_output: String::new(),
            pending_write: None,
            hold_phases: false,
            version: 0,
            phase_written: BTreeMap::new(),
            usage: Vec::new(),
            ticket: None,
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
        self.phase_details.clear();
        self.planned_without_detail.clear();
        self.phase_written.clear();
        self.usage.clear();
        self.edit = None;
        self.begin_unit();
        self.hold_phases = false;
    }

    /// Counts a model call in the run's per-model totals.
    pub fn record_usage(&mut self, call: &CallUsage) {
        add_usage(&mut self.usage, call);
    }

    /// The files phase `i`'s plan names: its detailed plan once made, else the blueprint's.
    pub fn planned_files(&self, i: usize) -> Vec<String> {
        match self.phase_details.get(&i) {
            Some(d) => d.files.iter().map(|f| f.path.clone()).collect(),
            None => self
                .blueprint
                .as_ref()
                .and_then(|b| b.phases.get(i))
                .map(|p| p.files.clone())
                .unwrap_or_default(),
        }
    }

    /// A new unit of work (a phase's implementation, a correction round, an edit) begins: its
    /// output starts empty.
    pub fn begin_unit(&mut self) {
        self.attempt.clear();
        self.unit_output.clear();
    }

    /// Whether work is pending (running here, or to be resumed by the alarm).
    pub fn is_active(&self) -> bool {
        matches!(self.status, RunStatus::Planning | RunStatus::Generating)
    }

    /// Whether a follow-up message edits the existing app (rather than planning a new one).
    pub fn has_app(&self) -> bool {
        self.blueprint.is_some() && !self.files.is_empty()
    }

    /// A follow-up message: queued behind the current work, or starting an edit of an idle app
    /// (planned phases then wait for `resume`). `Err` when the queue is full.
    pub fn enqueue(&mut self, message: &str) -> Result<(), String> {
        if self.queue.len() >= MAX_QUEUED_MESSAGES {
            return Err(format!(
                "{MAX_QUEUED_MESSAGES} messages are already waiting; send more when they are done"
            ));
        }
        if !self.is_active() {
            self.status = RunStatus::Generating;
            self.hold_phases = true;
        }
        self.queue.push(message.to_string());
        Ok(())
    }

    /// `stop`: the run halts where it is (its unit of work resumes from there). `false` when
    /// there was nothing to stop.
    pub fn stop(&mut self) -> bool {
        if !self.is_active() {
            return false;
        }
        self.status = RunStatus::Stopped;
        true
    }

    /// `resume`: a stopped run goes on, planned phases included. `Err` says why it cannot.
    pub fn resume(&mut self) -> Result<(), String> {
        match self.status {
            RunStatus::Stopped => {
                self.status = if self.blueprint.is_some() {
                    RunStatus::Generating
                } else {
                    RunStatus::Planning
                };
                self.hold_phases = false;
                Ok(())
            }
            RunStatus::Planning | RunStatus::Generating => Err("the run is already going".into()),
            RunStatus::Idle => Err("nothing to resume: no generation has run yet".into()),
            RunStatus::Complete => Err("nothing to resume: the app is complete".into()),
            RunStatus::Failed => Err(
                "the last run failed and cannot be resumed; send a message to fix it or generate again"
                    .into(),
            ),
        }
    }

    /// The next unit of work. A unit in flight goes first; queued messages wait for it, then go
    /// before phases not yet started.
    pub fn next_work(&self) -> Work {
        if !self.is_active() {
            return Work::Idle;
        }
        if self.status == RunStatus::Planning || self.blueprint.is_none() {
            return Work::Plan;
        }
        if self.edit.as_ref().is_some_and(|e| !e.status.is_terminal()) {
            return Work::Edit;
        }
        if let Some(i) = self
            .phases
            .iter()
            .position(|p| !p.is_terminal() && *p != PhaseStatus::Planned)
        {
            return Work::Phase(i);
        }
        if !self.queue.is_empty() {
            return Work::NextMessage;
        }
        if !self.hold_phases {
            if let Some(i) = self.phases.iter().position(|p| *p == PhaseStatus::Planned) {
                return Work::Phase(i);
            }
        }
        Work::Finish
    }

    /// The run is done: complete when every phase ended, else stopped (planned phases wait for
    /// `resume`).
    pub fn finished_status(&self) -> RunStatus {
        if self.phases.iter().all(PhaseStatus::is_terminal) {
            RunStatus::Complete
        } else {
            RunStatus::Stopped
        }
    }

    /// Takes the first queued message as the edit in progress.
    pub fn start_next_edit(&mut self) -> Option<&EditState> {
        if self.queue.is_empty() {
            return None;
        }
        let message = self.queue.remove(0);
        let hashes = self.file_hashes();
        if let Some(job) = &mut self.ticket {
            job.edit_started(&message, hashes);
        }
        self.edit = Some(EditState {
            message,
            status: PhaseStatus::Planned,
        });
        self.edit.as_ref()
    }

    /// Every file's content hash (path → hash).
    pub fn file_hashes(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .map(|(p, f)| (p.clone(), f.hash.clone()))
            .collect()
    }

    /// Takes an app whose files were saved elsewhere (a repository imported for a project) as
    /// this agent's app: a plan without phases, titled `title`, at saved version `version`, so
    /// follow-up edits (a ticket's) apply to it with the usual checks. The files themselves are
    /// committed by the caller ([`RunState::record_write`] with each).
    pub fn adopt(&mut self, title: &str, version: u32) {
        self.blueprint = Some(Blueprint {
            title: title.to_string(),
            description: format!("{title}: an existing app, imported"),
            template: crate::domain::templates::DEFAULT.to_string(),
            frameworks: Vec::new(),
            files: Vec::new(),
            phases: Vec::new(),
        });
        self.phases.clear();
        self.version = self.version.max(version);
        if !self.is_active() {
            self.status = RunStatus::Complete;
        }
    }

    /// A ticket's implementation: its request queued as a follow-up edit, the job kept with the
    /// run. `Err` when the agent is busy (a run, queued messages or another ticket's job),
    /// since the job's changes must be its edit's alone.
    pub fn enqueue_ticket(&mut self, job: TicketJob) -> Result<(), String> {
        if self.ticket.is_some() {
            return Err(
                "the app's agent is still working on a ticket; wait until it is done".into(),
            );
        }
        if self.is_active() || !self.queue.is_empty() {
            return Err(
                "the app's agent is busy (generating or editing); implement the ticket when it is idle"
                    .into(),
            );
        }
        self.enqueue(&job.request)?;
        self.ticket = Some(job);
        Ok(())
    }

    /// The plan is accepted: every phase planned, generation begins.
    pub fn planned(&mut self, b: Blueprint) {
        self.phases = vec![PhaseStatus::Planned; b.phases.len()];
        self.blueprint = Some(b);
        self.status = RunStatus::Generating;
    }

    /// Records a written file; returns its content hash. A phase in progress (not an edit)
    /// counts it as one of its written files.
    pub fn record_write(&mut self, path: &str, content: &str) -> String {
        let hash = content_hash(content);
        let editing = self.edit.as_ref().is_some_and(|e| !e.status.is_terminal());
        if let (Some(i), false) = (self.current_phase, editing) {
            let written = self.phase_written.entry(i).or_default();
            if !written.iter().any(|p| p == path) {
                written.push(path.to_string());
            }
        }
        self.attempt.insert(path.to_string(), Some(hash.clone()));
        self.files.insert(
            path.to_string(),
            WrittenFile {
                hash: hash.clone(),
                bytes: content.len() as u64,
            },
        );
        hash
    }

    pub fn record_delete(&mut self, path: &str) {
        self.attempt.insert(path.to_string(), None);
        self.files.remove(path);
    }

    /// What a (re)connecting client sees.
    pub fn snapshot(&self, app_id: &str, last_event_id: u64) -> StateSnapshot {
        let phases = match &self.blueprint {
            Some(b) => b
                .phases
                .iter()
                .zip(self.phases.iter())
                .enumerate()
                .map(|(i, (p, s))| PhaseSummary {
                    name: p.name.clone(),
                    kind: p.kind,
                    status: *s,
                    planned_files: self.planned_files(i),
                    written_files: self.phase_written.get(&i).cloned().unwrap_or_default(),
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
            editing: self
                .edit
                .as_ref()
                .filter(|e| !e.status.is_terminal())
                .map(|e| e.message.clone()),
            queued_messages: self.queue.len() as u32,
            version: self.version,
            usage: self.usage.clone(),
            last_event_id,
        }
    }
}

/// `ev` as it goes out now: a preview address in it (a `state` snapshot's, a `preview_ready`'s)
/// replaced by `fresh`, minted when sent (a stored one carries a token that expires). A
/// snapshot without an address keeps none.
pub fn with_fresh_preview(ev: AgentEvent, fresh: Option<&str>) -> AgentEvent {
    match (ev, fresh) {
        (AgentEvent::State(mut snap), Some(url)) if snap.preview_url.is_some() => {
            snap.preview_url = Some(url.to_string());
            AgentEvent::State(snap)
        }
        (AgentEvent::PreviewReady { .. }, Some(url)) => AgentEvent::PreviewReady {
            url: url.to_string(),
        },
        (ev, _) => ev,
    }
}

/// A stored event's JSON as it is replayed now: a `preview_ready` gets `fresh` (see
/// [`with_fresh_preview`]); anything else is returned as it is.
pub fn replay_with_fresh_preview(json: String, fresh: Option<&str>) -> String {
    let Some(url) = fresh else { return json };
    if !json.contains("\"preview_ready\"") {
        return json;
    }
    match serde_json::from_str::<AgentEvent>(&json) {
        Ok(ev @ AgentEvent::PreviewReady { .. }) => with_fresh_preview(ev, Some(url)).to_json(),
        _ => json,
    }
}

/// Where a version's file content lives in R2 (content-addressed per app).
pub fn blob_key(app_id: &str, hash: &str) -> String {
    format!("apps/{app_id}/blobs/{hash}")
}

/// The R2 prefix of an app's version manifests; zero-padded numbers list in order.
pub fn versions_prefix(app_id: &str) -> String {
    format!("apps/{app_id}/versions/")
}

/// Where version `n`'s manifest lives in R2.
pub fn version_key(app_id: &str, n: u32) -> String {
    format!("{}{n:08}.json", versions_prefix(app_id))
}

/// One file of a saved version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionFile {
    pub path: String,
    /// The content's SHA-256 (hex): its blob's key ([`blob_key`]).
    pub hash: String,
    pub bytes: u64,
}

/// A saved version of an app's files, as stored in R2 at [`version_key`]: written by the code
/// generator and read by the versions routes through this one type. Its summary also goes in the
/// object's custom metadata ([`VersionManifest::metadata`]), so listing needs no object reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionManifest {
    pub app_id: String,
    pub version: u32,
    pub label: String,
    /// Epoch milliseconds.
    pub created_at: i64,
    pub files: Vec<VersionFile>,
}

/// A version as listed (from the manifest's custom metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionSummary {
    pub version: u32,
    pub label: Option<String>,
    pub created_at: Option<i64>,
    pub files: Option<u64>,
}

impl VersionManifest {
    pub fn new(
        app_id: &str,
        version: u32,
        label: &str,
        created_at: i64,
        files: &BTreeMap<String, WrittenFile>,
    ) -> Self {
        Self {
            app_id: app_id.into(),
            version,
            label: label.into(),
            created_at,
            files: files
                .iter()
                .map(|(path, f)| VersionFile {
                    path: path.clone(),
                    hash: f.hash.clone(),
                    bytes: f.bytes,
                })
                .collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("a version manifest is malformed: {e}"))
    }

    /// The hash of `path` in this version (only well-formed hashes).
    pub fn hash_of(&self, path: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.hash.as_str())
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// The summary stored as the object's custom metadata.
    pub fn metadata(&self) -> std::collections::HashMap<String, String> {
        [
            ("version".to_string(), self.version.to_string()),
            ("label".to_string(), self.label.clone()),
            ("createdAt".to_string(), self.created_at.to_string()),
            ("files".to_string(), self.files.len().to_string()),
        ]
        .into()
    }

    /// Reads a summary back from custom metadata; `None` for an object that is not a version.
    pub fn summary(meta: &std::collections::HashMap<String, String>) -> Option<VersionSummary> {
        let num = |k: &str| meta.get(k).and_then(|v| v.parse::<i64>().ok());
        Some(VersionSummary {
            version: meta.get("version")?.parse().ok()?,
            label: meta.get("label").cloned(),
            created_at: num("createdAt"),
            files: num("files").map(|n| n as u64),
        })
    }
}

/// SHA-256 of `s`, as 64 hex digits: a file version's identity and its content's R2 key.
pub fn content_hash(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(64);
    for b in d {
        out.push_str(&format!("{b:02x}"));
    }
    out
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

    #[test]
    fn preview_addresses_are_minted_when_sent() {
        let mut st = RunState {
            preview_url: Some("http://a.preview.test/?t=old".into()),
            ..RunState::default()
        };
        let fresh = Some("http://a.preview.test/?t=new");
        let ev = with_fresh_preview(AgentEvent::State(st.snapshot("a", 1)), fresh);
        let AgentEvent::State(snap) = ev else {
            panic!()
        };
        assert_eq!(snap.preview_url.as_deref(), fresh);
        st.preview_url = None;
        let AgentEvent::State(snap) =
            with_fresh_preview(AgentEvent::State(st.snapshot("a", 1)), fresh)
        else {
            panic!()
        };
        assert_eq!(snap.preview_url, None, "no preview yet: none invented");
        let stored = AgentEvent::PreviewReady {
            url: "http://a.preview.test/?t=old".into(),
        }
        .to_json();
        let replayed = replay_with_fresh_preview(stored.clone(), fresh);
        assert!(
            replayed.contains("t=new") && !replayed.contains("t=old"),
            "{replayed}"
        );
        assert_eq!(replay_with_fresh_preview(stored.clone(), None), stored);
        let other = AgentEvent::Done {
            status: super::super::events::RunOutcome::Completed,
        }
        .to_json();
        assert_eq!(replay_with_fresh_preview(other.clone(), fresh), other);
    }

    #[test]
    fn an_adopted_app_takes_follow_up_edits() {
        let mut st = RunState::default();
        assert!(!st.has_app());
        st.adopt("shop", 1);
        st.record_write("src/App.tsx", "x");
        assert!(st.has_app());
        assert_eq!((st.status, st.version), (RunStatus::Complete, 1));
        assert_eq!(st.finished_status(), RunStatus::Complete, "no phase waits");
        st.enqueue("change it").unwrap();
        assert_eq!(st.next_work(), Work::NextMessage);
        st.start_next_edit();
        assert_eq!(st.next_work(), Work::Edit);
    }

    #[test]
    fn unit_output_is_stored_by_appending() {
        assert_eq!(OutputChange::between("ab", "ab"), OutputChange::Unchanged);
        assert_eq!(OutputChange::between("", ""), OutputChange::Unchanged);
        assert_eq!(
            OutputChange::between("ab", "abcd"),
            OutputChange::Append("cd")
        );
        assert_eq!(OutputChange::between("", "x"), OutputChange::Append("x"));
        assert_eq!(
            OutputChange::between("ab", "xbcd"),
            OutputChange::Replace("xbcd")
        );
        assert_eq!(OutputChange::between("abc", ""), OutputChange::Replace(""));
        assert_eq!(
            OutputChange::between("abc", "ab"),
            OutputChange::Replace("ab")
        );
    }

    #[test]
    fn scratch_fields_are_not_in_the_state_json_but_old_states_still_load() {
        let st = RunState {
            unit_output: "out".into(),
            pending_write: Some("a.ts".into()),
            ..RunState::default()
        };
        let json = serde_json::to_string(&st).unwrap();
        assert!(
            !json.contains("unitOutput") && !json.contains("pendingWrite"),
            "{json}"
        );
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["unitOutput"] = "legacy".into();
        v["pendingWrite"] = "b.ts".into();
        let old: RunState = serde_json::from_value(v).unwrap();
        assert_eq!(old.unit_output, "legacy");
        assert_eq!(old.pending_write.as_deref(), Some("b.ts"));
    }
    use crate::domain::codegen::blueprint::{validate, PhaseKind};
    use crate::domain::codegen::diff::UnifiedDiff;
    use crate::domain::codegen::files_format::parse_all;
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
    fn r2_keys_sort_versions_in_order() {
        assert_eq!(blob_key("app_1", "ab"), "apps/app_1/blobs/ab");
        assert_eq!(version_key("app_1", 7), "apps/app_1/versions/00000007.json");
        assert!(version_key("app_1", 9) < version_key("app_1", 10));
        assert!(version_key("app_1", 3).starts_with(&versions_prefix("app_1")));
    }

    #[test]
    fn hashes_differ_by_content() {
        assert_eq!(
            content_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(content_hash("a"), content_hash("b"));
        assert_eq!(content_hash("a"), content_hash("a"));
    }

    #[test]
    fn work_follows_the_persisted_state() {
        let mut st = RunState::default();
        assert_eq!(st.next_work(), Work::Idle);
        st.start("p");
        assert_eq!(st.next_work(), Work::Plan);
        st.planned(blueprint());
        assert_eq!(st.next_work(), Work::Phase(0));
        st.phases[0] = PhaseStatus::Implementing;
        // A message waits for the phase in flight, then goes before the next phase.
        st.enqueue("make it blue").unwrap();
        assert_eq!(st.next_work(), Work::Phase(0));
        st.phases[0] = PhaseStatus::Complete;
        assert_eq!(st.next_work(), Work::NextMessage);
        assert_eq!(st.start_next_edit().unwrap().message, "make it blue");
        assert_eq!(st.next_work(), Work::Edit);
        assert_eq!(st.snapshot("a", 0).editing.as_deref(), Some("make it blue"));
        st.edit.as_mut().unwrap().status = PhaseStatus::Complete;
        assert_eq!(st.next_work(), Work::Phase(1));
        st.phases[1] = PhaseStatus::Validating { corrections: 1 };
        assert_eq!(st.next_work(), Work::Phase(1));
        st.phases[1] = PhaseStatus::Complete;
        assert_eq!(st.next_work(), Work::Finish);
        assert_eq!(st.finished_status(), RunStatus::Complete);
    }

    #[test]
    fn stop_resume_and_messages_to_an_idle_app() {
        let mut st = RunState::default();
        assert!(!st.stop());
        assert!(st.resume().unwrap_err().contains("no generation"));
        st.start("p");
        st.planned(blueprint());
        st.phases[0] = PhaseStatus::Implementing;
        assert!(st.stop());
        assert_eq!(st.status, RunStatus::Stopped);
        assert_eq!(st.next_work(), Work::Idle);
        // A message to the stopped app edits it; the planned phases wait.
        st.record_write("src/App.tsx", "x");
        assert!(st.has_app());
        st.enqueue("fix the title").unwrap();
        assert!(st.is_active() && st.hold_phases);
        assert_eq!(
            st.next_work(),
            Work::Phase(0),
            "the interrupted phase first"
        );
        st.phases[0] = PhaseStatus::Complete;
        assert_eq!(st.next_work(), Work::NextMessage);
        st.start_next_edit();
        st.edit.as_mut().unwrap().status = PhaseStatus::Complete;
        assert_eq!(st.next_work(), Work::Finish);
        assert_eq!(st.finished_status(), RunStatus::Stopped);
        st.status = st.finished_status();
        // Resume releases them.
        st.resume().unwrap();
        assert_eq!(st.status, RunStatus::Generating);
        assert_eq!(st.next_work(), Work::Phase(1));
        assert!(st.resume().unwrap_err().contains("already"));
        st.status = RunStatus::Failed;
        assert!(st.resume().is_err());
        for i in 0..MAX_QUEUED_MESSAGES {
            st.enqueue(&format!("m{i}")).unwrap();
        }
        assert!(st.enqueue("one more").is_err());
    }

    #[test]
    fn a_version_manifest_round_trips_with_its_summary() {
        let mut st = RunState::default();
        st.record_write("src/a.ts", "a");
        let m = VersionManifest::new("app_1", 3, "UI", 42, &st.files);
        let back = VersionManifest::parse(m.to_json().as_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.hash_of("src/a.ts"), Some(content_hash("a").as_str()));
        assert_eq!(back.hash_of("src/b.ts"), None);
        let s = VersionManifest::summary(&m.metadata()).unwrap();
        assert_eq!((s.version, s.created_at, s.files), (3, Some(42), Some(1)));
        assert!(VersionManifest::parse(b"{}").is_err());
    }
}
