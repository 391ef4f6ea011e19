//! Every message between the code-generation agent and its clients, defined once: the events the
//! agent emits (the same JSON over Server-Sent Events and over the WebSocket) and the commands a
//! client sends on the WebSocket, plus the body of `POST /api/agent/chat/:appId`.
//!
//! Invariants:
//! - an event's JSON carries its kind in `type`, and that is also its SSE event name
//!   ([`AgentEvent::sse_name`]), so one client parser serves both transports;
//! - command parsing rejects unknown command types and unknown fields with a field-level 400
//!   ([`ApiError`]), so a typo is an error, never a silent no-op.

use super::super::error::{ApiError, ApiResult, ErrorCode};
use super::super::input::{parse_object, JsonObject, Patch};
use super::blueprint::PhaseKind;
use super::models::{ModelOverride, Operation, Provider};
use super::phase::PhaseStatus;
use super::sse;
use crate::domain::deploy::pipeline::DeployStep;
use byte_protocol::Diagnostic;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Longest prompt or chat message accepted, in characters.
pub const MAX_PROMPT_CHARS: usize = 10_000;

/// Largest WebSocket message a client may send, in bytes (a command with the longest prompt in
/// four-byte characters and a model override fits). A larger one is refused and the socket
/// closed with [`CLOSE_TOO_BIG`].
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Stored events an app keeps for replay (a client that missed more starts from the `state`
/// snapshot).
pub const KEPT_EVENTS: u64 = 5_000;

/// Storage is pruned every this many stored events, so an app never holds more than
/// `KEPT_EVENTS + PRUNE_EVERY` events, however long a run goes.
pub const PRUNE_EVERY: u64 = 100;

/// After storing the event numbered `seq`: the number up to which (inclusive) older events are
/// deleted, when a prune is due.
pub fn prune_through(seq: u64) -> Option<u64> {
    (seq.is_multiple_of(PRUNE_EVERY) && seq > KEPT_EVENTS).then(|| seq - KEPT_EVENTS)
}

/// Largest `received` an `ack` may carry (2^53 − 1, exact in JavaScript).
pub const MAX_ACK: u64 = (1 << 53) - 1;

/// RFC 6455's close code for a message too big to process.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// Refuses a client message over [`MAX_COMMAND_BYTES`] (413 E004), before it is parsed.
pub fn check_command_size(len: usize) -> ApiResult<()> {
    if len > MAX_COMMAND_BYTES {
        return Err(ApiError::new(
            413,
            ErrorCode::E004,
            format!("message of {len} bytes exceeds the limit of {MAX_COMMAND_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// How a generation run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Completed,
    Stopped,
    Failed,
}

/// What the agent is doing, for clients that (re)connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Idle,
    Planning,
    Generating,
    Stopped,
    Complete,
    Failed,
}

/// A blueprint phase as clients see it: where it is, the files its plan names and the files it
/// wrote so far (its progress is how many of the planned ones are written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseSummary {
    pub name: String,
    pub kind: PhaseKind,
    /// Flattened: `"status": "correcting", "round": 2`.
    #[serde(flatten)]
    pub status: PhaseStatus,
    /// The files the phase's plan names (its detailed plan once made, else the blueprint's).
    #[serde(default)]
    pub planned_files: Vec<String>,
    /// The files the phase (its correction rounds included) wrote, in order, each once.
    #[serde(default)]
    pub written_files: Vec<String>,
}

/// What one successful model call of the run used: the tokens the provider reported (or the
/// client's estimate when it reported none) and the model that answered (the fallback, if the
/// primary failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallUsage {
    #[schema(schema_with = operation_schema)]
    pub operation: Operation,
    #[schema(schema_with = provider_schema)]
    pub provider: Provider,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// The tokens one model used so far in the current run (since the last `generate`), over all
/// of its calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    #[schema(schema_with = provider_schema)]
    pub provider: Provider,
    pub model: String,
    pub calls: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// Adds one call to a run's per-model totals (a model's first call appends its row).
pub fn add_usage(totals: &mut Vec<ModelUsage>, call: &CallUsage) {
    match totals
        .iter_mut()
        .find(|m| m.provider == call.provider && m.model == call.model)
    {
        Some(m) => {
            m.calls = m.calls.saturating_add(1);
            m.prompt_tokens = m.prompt_tokens.saturating_add(call.prompt_tokens);
            m.completion_tokens = m.completion_tokens.saturating_add(call.completion_tokens);
            m.total_tokens = m.total_tokens.saturating_add(call.total_tokens);
        }
        None => totals.push(ModelUsage {
            provider: call.provider,
            model: call.model.clone(),
            calls: 1,
            prompt_tokens: call.prompt_tokens,
            completion_tokens: call.completion_tokens,
            total_tokens: call.total_tokens,
        }),
    }
}

fn string_enum(values: Vec<&'static str>) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values))
        .build()
}

fn provider_schema() -> utoipa::openapi::Object {
    string_enum(Provider::ALL.map(Provider::as_str).to_vec())
}

fn operation_schema() -> utoipa::openapi::Object {
    string_enum(Operation::ALL.map(Operation::as_str).to_vec())
}

fn error_code_schema() -> utoipa::openapi::Ref {
    utoipa::openapi::Ref::from_schema_name("ErrorCode")
}

fn model_override_schema() -> utoipa::openapi::Ref {
    utoipa::openapi::Ref::from_schema_name("ModelOverride")
}

fn diagnostics_schema() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("Diagnostic"))
        .build()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileSummary {
    pub path: String,
    pub bytes: u64,
}

/// Everything a reconnecting client needs to draw the current state before live events resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateSnapshot {
    pub app_id: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub phases: Vec<PhaseSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_phase: Option<String>,
    /// The app's files (contents are fetched separately; they can be large).
    pub files: Vec<FileSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
    /// The follow-up message being applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub editing: Option<String>,
    /// Chat messages waiting for the running phase to finish.
    pub queued_messages: u32,
    /// The app's saved version (one per completed phase or edit; 0 before the first).
    #[serde(default)]
    pub version: u32,
    /// The tokens each model used so far in the current run (since the last `generate`).
    #[serde(default)]
    pub usage: Vec<ModelUsage>,
    /// The id of the last event sent before this snapshot (SSE `Last-Event-ID` resumes after it).
    pub last_event_id: u64,
}

fn de_code<'de, D: Deserializer<'de>>(d: D) -> Result<ErrorCode, D::Error> {
    let s = String::deserialize(d)?;
    Ok(match s.as_str() {
        "E000" => ErrorCode::E000,
        "E001" => ErrorCode::E001,
        "E002" => ErrorCode::E002,
        "E003" => ErrorCode::E003,
        "E004" => ErrorCode::E004,
        "E005" => ErrorCode::E005,
        "E006" => ErrorCode::E006,
        "E007" => ErrorCode::E007,
        other => {
            return Err(serde::de::Error::custom(format!(
                "unknown error code {other:?}"
            )))
        }
    })
}

/// An event from the agent to its clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// A phase (or `planning`) began.
    PhaseStart {
        phase: String,
        message: String,
    },
    /// A phase's plan was made (right after its `phase_start`): the files it will write.
    PhasePlanned {
        phase: String,
        files: Vec<String>,
    },
    /// More of a file being written, for live display.
    FileChunk {
        path: String,
        chunk: String,
    },
    /// A file was written in full (a whole-file block, or a diff applied).
    FileGenerated {
        path: String,
        content: String,
    },
    /// A file was deleted.
    FileDeleted {
        path: String,
    },
    PhaseComplete {
        phase: String,
        message: String,
    },
    /// `code` is the spec's (`E005` for AI generation failures); `recoverable` says whether the
    /// run continues.
    Error {
        #[serde(deserialize_with = "de_code")]
        #[schema(schema_with = error_code_schema)]
        code: ErrorCode,
        message: String,
        recoverable: bool,
    },
    PreviewReady {
        url: String,
    },
    /// The run ended.
    Done {
        status: RunOutcome,
    },
    /// The current state, sent first to every (re)connecting client.
    State(StateSnapshot),
    /// A model call of the run finished: what it used (the snapshot's `usage` sums them).
    Usage(CallUsage),
    /// A deployment of the app began (`deployment` is its number in the app's history).
    DeployStarted {
        deployment: u32,
    },
    /// A deployment reached a step.
    DeployProgress {
        deployment: u32,
        step: DeployStep,
    },
    /// A deployment is live at `url`.
    DeployComplete {
        deployment: u32,
        url: String,
    },
    /// A deployment failed (`E007`); nothing was published and the previous one keeps serving.
    /// `errors` are the build's structured errors, if the build failed.
    DeployFailed {
        deployment: u32,
        #[serde(deserialize_with = "de_code")]
        #[schema(schema_with = error_code_schema)]
        code: ErrorCode,
        message: String,
        #[serde(default)]
        #[schema(schema_with = diagnostics_schema)]
        errors: Vec<Diagnostic>,
    },
}

