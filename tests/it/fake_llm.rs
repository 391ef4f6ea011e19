//! A fake OpenAI-compatible chat-completions server on loopback (`POST /v1/chat/completions`),
//! speaking the real wire format: a JSON completion with `usage`, or (with `"stream": true`) SSE
//! `data: {chunk}` lines carrying `choices[0].delta.content`, a final chunk with `usage` when
//! `stream_options.include_usage` is set, then `data: [DONE]`.
//!
//! Behaviour is chosen by markers in the last user message, so concurrent tests never interfere:
//! - `fail-429-once`: the first request with this exact prompt gets 429 with `Retry-After: 1`;
//! - `fail-500-always`: 500 for every model except [`FALLBACK_MODEL`], which answers normally;
//! - `malformed`: a 200 whose body (or stream chunk) is not JSON;
//! - `truncated`: a stream cut after some content, without a finish reason or `[DONE]`;
//! - `stall`: never answers;
//! - `big-usage`: reports [`BIG_TOTAL`] tokens instead of [`NORMAL_TOTAL`];
//! - `scripted-app`, `scripted-evil`, `scripted-cut`, `scripted-badplan`: the code generator's
//!   calls, answered by [`scripted`] (a blueprint, phase output in the files format, corrections);
//! - `scripted-slow`: as `scripted-app`, with phase 2 streamed slowly (a chunk per 150 ms);
//! - `scripted-restart`: phase 2 writes `src/lib/first.ts`, then the first such request stalls
//!   inside `src/App.tsx` (later ones complete);
//! - `scripted-flaky`: the plan is refused once with 429; phase 1 fails with 500 on every model
//!   but [`FALLBACK_MODEL`];
//! - `scripted-bench`: as `scripted-app`, with ten more small files in phase 1; the moment the
//!   last content chunk of each phase goes out is kept ([`last_token_at`]);
//! - `scripted-deps`: phase 1 also writes a `package.json` whose dependency cannot be installed;
//!   the correction round (which sees npm's error) writes it back without it;
//! - a chat edit asking `scripted-edit HEAD…`: one DIFF changing the heading of the scripted
//!   `src/App.tsx` to that word.
//!
//! Every request is recorded (model, `Authorization`, prompt, stream) for tests to inspect.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};

pub const PRIMARY_MODEL: &str = "fake-primary";
pub const FALLBACK_MODEL: &str = "fake-fallback";
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
}

