//! A fake OpenAI-compatible chat-completions server on loopback (`POST /v1/chat/completions`),
//! speaking the real wire format: a JSON completion with `usage`, or (with `"stream": true`) SSE
//! `data: {chunk}` lines carrying `choices[0].delta.content`, a final chunk with `usage` when
//! `stream_options.include_usage` is set, then `data: [DONE]`.
//!
//! Behaviour is chosen by markers in the last user message, so concurrent tests never interfere;
//! the code generator's calls are told apart by their model name (one per operation, set through
//! `MODEL_CONFIG`: [`scripted_model_config`]) and never by prompt wording:
//! - `fail-429-once`: the first request with this exact prompt gets 429 with `Retry-After: 1`;
//! - `fail-500-always`: 500 for every model except [`FALLBACK_MODEL`], which answers normally;
//! - `fail-401-always`: 401 for every model, the body quoting the key it was sent (as real
//!   providers do, partly) and an internal detail;
//! - `malformed`: a 200 whose body (or stream chunk) is not JSON;
//! - `truncated`: a stream cut after some content, without a finish reason or `[DONE]`;
//! - `stall`: never answers;
//! - `drip-hang` (streamed): the whole answer's content, then neither a finish nor `[DONE]`: the
//!   stream stays open until the client gives up;
//! - `big-usage`: reports [`BIG_TOTAL`] tokens instead of [`NORMAL_TOTAL`];
//! - `scripted-app`, `scripted-evil`, `scripted-cut`, `scripted-badplan`: the code generator's
//!   calls, answered by [`scripted`] (a blueprint, phase output in the files format, corrections);
//! - `scripted-gate`: as `scripted-app`, with the first phase-2 stream held inside `src/App.tsx`
//!   until the test calls [`release`];
//! - `scripted-restart`: phase 2 writes `src/lib/first.ts`, then the first such request stalls
//!   inside `src/App.tsx` (later ones complete);
//! - a continuation (the unit's own output replayed as an assistant message, then
//!   [`CONTINUE_INSTRUCTION`]): the rest of that same scripted output;
//! - `scripted-flaky`: the plan is refused once with 429; phase 1 fails with 500 on every model
//!   but [`FALLBACK_MODEL`];
//! - `scripted-bench`: as `scripted-app`, with ten more small files in phase 1; the moment the
//!   last content chunk of each phase goes out is kept ([`last_token_at`]);
//! - `scripted-deps`: phase 1 also writes a `package.json` whose dependency cannot be installed;
//!   the correction round (which sees npm's error) writes it back without it;
//! - a chat edit asking `scripted-edit HEAD…`: one DIFF changing the heading of the scripted
//!   `src/App.tsx` to that word; with `edit-stall-first` in it, the run's first such request
//!   never answers (later ones do), for restart tests; `edit-fail-always`: every edit request
//!   is answered 500.
//!
//! - ticket generation (model [`TICKETS_MODEL`]): a valid three-ticket answer about the scripted
//!   app ([`tickets_answer`]); `tickets-fail-first`: the first two answers for the mark are not
//!   JSON (the generation fails), later ones are valid; `tickets-cyclic-once`: the first answer's
//!   `blockedBy` form a cycle; `tickets-stall-first`: the first request for the mark never
//!   answers (a restart test), later ones are valid.
//!
//! - model [`STALL_MODEL`]: never answers.
//!
//! Every request is recorded (model, `Authorization`, prompt, stream) for tests to inspect.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use byte_platform::domain::codegen::driver::CONTINUE_INSTRUCTION;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

pub const PRIMARY_MODEL: &str = "fake-primary";
pub const FALLBACK_MODEL: &str = "fake-fallback";
/// The code generator's operations, told apart by the model each is configured with (never by
/// prompt wording): see [`scripted_model_config`].
pub const BLUEPRINT_MODEL: &str = "fake-blueprint";
pub const PHASE_PLAN_MODEL: &str = "fake-phase-plan";
pub const IMPLEMENT_MODEL: &str = "fake-implement";
pub const CORRECT_MODEL: &str = "fake-correct";
pub const EDIT_MODEL: &str = "fake-edit";
/// The orchestrator's ticket generation.
pub const TICKETS_MODEL: &str = "fake-tickets";
/// A model that never answers (an instance whose generations must stay `running`).
pub const STALL_MODEL: &str = "fake-stall";