impl AgentEvent {
    /// The SSE `event:` name, equal to the JSON `type`.
    pub fn sse_name(&self) -> &'static str {
        match self {
            AgentEvent::PhaseStart { .. } => "phase_start",
            AgentEvent::PhasePlanned { .. } => "phase_planned",
            AgentEvent::FileChunk { .. } => "file_chunk",
            AgentEvent::FileGenerated { .. } => "file_generated",
            AgentEvent::FileDeleted { .. } => "file_deleted",
            AgentEvent::PhaseComplete { .. } => "phase_complete",
            AgentEvent::Error { .. } => "error",
            AgentEvent::PreviewReady { .. } => "preview_ready",
            AgentEvent::Done { .. } => "done",
            AgentEvent::State(_) => "state",
            AgentEvent::Usage(_) => "usage",
            AgentEvent::DeployStarted { .. } => "deploy_started",
            AgentEvent::DeployProgress { .. } => "deploy_progress",
            AgentEvent::DeployComplete { .. } => "deploy_complete",
            AgentEvent::DeployFailed { .. } => "deploy_failed",
        }
    }

    /// An error event carrying an API error's code and message.
    pub fn from_error(e: &ApiError, recoverable: bool) -> Self {
        AgentEvent::Error {
            code: e.code,
            message: e.message.clone(),
            recoverable,
        }
    }

    /// The JSON sent on the WebSocket (and as SSE data).
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// One SSE frame.
    pub fn to_sse(&self) -> String {
        sse::encode_event(self.sse_name(), &self.to_json())
    }

    /// One SSE frame with an id, for `Last-Event-ID` resumption.
    pub fn to_sse_with_id(&self, id: u64) -> String {
        sse::encode_event_with_id(id, self.sse_name(), &self.to_json())
    }
}