#[derive(Default)]
struct Fake {
    requests: Vec<Recorded>,
    failed_once: HashSet<String>,
    stalled_once: HashSet<String>,
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
    paced_sse(lines, None, false, None)
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
fn paced_sse(
    lines: Vec<String>,
    pace: Option<std::time::Duration>,
    stall_at_end: bool,
    stamp: Option<(usize, String)>,
) -> Response {
    use futures_util::StreamExt;
    let chunks = futures_util::stream::iter(lines.into_iter().enumerate()).then(move |(i, l)| {
        let stamp = stamp.clone();
        async move {
            if let Some(d) = pace {
                tokio::time::sleep(d).await;
            }
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
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let prompt = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let conversation = body["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| m["role"] == "user")
                .filter_map(|m| m["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    // The code generator's scripted calls take none of the failure markers below (its prompts
    // say "install", which contains "stall").
    let mut script = scripted(&conversation);
    let scripted_call = script.is_some();
    let phase2 = prompt.contains("Implement phase 2 of");
    let planning = prompt.contains("Reply with the blueprint JSON");
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
    if flaky && prompt.contains("Implement phase 1 of") && model != FALLBACK_MODEL {
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
    let text = script.unwrap_or_else(|| format!("echo from {model}: {prompt}"));
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
    if !scripted_call && prompt.contains("truncated") {
        lines.truncate(3);
        return sse(lines);
    }
    if stall {
        return paced_sse(lines, None, true, None);
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
    if scripted_call && phase2 && conversation.contains("scripted-slow") {
        return paced_sse(
            lines,
            Some(std::time::Duration::from_millis(150)),
            false,
            None,
        );
    }
    if scripted_call && conversation.contains("scripted-bench") {
        let phase = [1, 2]
            .into_iter()
            .find(|n| prompt.contains(&format!("Implement phase {n} of")));
        if let Some(n) = phase {
            let key = format!("{} {n}", mark(&conversation));
            return paced_sse(lines, None, false, Some((last_content, key)));
        }
    }
    sse(lines)
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

/// Replies for the code generator, keyed by the mode marker and the kind of call:
/// - a phase's plan (`Reply with the phase plan JSON`): a small valid plan;
/// - planning (`Reply with the blueprint JSON`): a valid two-phase `react-vite` blueprint whose
///   description carries the mode and mark (`scripted-badplan`: invalid JSON, every time);
/// - phase 1 (foundation): `src/components/Hello.tsx`; `scripted-evil` adds `../evil.ts` between
///   it and `src/lib/util.ts`; `scripted-cut` writes `src/lib/cut-ok.ts` then stops inside
///   `src/lib/partial.ts`;
/// - phase 2 (core): `src/App.tsx` rendering the mark;
/// - a correction round: no blocks;
/// - `scripted-fix`: phase 1 writes a component with a syntax error, the first correction fixes
///   it; `scripted-types`: the same with a type error only `tsc` sees; `scripted-stuck`: every
///   correction rewrites it broken, phase 2 fixes it.
pub fn scripted(prompt: &str) -> Option<String> {
    if prompt.contains("The user's request:") && prompt.contains("scripted-edit") {
        // The heading as the current App.tsx shown in the prompt has it.
        let old = prompt
            .split_once("<h1>")
            .and_then(|(_, rest)| rest.split_once("</h1>"))
            .map(|(h, _)| h.to_string())
            .unwrap_or_else(|| mark(prompt));
        let request = prompt
            .rsplit("The user's request:")
            .next()
            .unwrap_or_default();
        let new = request
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| w.starts_with("HEAD"))
            .unwrap_or("HEAD");
        return Some(format!(
            "Changing the heading.\n===DIFF: src/App.tsx===\n@@ -3,3 +3,3 @@\n export default function App() {{\n-  return <main><h1>{old}</h1><Hello /></main>;\n+  return <main><h1>{new}</h1><Hello /></main>;\n }}\n===END DIFF===\n"
        ));
    }
    let phase_plan = prompt.contains("Reply with the phase plan JSON now.");
    let mode = [
        "scripted-app",
        "scripted-slow",
        "scripted-restart",
        "scripted-flaky",
        "scripted-bench",
        "scripted-deps",
        "scripted-evil",
        "scripted-cut",
        "scripted-badplan",
        "scripted-fix",
        "scripted-stuck",
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
    if phase_plan {
        return Some(
            json!({"files": [{"path": "src/App.tsx", "purpose": "the page"}], "steps": ["Write the phase."]})
                .to_string(),
        );
    }
    if prompt.contains("Reply with the blueprint JSON") {
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
    if prompt.contains("Correction round") {
        match mode {
            "scripted-fix" | "scripted-types" => {
                file_block(&mut out, "src/components/Hello.tsx", &fixed)
            }
            "scripted-stuck" => file_block(&mut out, "src/components/Hello.tsx", &broken),
            "scripted-deps" if prompt.contains("npm install failed") => {
                file_block(&mut out, "package.json", &package_json(mode, &mark, false))
            }
            _ => out.push_str("Nothing to fix.\n"),
        }
    } else if prompt.contains("Implement phase 1 of")
        && matches!(mode, "scripted-fix" | "scripted-stuck" | "scripted-types")
    {
        file_block(&mut out, "src/components/Hello.tsx", &broken);
    } else if prompt.contains("Implement phase 1 of") {
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
    } else if prompt.contains("Implement phase 2 of") {
        if mode == "scripted-restart" {
            file_block(
                &mut out,
                "src/lib/first.ts",
                &format!("export const first = \"{mark}\";\n"),
            );
        }
        if mode == "scripted-stuck" {
            file_block(&mut out, "src/components/Hello.tsx", &fixed);
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