/// A code generator call, as the fake tells it from the model name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Blueprint,
    PhasePlan,
    Implement,
    Correct,
    Edit,
}

fn op_of(model: &str) -> Option<Op> {
    Some(match model {
        BLUEPRINT_MODEL => Op::Blueprint,
        PHASE_PLAN_MODEL => Op::PhasePlan,
        // Only implementation has a fallback configured.
        IMPLEMENT_MODEL | FALLBACK_MODEL => Op::Implement,
        CORRECT_MODEL => Op::Correct,
        EDIT_MODEL => Op::Edit,
        _ => return None,
    })
}

/// `MODEL_CONFIG` for instances that run the code generator against this fake: one model name
/// per operation (implementation falls back to [`FALLBACK_MODEL`]).
pub fn scripted_model_config() -> String {
    json!({
        "default": {"provider": "custom", "model": PRIMARY_MODEL, "maxTokens": 1000},
        "blueprint": {"model": BLUEPRINT_MODEL},
        "phasePlanning": {"model": PHASE_PLAN_MODEL},
        "implementation": {"model": IMPLEMENT_MODEL, "fallback": {"model": FALLBACK_MODEL}},
        "errorCorrection": {"model": CORRECT_MODEL},
        "chatEdit": {"model": EDIT_MODEL},
        "ticketGeneration": {"model": TICKETS_MODEL},
    })
    .to_string()
}
pub const NORMAL_TOTAL: u64 = 12;
pub const BIG_TOTAL: u64 = 60;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub model: String,
    pub authorization: Option<String>,
    pub prompt: String,
    /// Every user message of the request, joined.
    pub conversation: String,
    pub stream: bool,
    /// The code generator's operation (by model name) and phase, for its calls.
    pub op: Option<Op>,
    pub phase: u32,
    /// A resumed unit's request to continue its own output.
    pub continued: bool,
}

#[derive(Default)]
struct Fake {
    requests: Vec<Recorded>,
    failed_once: HashSet<String>,
    stalled_once: HashSet<String>,
    /// Marks whose first phase-2 stream was held on their gate.
    gated_once: HashSet<String>,
    /// Per mark: the phase (1-based) the code generator is on, counted from its phase-plan calls
    /// (each phase is planned right before it is implemented).
    phase: HashMap<String, u32>,
    /// Per mark: ticket generation answers given.
    tickets: HashMap<String, u32>,
}

type Shared = Arc<Mutex<Fake>>;

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(Shared::default)
}

/// The fake's base URL (`…/v1` is the OpenAI-compatible base).
pub fn url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        crate::harness::serve(
            Router::new()
                .route("/v1/chat/completions", post(completions))
                .with_state(shared().clone()),
        )
    })
    .clone()
}

/// Every request whose conversation (any user message) contains `needle`, in arrival order.
pub fn conversations_with(needle: &str) -> Vec<Recorded> {
    shared()
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.conversation.contains(needle))
        .cloned()
        .collect()
}

/// Every request whose prompt contains `needle`, in arrival order.
pub fn requests_with(needle: &str) -> Vec<Recorded> {
    shared()
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.prompt.contains(needle))
        .cloned()
        .collect()
}

fn usage(prompt: &str) -> Value {
    if prompt.contains("big-usage") {
        json!({"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": BIG_TOTAL})
    } else {
        json!({"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": NORMAL_TOTAL})
    }
}

fn sse(lines: Vec<String>) -> Response {
    paced_sse(lines, false, None)
}

type Stamps = Mutex<std::collections::HashMap<String, std::time::Instant>>;

fn stamps() -> &'static Stamps {
    static S: OnceLock<Stamps> = OnceLock::new();
    S.get_or_init(Stamps::default)
}

/// When the last content chunk of phase `phase` (1-based) of the run marked `mark` was sent
/// (for `make bench`).
#[allow(dead_code)]
pub fn last_token_at(mark: &str, phase: u32) -> Option<std::time::Instant> {
    stamps()
        .lock()
        .unwrap()
        .get(&format!("{mark} {phase}"))
        .copied()
}

/// SSE lines, each after `pace` when given; `stall_at_end` never ends the stream.
/// `stamp`: the line index whose sending is recorded, and the key it is recorded under.
/// The gate of `mark`'s run (see [`release`]).
fn gate(mark: &str) -> Arc<tokio::sync::Notify> {
    static GATES: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Notify>>>> = OnceLock::new();
    GATES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap()
        .entry(mark.to_string())
        .or_default()
        .clone()
}