/// A command from a WebSocket client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientCommand {
    /// Start generating (from `prompt`, or from the app's saved prompt when absent).
    Generate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = model_override_schema)]
        config: Option<ModelOverride>,
    },
    Stop,
    Resume,
    /// A follow-up chat message (queued while a phase runs).
    Message {
        text: String,
    },
    /// Ask for the preview (answered with `preview_ready`).
    Preview,
    /// How many messages the client has received on this socket so far (counting every one,
    /// the `state` and replay included): the server's bound on unacknowledged messages
    /// ([`super::socket_fanout`]) is measured from it. Never answered.
    Ack {
        received: u64,
    },
}

#[derive(Debug, Clone, Copy)]
enum CommandType {
    Generate,
    Stop,
    Resume,
    Message,
    Preview,
    Ack,
}

const COMMAND_TYPES: &[(&str, CommandType)] = &[
    ("generate", CommandType::Generate),
    ("stop", CommandType::Stop),
    ("resume", CommandType::Resume),
    ("message", CommandType::Message),
    ("preview", CommandType::Preview),
    ("ack", CommandType::Ack),
];

/// Takes an optional `config` object, folding its field errors into `o` as `config.field`.
fn take_config(o: &mut JsonObject) -> Option<ModelOverride> {
    match o.take_raw("config") {
        Patch::Value(v) => match ModelOverride::parse_prefixed(&v, "config") {
            Ok(c) => Some(c),
            Err(e) => {
                for (k, m) in e.fields {
                    o.error(&k, m);
                }
                None
            }
        },
        Patch::Null | Patch::Absent => None,
    }
}