/// Lets a `scripted-gate` run's held stream go on.
pub fn release(mark: &str) {
    gate(mark).notify_one();
}

/// SSE that sends `lines[..at]`, waits for the gate, then sends the rest.
fn gated_sse(lines: Vec<String>, at: usize, gate: Arc<tokio::sync::Notify>) -> Response {
    use futures_util::StreamExt;
    let mut lines = lines;
    let rest = lines.split_off(at);
    let frame = |l: String| Ok::<Bytes, Infallible>(Bytes::from(format!("data: {l}\n\n")));
    let head = futures_util::stream::iter(lines.into_iter().map(frame));
    let tail = futures_util::stream::once(async move {
        gate.notified().await;
        futures_util::stream::iter(rest.into_iter().map(frame))
    })
    .flatten();
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(head.chain(tail)))
        .unwrap()
}

fn paced_sse(lines: Vec<String>, stall_at_end: bool, stamp: Option<(usize, String)>) -> Response {
    use futures_util::StreamExt;
    let chunks = futures_util::stream::iter(lines.into_iter().enumerate()).then(move |(i, l)| {
        let stamp = stamp.clone();
        async move {
            if let Some((_, key)) = stamp.filter(|(at, _)| *at == i) {
                stamps()
                    .lock()
                    .unwrap()
                    .insert(key, std::time::Instant::now());
            }
            Ok::<Bytes, Infallible>(Bytes::from(format!("data: {l}\n\n")))
        }
    });
    let tail = futures_util::stream::once(async move {
        if stall_at_end {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
        Ok::<Bytes, Infallible>(Bytes::new())
    });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(chunks.chain(tail)))
        .unwrap()
}

fn chunk(model: &str, delta: Value, finish: Value) -> String {
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })
    .to_string()
}

async fn completions(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_string();
    if model == STALL_MODEL {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    // A resumed unit replays its own output as an assistant message and asks to continue it:
    // the answer is the rest of the same scripted output.
    let continued = match messages.as_slice() {
        [.., a, u] if a["role"] == "assistant" && u["content"] == CONTINUE_INSTRUCTION => {
            a["content"].as_str().map(str::to_string)
        }
        _ => None,
    };
    let users: Vec<&str> = messages
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_str())
        .filter(|c| *c != CONTINUE_INSTRUCTION)
        .collect();
    let prompt = users.last().copied().unwrap_or_default().to_string();
    let conversation = users.join("\n");
    // The code generator's scripted calls take none of the failure markers below (its prompts
    // say "install", which contains "stall").
    let op = op_of(&model);
    let phase = {
        let mut st = s.lock().unwrap();
        let n = st.phase.entry(mark(&conversation)).or_insert(0);
        if op == Some(Op::PhasePlan) && continued.is_none() {
            *n += 1;
        }
        *n
    };
    let mut script = match op {
        Some(op) => scripted(op, phase, &prompt),
        None if model == TICKETS_MODEL => Some(tickets_answer(&s, &conversation)),
        None => None,
    };
    // `edit-stall-first`: the first edit request of the run never answers (a restart test).
    if op == Some(Op::Edit)
        && continued.is_none()
        && prompt.contains("edit-stall-first")
        && s.lock()
            .unwrap()
            .stalled_once
            .insert(format!("edit {}", mark(&conversation)))
    {
        script = Some(STALLED.into());
    }
    if script.as_deref() == Some(STALLED) {
        s.lock().unwrap().requests.push(Recorded {
            model: model.clone(),
            authorization: None,
            prompt: prompt.clone(),
            conversation: conversation.clone(),
            stream,
            op,
            phase,
            continued: false,
        });
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    let scripted_call = script.is_some();
    let phase2 = op == Some(Op::Implement) && phase == 2;
    let planning = op == Some(Op::Blueprint);
    let flaky = scripted_call && conversation.contains("scripted-flaky");
    let restart = scripted_call && phase2 && conversation.contains("scripted-restart");
    let first_429 = {
        let mut st = s.lock().unwrap();
        // The first phase-2 request of a restart run stalls inside its second file.
        let stall = restart && st.stalled_once.insert(mark(&conversation));
        if stall {
            if let Some(t) = script.as_mut() {
                let cut = t.find("===FILE: src/App.tsx===").unwrap() + 40;
                t.truncate(cut);
            }
        }
        st.requests.push(Recorded {
            model: model.clone(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            prompt: prompt.clone(),
            conversation: conversation.clone(),
            stream,
            op,
            phase,
            continued: continued.is_some(),
        });
        let flaky_429 = flaky
            && planning
            && st
                .failed_once
                .insert(format!("plan {}", mark(&conversation)));
        (
            flaky_429
                || (!scripted_call
                    && prompt.contains("fail-429-once")
                    && st.failed_once.insert(prompt.clone())),
            stall,
        )
    };
    let (first_429, stall) = first_429;
    if op == Some(Op::Edit) && prompt.contains("edit-fail-always") {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "the edit model is down", "type": "server_error"}})),
        )
            .into_response();
    }
    if flaky && op == Some(Op::Implement) && phase == 1 && model != FALLBACK_MODEL {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "the primary is down", "type": "server_error"}})),
        )
            .into_response();
    }
    if first_429 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            Json(json!({"error": {"message": "slow down", "type": "rate_limit_error"}})),
        )
            .into_response();
    }
    if !scripted_call && prompt.contains("fail-401-always") {
        let key = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim_start_matches("Bearer ")
            .to_string();
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {
                "message": format!("Incorrect API key provided: {key}; internal trace id fake-node-7"),
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }})),
        )
            .into_response();
    }
    if !scripted_call && prompt.contains("fail-500-always") && model != FALLBACK_MODEL {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "the primary is down", "type": "server_error"}})),
        )
            .into_response();
    }
    if !scripted_call && prompt.contains("stall") {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    let mut text = script.unwrap_or_else(|| format!("echo from {model}: {prompt}"));
    if let Some(prefix) = &continued {
        text = match text.strip_prefix(prefix.as_str()) {
            Some(rest) => rest.to_string(),
            None => panic!("a continuation of an output this fake never produced"),
        };
    }
    if !scripted_call && prompt.contains("malformed") {
        return if stream {
            sse(vec!["{\"choices\": [{\"delta\": {\"content\": ".into()])
        } else {
            (
                [(header::CONTENT_TYPE, "application/json")],
                "{\"choices\": [oops",
            )
                .into_response()
        };
    }
    if !stream {
        return Json(json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage(&prompt),
        }))
        .into_response();
    }
    let mut lines = vec![chunk(
        &model,
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    for part in words.chunks(2) {
        lines.push(chunk(
            &model,
            json!({"content": part.concat()}),
            Value::Null,
        ));
    }
    if !scripted_call && prompt.contains("drip-hang") {
        return paced_sse(lines, true, None);
    }
    if !scripted_call && prompt.contains("truncated") {
        lines.truncate(3);
        return sse(lines);
    }
    if stall {
        return paced_sse(lines, true, None);
    }
    let last_content = lines.len() - 1;
    lines.push(chunk(&model, json!({}), json!("stop")));
    if include_usage {
        lines.push(
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
                   "choices": [], "usage": usage(&prompt)})
            .to_string(),
        );
    }
    lines.push("[DONE]".into());
    let gated = scripted_call
        && phase2
        && conversation.contains("scripted-gate")
        && s.lock().unwrap().gated_once.insert(mark(&conversation));
    if gated {
        // Hold the stream inside src/App.tsx until the test opens the gate.
        let at = lines
            .iter()
            .position(|l| l.contains("App.tsx==="))
            .map_or(lines.len(), |i| (i + 3).min(lines.len()));
        return gated_sse(lines, at, gate(&mark(&conversation)));
    }
    if scripted_call && conversation.contains("scripted-bench") && op == Some(Op::Implement) {
        let key = format!("{} {phase}", mark(&conversation));
        return paced_sse(lines, false, Some((last_content, key)));
    }
    sse(lines)
}

/// What [`tickets_answer`] returns for a request that must never be answered.
const STALLED: &str = "\u{0}stalled";