fn prompt_text(o: &mut JsonObject, field: &str, required: bool) -> Option<String> {
    if required {
        return o.required_string(field, MAX_PROMPT_CHARS);
    }
    match o.string(field, MAX_PROMPT_CHARS) {
        Patch::Value(s) if s.is_empty() => {
            o.error(
                field,
                "must not be empty (omit it to reuse the app's prompt)",
            );
            None
        }
        Patch::Value(s) => Some(s),
        Patch::Null | Patch::Absent => None,
    }
}

/// Parses one WebSocket text message.
pub fn parse_command(text: &str) -> ApiResult<ClientCommand> {
    let mut o = parse_object(text.as_bytes())?;
    let Patch::Value(kind) = o.enumeration("type", COMMAND_TYPES) else {
        // `enumeration` has recorded why if the value was bad (the first message wins);
        // otherwise it was missing. The payload fields are not "unknown": their command is.
        o.error("type", "is required");
        for f in ["prompt", "config", "text", "received"] {
            let _ = o.take_raw(f);
        }
        return Err(match o.finish() {
            Err(e) => e,
            Ok(()) => ApiError::field("type", "is required"),
        });
    };
    let cmd = match kind {
        CommandType::Generate => ClientCommand::Generate {
            prompt: prompt_text(&mut o, "prompt", false),
            config: take_config(&mut o),
        },
        CommandType::Stop => ClientCommand::Stop,
        CommandType::Resume => ClientCommand::Resume,
        CommandType::Preview => ClientCommand::Preview,
        CommandType::Message => ClientCommand::Message {
            text: prompt_text(&mut o, "text", true).unwrap_or_default(),
        },
        CommandType::Ack => {
            let received = o.integer("received", 0, MAX_ACK);
            if received.is_none() {
                // A bad value has recorded why already (the first message wins).
                o.error("received", "is required");
            }
            ClientCommand::Ack {
                received: received.unwrap_or_default(),
            }
        }
    };
    o.finish()?;
    Ok(cmd)
}

/// The body of `POST /api/agent/chat/:appId`: `{"message": "...", "config": {...}?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StartChat {
    pub message: String,
    pub config: Option<ModelOverride>,
}

pub fn parse_start_chat(body: &[u8]) -> ApiResult<StartChat> {
    let mut o = parse_object(body)?;
    let message = prompt_text(&mut o, "message", true);
    let config = take_config(&mut o);
    o.finish()?;
    Ok(StartChat {
        message: message.unwrap_or_default(),
        config,
    })
}