/// Ticket generation's answer for the run marked in `conversation` (see the module header).
fn tickets_answer(s: &Shared, conversation: &str) -> String {
    let n = {
        let mut st = s.lock().unwrap();
        let n = st.tickets.entry(mark(conversation)).or_insert(0);
        *n += 1;
        *n
    };
    if conversation.contains("tickets-stall-first") && n == 1 {
        return STALLED.into();
    }
    if conversation.contains("tickets-fail-first") && n <= 2 {
        return "Here are the tickets you asked for: a header, a footer.".into();
    }
    let first_blocked_by = if conversation.contains("tickets-cyclic-once") && n == 1 {
        json!(["T2"])
    } else {
        json!([])
    };
    json!({
        "summary": "A greeting page; the tickets add a name form and tests.",
        "tickets": [
            {"key": "T1", "title": "Greeting component props", "description": "Let Hello take a name.",
             "type": "refactor", "priority": "high", "category": "frontend", "tags": ["ui"],
             "estimatedHours": 2, "acceptanceCriteria": ["Hello renders the given name"],
             "affectedFiles": ["src/components/Hello.tsx"], "blockedBy": first_blocked_by},
            {"key": "T2", "title": "Name form", "description": "A form that sets the name.",
             "type": "feature", "priority": "medium", "estimatedHours": 3,
             "acceptanceCriteria": ["Typing a name updates the greeting"],
             "affectedFiles": ["src/App.tsx"], "blockedBy": ["T1"]},
            {"key": "T3", "title": "Page tests", "description": "Test the page.",
             "type": "test", "priority": "low", "estimatedHours": 2,
             "affectedFiles": ["src/App.tsx", "src/App.test.tsx"], "related": ["T1"]}
        ]
    })
    .to_string()
}

/// The word starting with `MARK` in `prompt` (tests put a unique one in their request; the
/// blueprint carries it into every later prompt through its description).
fn mark(prompt: &str) -> String {
    prompt
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .find(|w| w.starts_with("MARK"))
        .unwrap_or("MARK")
        .to_string()
}

fn file_block(out: &mut String, path: &str, content: &str) {
    out.push_str(&format!("===FILE: {path}===\n{content}===END FILE===\n"));
}

/// Replies for the code generator, keyed by the mode marker, the operation (from the model name)
/// and the phase (counted from the phase-plan calls):
/// - a phase's plan: a small valid plan;
/// - planning: a valid two-phase `react-vite` blueprint whose
///   description carries the mode and mark (`scripted-badplan`: invalid JSON, every time);
/// - phase 1 (foundation): `src/components/Hello.tsx`; `scripted-evil` adds `../evil.ts` between
///   it and `src/lib/util.ts`; `scripted-cut` writes `src/lib/cut-ok.ts` then stops inside
///   `src/lib/partial.ts`;
/// - phase 2 (core): `src/App.tsx` rendering the mark;
/// - a correction round: no blocks;
/// - `scripted-fix`: phase 1 writes a component with a syntax error, the first correction fixes
///   it; `scripted-types`: the same with a type error only `tsc` sees.
pub fn scripted(op: Op, phase: u32, prompt: &str) -> Option<String> {
    if op == Op::Edit && prompt.contains("scripted-edit") {
        // The heading as the current App.tsx shown in the prompt has it.
        let old = prompt
            .split_once("<h1>")
            .and_then(|(_, rest)| rest.split_once("</h1>"))
            .map(|(h, _)| h.to_string())
            .unwrap_or_else(|| mark(prompt));
        // The new one is the first HEAD… word of the request (the last `scripted-edit`).
        let request = prompt.rsplit("scripted-edit").next().unwrap_or_default();
        let new = request
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| w.starts_with("HEAD"))
            .unwrap_or("HEAD");
        return Some(format!(
            "Changing the heading.\n===DIFF: src/App.tsx===\n@@ -3,3 +3,3 @@\n export default function App() {{\n-  return <main><h1>{old}</h1><Hello /></main>;\n+  return <main><h1>{new}</h1><Hello /></main>;\n }}\n===END DIFF===\n"
        ));
    }
    let mode = [
        "scripted-app",
        "scripted-gate",
        "scripted-restart",
        "scripted-flaky",
        "scripted-bench",
        "scripted-deps",
        "scripted-evil",
        "scripted-cut",
        "scripted-badplan",
        "scripted-fix",
        "scripted-types",
    ]
    .into_iter()
    // The earliest mention wins: phase prompts name the run's mode in the plan, before the
    // current files (which may carry an earlier run's mode in a comment).
    .filter_map(|m| prompt.find(m).map(|at| (at, m)))
    .min()?;
    // The mark that goes with it follows it.
    let (at, mode) = mode;
    let mark = mark(&prompt[at..]);
    if op == Op::PhasePlan {
        // The files the blueprint's phase writes (the first phase the greeting, then the page).
        let (path, purpose) = if phase == 1 {
            ("src/components/Hello.tsx", "the greeting component")
        } else {
            ("src/App.tsx", "the page")
        };
        return Some(
            json!({"files": [{"path": path, "purpose": purpose}], "steps": ["Write the phase."]})
                .to_string(),
        );
    }
    if op == Op::Blueprint {
        if mode == "scripted-badplan" {
            return Some("Here is the plan: {\"title\": \"Broken\", \"phases\": [".into());
        }
        let plan = json!({
            "title": "Scripted App",
            "description": format!("A greeting app ({mode} {mark})."),
            "template": "react-vite",
            "frameworks": ["react"],
            "files": [
                {"path": "src/components/Hello.tsx", "purpose": "greeting"},
                {"path": "src/App.tsx", "purpose": "root component"}
            ],
            "phases": [
                {"name": "Foundation", "kind": "foundation", "description": "the greeting component", "files": ["src/components/Hello.tsx"]},
                {"name": "Core", "kind": "core", "description": "the page", "files": ["src/App.tsx"]}
            ]
        });
        return Some(format!("```json\n{plan}\n```\n"));
    }
    // The broken component carries the mode in a comment, so correction prompts (which show
    // the files, not the blueprint's description) are recognised too.
    let broken = if mode == "scripted-types" {
        // Valid syntax (the dev server serves it); only the type checker objects.
        format!("// {mode} {mark}\nconst n: number = \"not a number\";\nexport default function Hello() {{\n  return <p>{{n}}</p>;\n}}\n")
    } else {
        format!("// {mode} {mark}\nexport default function Hello() {{\n  return <p>\n}}\n")
    };
    let fixed = format!(
        "// {mode} {mark}\nexport default function Hello() {{\n  return <p>Fixed {mark}</p>;\n}}\n"
    );
    let mut out = String::from("Writing this phase.\n");
    if op == Op::Correct {
        match mode {
            "scripted-fix" | "scripted-types" => {
                file_block(&mut out, "src/components/Hello.tsx", &fixed)
            }
            "scripted-deps" if prompt.contains("npm install failed") => {
                file_block(&mut out, "package.json", &package_json(mode, &mark, false))
            }
            _ => out.push_str("Nothing to fix.\n"),
        }
    } else if op == Op::Implement && phase == 1 && matches!(mode, "scripted-fix" | "scripted-types")
    {
        file_block(&mut out, "src/components/Hello.tsx", &broken);
    } else if op == Op::Implement && phase == 1 {
        file_block(
            &mut out,
            "src/components/Hello.tsx",
            &format!(
                "export default function Hello() {{\n  return <p>Hello from {mark}</p>;\n}}\n"
            ),
        );
        if mode == "scripted-evil" {
            file_block(&mut out, "../evil.ts", "export const evil = true;\n");
            file_block(
                &mut out,
                "src/lib/util.ts",
                &format!("export const util = \"{mark}\";\n"),
            );
        }
        if mode == "scripted-bench" {
            for i in 0..10 {
                file_block(
                    &mut out,
                    &format!("src/lib/bench{i}.ts"),
                    &format!("export const value{i} = \"{mark}-{i}\";\n"),
                );
            }
        }
        if mode == "scripted-deps" {
            file_block(&mut out, "package.json", &package_json(mode, &mark, true));
        }
        if mode == "scripted-cut" {
            file_block(&mut out, "src/lib/cut-ok.ts", "export const ok = 1;\n");
            out.push_str("===FILE: src/lib/partial.ts===\nexport const partial = ");
        }
    } else if op == Op::Implement && phase == 2 {
        if mode == "scripted-restart" {
            file_block(
                &mut out,
                "src/lib/first.ts",
                &format!("export const first = \"{mark}\";\n"),
            );
        }
        file_block(
            &mut out,
            "src/App.tsx",
            &format!("import Hello from './components/Hello.tsx'\n\nexport default function App() {{\n  return <main><h1>{mark}</h1><Hello /></main>;\n}}\n"),
        );
    }
    out.push_str("Done.\n");
    Some(out)
}

/// The react-vite template's `package.json` with the run's mode and mark as its description;
/// `broken` adds a `preinstall` script that fails (npm fails at once, offline).
fn package_json(mode: &str, mark: &str, broken: bool) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/react-vite/package.json"
    );
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["description"] = json!(format!("{mode} {mark}"));
    if broken {
        v["scripts"]["preinstall"] =
            json!("echo 'byte-missing-dep: no matching version' >&2; exit 1");
    }
    format!("{}\n", serde_json::to_string_pretty(&v).unwrap())
}