/// Reads an event back from its JSON (clients, tests and the integration suite).
pub fn parse_event(json: &str) -> Result<AgentEvent, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    serde_json::from_value(v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_events_stay_bounded_while_written() {
        let mut stored = std::collections::BTreeSet::new();
        let mut most = 0;
        for seq in 1..=23_456u64 {
            stored.insert(seq);
            if let Some(upto) = prune_through(seq) {
                stored.retain(|s| *s > upto);
            }
            most = most.max(stored.len() as u64);
            // The newest KEPT_EVENTS are always there.
            let oldest_needed = seq.saturating_sub(KEPT_EVENTS - 1).max(1);
            assert!(*stored.first().unwrap() <= oldest_needed, "at {seq}");
        }
        assert!(most <= KEPT_EVENTS + PRUNE_EVERY, "{most}");
        assert!(most > KEPT_EVENTS, "pruning is batched, not per event");
        assert_eq!(prune_through(KEPT_EVENTS), None);
        assert_eq!(prune_through(KEPT_EVENTS + PRUNE_EVERY), Some(PRUNE_EVERY));
    }

    #[test]
    fn oversized_commands_are_refused_before_parsing() {
        assert!(check_command_size(MAX_COMMAND_BYTES).is_ok());
        let e = check_command_size(MAX_COMMAND_BYTES + 1).unwrap_err();
        assert_eq!((e.status, e.code), (413, ErrorCode::E004));
        assert!(
            e.message.contains("exceeds the limit of 65536 bytes"),
            "{}",
            e.message
        );
        // The longest legal command fits.
        let longest = json!({
            "type": "generate",
            "prompt": "✓".repeat(MAX_PROMPT_CHARS),
            "config": {"provider": "openai", "model": "m".repeat(200)},
        })
        .to_string();
        assert!(
            check_command_size(longest.len()).is_ok(),
            "{}",
            longest.len()
        );
        assert!(parse_command(&longest).is_ok());
    }

    fn snapshot() -> StateSnapshot {
        StateSnapshot {
            app_id: "app_1".into(),
            status: RunStatus::Generating,
            title: Some("Todo".into()),
            phases: vec![
                PhaseSummary {
                    name: "Setup".into(),
                    kind: PhaseKind::Foundation,
                    status: PhaseStatus::Complete,
                    planned_files: vec!["package.json".into()],
                    written_files: vec!["package.json".into()],
                },
                PhaseSummary {
                    name: "UI".into(),
                    kind: PhaseKind::Core,
                    status: PhaseStatus::Correcting { round: 2 },
                    planned_files: vec!["src/App.tsx".into(), "src/a.ts".into()],
                    written_files: vec!["src/App.tsx".into()],
                },
            ],
            current_phase: Some("UI".into()),
            files: vec![FileSummary {
                path: "src/App.tsx".into(),
                bytes: 120,
            }],
            preview_url: None,
            editing: None,
            queued_messages: 1,
            version: 3,
            usage: vec![ModelUsage {
                provider: Provider::Custom,
                model: "qwen".into(),
                calls: 2,
                prompt_tokens: 10,
                completion_tokens: 5,
                total_tokens: 15,
            }],
            last_event_id: 42,
        }
    }

    fn all_events() -> Vec<AgentEvent> {
        vec![
            AgentEvent::PhaseStart {
                phase: "planning".into(),
                message: "Analyzing requirements".into(),
            },
            AgentEvent::FileChunk {
                path: "a".into(),
                chunk: "x".into(),
            },
            AgentEvent::FileGenerated {
                path: "src/App.tsx".into(),
                content: "...".into(),
            },
            AgentEvent::FileDeleted { path: "b".into() },
            AgentEvent::PhaseComplete {
                phase: "planning".into(),
                message: "Blueprint created".into(),
            },
            AgentEvent::Error {
                code: ErrorCode::E005,
                message: "m".into(),
                recoverable: true,
            },
            AgentEvent::PreviewReady {
                url: "http://p".into(),
            },
            AgentEvent::Done {
                status: RunOutcome::Completed,
            },
            AgentEvent::State(snapshot()),
            AgentEvent::PhasePlanned {
                phase: "UI".into(),
                files: vec!["src/App.tsx".into()],
            },
            AgentEvent::Usage(CallUsage {
                operation: Operation::Blueprint,
                provider: Provider::GoogleAiStudio,
                model: "gemini-2.5-pro".into(),
                prompt_tokens: 100,
                completion_tokens: 20,
                total_tokens: 120,
            }),
        ]
    }

    #[test]
    fn usage_adds_up_per_model() {
        let call = |provider, model: &str, t: u64| CallUsage {
            operation: Operation::Implementation,
            provider,
            model: model.into(),
            prompt_tokens: t,
            completion_tokens: t.saturating_mul(2),
            total_tokens: t.saturating_mul(3),
        };
        let mut totals = Vec::new();
        add_usage(&mut totals, &call(Provider::OpenAi, "gpt-5", 1));
        add_usage(&mut totals, &call(Provider::Custom, "gpt-5", 10));
        add_usage(&mut totals, &call(Provider::OpenAi, "gpt-5", 100));
        assert_eq!(
            totals,
            vec![
                ModelUsage {
                    provider: Provider::OpenAi,
                    model: "gpt-5".into(),
                    calls: 2,
                    prompt_tokens: 101,
                    completion_tokens: 202,
                    total_tokens: 303,
                },
                ModelUsage {
                    provider: Provider::Custom,
                    model: "gpt-5".into(),
                    calls: 1,
                    prompt_tokens: 10,
                    completion_tokens: 20,
                    total_tokens: 30,
                },
            ]
        );
        add_usage(&mut totals, &call(Provider::Custom, "gpt-5", u64::MAX));
        assert_eq!(totals[1].total_tokens, u64::MAX, "saturates");
    }

    #[test]
    fn shapes_match_the_spec() {
        let v: Value = serde_json::from_str(
            &AgentEvent::PhaseStart {
                phase: "planning".into(),
                message: "Analyzing requirements".into(),
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"type":"phase_start","phase":"planning","message":"Analyzing requirements"})
        );
        let v: Value = serde_json::from_str(
            &AgentEvent::Error {
                code: ErrorCode::E005,
                message: "model failed".into(),
                recoverable: false,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"type":"error","code":"E005","message":"model failed","recoverable":false})
        );
        let v: Value = serde_json::from_str(&AgentEvent::State(snapshot()).to_json()).unwrap();
        assert_eq!(v["type"], "state");
        assert_eq!(v["appId"], "app_1");
        assert_eq!(v["lastEventId"], 42);
        assert_eq!(
            v["phases"][1],
            json!({"name":"UI","kind":"core","status":"correcting","round":2,
                "plannedFiles":["src/App.tsx","src/a.ts"],"writtenFiles":["src/App.tsx"]})
        );
        assert_eq!(
            v["usage"],
            json!([{"provider":"custom","model":"qwen","calls":2,"promptTokens":10,
                "completionTokens":5,"totalTokens":15}])
        );
        // Snapshots from before the phase file lists and usage existed still read.
        let old: StateSnapshot = serde_json::from_value(json!({
            "appId": "a", "status": "idle", "phases": [{"name":"UI","kind":"core","status":"planned"}],
            "files": [], "queuedMessages": 0, "lastEventId": 0,
        }))
        .unwrap();
        assert!(old.phases[0].planned_files.is_empty() && old.usage.is_empty());
        let v: Value = serde_json::from_str(
            &AgentEvent::Usage(CallUsage {
                operation: Operation::Implementation,
                provider: Provider::OpenAi,
                model: "gpt-5".into(),
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
            })
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"type":"usage","operation":"implementation","provider":"openai","model":"gpt-5",
                "promptTokens":1,"completionTokens":2,"totalTokens":3})
        );
        assert!(v.get("previewUrl").is_none());
        let v: Value = serde_json::from_str(
            &AgentEvent::Done {
                status: RunOutcome::Stopped,
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(v, json!({"type":"done","status":"stopped"}));
    }

    #[test]
    fn sse_names_equal_types_and_events_round_trip() {
        for e in all_events() {
            let json = e.to_json();
            let v: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(v["type"], e.sse_name());
            assert_eq!(parse_event(&json).unwrap(), e);
            // Through an SSE frame and our own parser.
            let mut p = sse::SseParser::new();
            let got = p.feed(e.to_sse_with_id(9).as_bytes()).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].event.as_deref(), Some(e.sse_name()));
            assert_eq!(got[0].id.as_deref(), Some("9"));
            assert_eq!(parse_event(&got[0].data).unwrap(), e);
        }
        assert!(AgentEvent::Done {
            status: RunOutcome::Failed
        }
        .to_sse()
        .starts_with("event: done\ndata: {"));
        assert!(
            parse_event(r#"{"type":"error","code":"E999","message":"m","recoverable":true}"#)
                .is_err()
        );
        assert!(parse_event(r#"{"type":"bogus"}"#).is_err());
    }

    #[test]
    fn error_events_from_api_errors() {
        let e = ApiError::rate_limited("AI requests: 20 per minute; resets in 12s");
        assert_eq!(
            AgentEvent::from_error(&e, false),
            AgentEvent::Error {
                code: ErrorCode::E003,
                message: "AI requests: 20 per minute; resets in 12s".into(),
                recoverable: false
            }
        );
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse_command(r#"{"type":"stop"}"#).unwrap(),
            ClientCommand::Stop
        );
        assert_eq!(
            parse_command(r#"{"type":"resume"}"#).unwrap(),
            ClientCommand::Resume
        );
        assert_eq!(
            parse_command(r#"{"type":"preview"}"#).unwrap(),
            ClientCommand::Preview
        );
        assert_eq!(
            parse_command(r#"{"type":"message","text":"  make it blue "}"#).unwrap(),
            ClientCommand::Message {
                text: "make it blue".into()
            }
        );
        assert_eq!(
            parse_command(r#"{"type":"generate"}"#).unwrap(),
            ClientCommand::Generate {
                prompt: None,
                config: None
            }
        );
        let c = parse_command(
            r#"{"type":"generate","prompt":"a todo app","config":{"model":"claude-sonnet-4.5","temperature":0.7}}"#,
        )
        .unwrap();
        let ClientCommand::Generate { prompt, config } = c else {
            panic!()
        };
        assert_eq!(prompt.as_deref(), Some("a todo app"));
        assert_eq!(config.unwrap().temperature, Some(0.7));
    }

    #[test]
    fn commands_are_rejected_precisely() {
        let e = parse_command(r#"{"type":"explode"}"#).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.fields["type"],
            "must be one of: generate, stop, resume, message, preview, ack"
        );
        let e = parse_command(r#"{"text":"hi"}"#).unwrap_err();
        assert_eq!(e.fields["type"], "is required");
        assert!(
            !e.fields.contains_key("text"),
            "no noise about other fields"
        );
        let e = parse_command(r#"{"type":"stop","force":true}"#).unwrap_err();
        assert_eq!(e.fields["force"], "unknown field");
        let e = parse_command(r#"{"type":"message"}"#).unwrap_err();
        assert_eq!(e.fields["text"], "is required");
        let e = parse_command(r#"{"type":"message","text":"   "}"#).unwrap_err();
        assert_eq!(e.fields["text"], "must not be empty");
        let long = "x".repeat(MAX_PROMPT_CHARS + 1);
        let e = parse_command(&json!({"type":"message","text": long}).to_string()).unwrap_err();
        assert!(e.fields["text"].contains("10000"));
        let e =
            parse_command(r#"{"type":"generate","prompt":"","config":{"temperature":5,"x":1}}"#)
                .unwrap_err();
        assert!(e.fields.contains_key("prompt"));
        assert!(e.fields.contains_key("config.temperature"));
        assert_eq!(e.fields["config.x"], "unknown field");
        let e = parse_command(r#"{"type":"generate","config":[]}"#).unwrap_err();
        assert_eq!(e.fields["config"], "must be an object");
        assert!(parse_command("not json")
            .unwrap_err()
            .message
            .contains("malformed JSON"));
        assert_eq!(
            parse_command(r#"{"type":"ack","received":7}"#).unwrap(),
            ClientCommand::Ack { received: 7 }
        );
        let e = parse_command(r#"{"type":"ack"}"#).unwrap_err();
        assert_eq!(e.fields["received"], "is required");
        let e = parse_command(r#"{"type":"ack","received":-1}"#).unwrap_err();
        assert!(e.fields["received"].contains("integer"), "{e:?}");
        let e = parse_command(r#"{"type":"ack","received":1,"text":"x"}"#).unwrap_err();
        assert_eq!(e.fields["text"], "unknown field");
        assert!(parse_command(r#"{"type":5}"#)
            .unwrap_err()
            .fields
            .contains_key("type"));
    }

    #[test]
    fn commands_round_trip_through_serde() {
        for c in [
            ClientCommand::Stop,
            ClientCommand::Message { text: "t".into() },
            ClientCommand::Ack { received: 42 },
            ClientCommand::Generate {
                prompt: Some("p".into()),
                config: Some(ModelOverride {
                    max_tokens: Some(100),
                    ..Default::default()
                }),
            },
        ] {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(parse_command(&json).unwrap(), c, "{json}");
        }
    }

    #[test]
    fn start_chat_body() {
        let b = parse_start_chat(br#"{"message":"Create a todo list with dark mode","config":{"model":"claude-sonnet-4.5","temperature":0.7}}"#).unwrap();
        assert_eq!(b.message, "Create a todo list with dark mode");
        assert_eq!(
            b.config.unwrap().model.as_deref(),
            Some("claude-sonnet-4.5")
        );
        let e = parse_start_chat(br#"{"config":{"maxTokens":0}}"#).unwrap_err();
        assert_eq!(e.fields["message"], "is required");
        assert!(e.fields.contains_key("config.maxTokens"));
        assert!(parse_start_chat(br#"{"message":"x","stream":true}"#).is_err());
    }
}
