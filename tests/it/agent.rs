//! The code-generation agent end to end, against the scripted fake model and a real
//! `byte-sandbox`: the SSE and WebSocket event sequences, files landing in the sandbox, the
//! preview serving the generated app, a path outside the app rejected while the phase's other
//! files land, a cut-off stream (E005, no partial file), an invalid plan (E005 after one retry),
//! the state endpoint with event replay, D1 mirroring, isolation from other users, reconnecting
//! clients, stop and resume, follow-up edits as diffs (queued while work runs), versions in R2,
//! retries and the fallback model inside a run, the AI limits (E003), and a `wrangler dev`
//! killed mid-generation that resumes with every file written exactly once.

use crate::fake_llm;
use crate::harness::{
    chat, eventually, expect_error, sandbox_agent, Instance, User, SANDBOX_SECRET,
};
use crate::sandbox::Preview;
use byte_platform::domain::codegen::events::{parse_event, AgentEvent, RunOutcome};
use byte_platform::domain::error::ErrorCode;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// An instance wired to the scripted fake model and the shared sandbox agent, with roomy AI limits.
fn agent_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        let fake = fake_llm::url();
        Instance::start(&[
            ("SANDBOX_BACKEND", "local".into()),
            ("SANDBOX_URL", sandbox_agent()),
            ("SANDBOX_SECRET", SANDBOX_SECRET.into()),
            ("OPENAI_COMPATIBLE_BASE_URL", format!("{fake}/v1")),
            ("OPENAI_COMPATIBLE_API_KEY", "agent-platform-key".into()),
            ("MODEL_CONFIG", model_config()),
            ("RATE_LIMIT_AI", "1000/60".into()),
            ("RATE_LIMIT_AI_TOKENS", "1000000/60".into()),
            ("LLM_TIMEOUT_MS", "30000".into()),
        ])
    })
}

fn model_config() -> String {
    fake_llm::scripted_model_config()
}

fn mark() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "MARK{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The events without live chunks, as short labels.
fn labels(events: &[(Option<u64>, AgentEvent)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            // Plans and usage are checked on their own (prompt_to_previewed_app_…).
            AgentEvent::FileChunk { .. }
            | AgentEvent::State(_)
            | AgentEvent::PhasePlanned { .. }
            | AgentEvent::Usage(_) => None,
            AgentEvent::PhaseStart { phase, .. } => Some(format!("phase_start {phase}")),
            AgentEvent::PhaseComplete { phase, .. } => Some(format!("phase_complete {phase}")),
            AgentEvent::FileGenerated { path, .. } => Some(format!("file_generated {path}")),
            AgentEvent::Error {
                code, recoverable, ..
            } => Some(format!("error {code:?} {recoverable}")),
            AgentEvent::Done { status } => Some(format!("done {status:?}")),
            other => Some(other.sse_name().to_string()),
        })
        .collect()
}

async fn read_file(app: &Instance, u: &User, app_id: &str, path: &str) -> (u16, Value) {
    let r = app
        .req(
            Method::GET,
            &format!("/api/apps/{app_id}/sandbox/files?path={path}"),
        )
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn state(app: &Instance, u: &User, app_id: &str, since: u64) -> Value {
    let r = app
        .req(
            Method::GET,
            &format!("/api/agent/{app_id}/state?since={since}"),
        )
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket client of an app's agent.
struct Ws {
    ws: WsStream,
}

/// Opens `/api/agent/:appId/ws` with `headers`; the HTTP status when the upgrade is refused.
async fn ws_open(
    app: &Instance,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, (u16, String)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let addr = app.base.trim_start_matches("http://");
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = k.parse().unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(req, tcp).await {
        Ok((ws, resp)) => {
            assert_eq!(resp.status().as_u16(), 101);
            Ok(Ws { ws })
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err((
            r.status().as_u16(),
            String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("{e}"),
    }
}

impl Ws {
    async fn connect(app: &Instance, u: &User, app_id: &str, since: Option<u64>) -> Ws {
        let q = since.map(|s| format!("?since={s}")).unwrap_or_default();
        let auth = format!("Bearer {}", u.token);
        ws_open(
            app,
            &format!("/api/agent/{app_id}/ws{q}"),
            &[("Authorization", &auth)],
        )
        .await
        .unwrap_or_else(|e| panic!("upgrade refused: {e:?}"))
    }

    async fn send(&mut self, cmd: Value) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                cmd.to_string().into(),
            ))
            .await
            .unwrap();
    }

    /// The next event (with its stored id, if it has one).
    async fn next(&mut self) -> (Option<u64>, AgentEvent) {
        use futures_util::StreamExt;
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(300), self.ws.next())
                .await
                .expect("an event within 300 s")
                .expect("the socket is open")
                .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                let mut v: Value = serde_json::from_str(&t).unwrap();
                let id = v
                    .as_object_mut()
                    .unwrap()
                    .remove("id")
                    .and_then(|i| i.as_u64());
                let ev = parse_event(&v.to_string()).unwrap_or_else(|e| panic!("{e}: {t}"));
                return (id, ev);
            }
        }
    }

    /// Events until (and including) the first that `stop` accepts.
    async fn until(
        &mut self,
        stop: impl Fn(&AgentEvent) -> bool,
    ) -> Vec<(Option<u64>, AgentEvent)> {
        let mut out = Vec::new();
        loop {
            let e = self.next().await;
            let end = stop(&e.1);
            out.push(e);
            if end {
                return out;
            }
        }
    }

    async fn until_done(&mut self) -> Vec<(Option<u64>, AgentEvent)> {
        self.until(|e| matches!(e, AgentEvent::Done { .. })).await
    }
}

/// Generates the app again from `prompt` over the WebSocket (a new plan even when the app has
/// files); the events after the command, through `done`.
async fn generate_ws(
    app: &Instance,
    u: &User,
    app_id: &str,
    prompt: &str,
) -> Vec<(Option<u64>, AgentEvent)> {
    let mut ws = Ws::connect(app, u, app_id, None).await;
    assert!(matches!(ws.next().await.1, AgentEvent::State(_)));
    ws.send(json!({"type": "generate", "prompt": prompt})).await;
    ws.until_done().await
}

fn generated(events: &[(Option<u64>, AgentEvent)], path: &str) -> usize {
    events
        .iter()
        .filter(|(_, e)| matches!(e, AgentEvent::FileGenerated { path: p, .. } if p == path))
        .count()
}

#[tokio::test]
async fn prompt_to_previewed_app_with_rejections_and_failures() {
    let app = agent_instance();
    let owner = app.user("agent").await;
    let intruder = app.user("agent-intruder").await;
    let app_id = app.app(&owner, "Generated", "private").await;

    // Another user reaches neither the chat nor the state.
    let r = app
        .call(
            Method::POST,
            &format!("/api/agent/chat/{app_id}"),
            &intruder.token,
            Some(&json!({"message": "scripted-app MARKnope"})),
        )
        .await;
    expect_error(r, 404, "E002").await;
    let r = app
        .call(
            Method::GET,
            &format!("/api/agent/{app_id}/state"),
            &intruder.token,
            None,
        )
        .await;
    expect_error(r, 404, "E002").await;
    let auth = format!("Bearer {}", intruder.token);
    let refused = ws_open(
        app,
        &format!("/api/agent/{app_id}/ws"),
        &[("Authorization", &auth)],
    )
    .await
    .err()
    .expect("the intruder's socket is refused");
    assert_eq!(refused.0, 404, "{refused:?}");
    assert!(ws_open(app, &format!("/api/agent/{app_id}/ws"), &[])
        .await
        .is_err_and(|(status, _)| status == 401));
    // Without an upgrade the socket endpoint says what it wants.
    let r = app
        .call(
            Method::GET,
            &format!("/api/agent/{app_id}/ws"),
            &owner.token,
            None,
        )
        .await;
    expect_error(r, 426, "E004").await;
    // A bad body is a field error.
    let r = app
        .call(
            Method::POST,
            &format!("/api/agent/chat/{app_id}"),
            &owner.token,
            Some(&json!({"message": ""})),
        )
        .await;
    expect_error(r, 400, "E004").await;

    // An invalid plan: one retry with feedback, then E005; nothing starts.
    let bad = mark();
    let events = chat(app, &owner, &app_id, &format!("scripted-badplan {bad}")).await;
    assert_eq!(
        labels(&events),
        ["phase_start planning", "error E005 false", "done Failed"],
        "{events:?}"
    );
    let tries = fake_llm::conversations_with(&bad);
    assert_eq!(tries.len(), 2, "one retry");
    assert!(tries[1].prompt.contains("rejected"), "{}", tries[1].prompt);

    // Prompt → blueprint → both phases → files in the sandbox → preview.
    let m = mark();
    let events = chat(
        app,
        &owner,
        &app_id,
        &format!("Build a greeting page scripted-app {m}"),
    )
    .await;
    assert_eq!(
        labels(&events),
        [
            "phase_start planning",
            "phase_complete planning",
            "phase_start Foundation",
            "file_generated src/components/Hello.tsx",
            "phase_complete Foundation",
            "phase_start Core",
            "file_generated src/App.tsx",
            "phase_complete Core",
            "preview_ready",
            "done Completed",
        ],
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|(_, e)| matches!(e, AgentEvent::FileChunk { path, .. } if path == "src/App.tsx")));
    // Stored events carry increasing ids.
    let ids: Vec<u64> = events.iter().filter_map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // Each phase announces the files its plan names; each model call what it used.
    let planned: Vec<(String, Vec<String>)> = events
        .iter()
        .filter_map(|(_, e)| match e {
            AgentEvent::PhasePlanned { phase, files } => Some((phase.clone(), files.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        planned,
        [
            ("Foundation".into(), vec!["src/components/Hello.tsx".into()]),
            ("Core".into(), vec!["src/App.tsx".into()])
        ]
    );
    let used: Vec<(String, u64)> = events
        .iter()
        .filter_map(|(_, e)| match e {
            AgentEvent::Usage(u) => Some((u.model.clone(), u.total_tokens)),
            _ => None,
        })
        .collect();
    let each = |m: &str| (m.to_string(), fake_llm::NORMAL_TOTAL);
    assert_eq!(
        used,
        [
            each(fake_llm::BLUEPRINT_MODEL),
            each(fake_llm::PHASE_PLAN_MODEL),
            each(fake_llm::IMPLEMENT_MODEL),
            each(fake_llm::PHASE_PLAN_MODEL),
            each(fake_llm::IMPLEMENT_MODEL),
        ]
    );
    let (status, f) = read_file(app, &owner, &app_id, "src/App.tsx").await;
    assert_eq!(status, 200);
    assert!(f["content"].as_str().unwrap().contains(&m), "{f}");
    let url = events
        .iter()
        .find_map(|(_, e)| match e {
            AgentEvent::PreviewReady { url } => Some(url.clone()),
            _ => None,
        })
        .unwrap();
    let preview = Preview::open(app, &url).await;
    eventually(30, "the generated App.tsx in the preview", || async {
        preview.get("/src/App.tsx").await.1.contains(&m)
    })
    .await;

    // The state: complete, both phases, the files; events replay after `since`.
    let s = state(app, &owner, &app_id, 0).await;
    assert_eq!(s["state"]["status"], "complete", "{s}");
    assert_eq!(s["state"]["title"], "Scripted App");
    let phases = s["state"]["phases"].as_array().unwrap();
    assert!(phases.iter().all(|p| p["status"] == "complete"), "{s}");
    let paths: Vec<&str> = s["state"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"src/App.tsx") && paths.contains(&"src/components/Hello.tsx"));
    let last = s["state"]["lastEventId"].as_u64().unwrap();
    assert_eq!(Some(&last), ids.last());
    let all = s["events"].as_array().unwrap().len();
    let later = state(app, &owner, &app_id, ids[0]).await;
    // Everything stored so far: the failed plan's 3 events and the usage of its two model calls
    // (the plan and its retry), then this run's.
    assert_eq!(all, 3 + 2 + ids.len());
    let later_ids: Vec<u64> = later["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(later_ids, ids[1..]);
    assert!(state(app, &owner, &app_id, last).await["events"]
        .as_array()
        .unwrap()
        .is_empty());

    // A client reconnecting with Last-Event-ID gets the state, then what it missed; the run
    // is over, so the stream ends there.
    let r = app
        .req(Method::GET, &format!("/api/agent/{app_id}/events"))
        .bearer_auth(&owner.token)
        .header("Last-Event-ID", ids[ids.len() - 3].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let frames: Vec<&str> = text
        .split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .collect();
    assert!(frames[0].starts_with("event: state"), "{text}");
    let replayed: Vec<String> = frames[1..]
        .iter()
        .map(|f| f.lines().next().unwrap().to_string())
        .collect();
    assert_eq!(
        replayed,
        [format!("id: {}", ids[ids.len() - 2]), format!("id: {last}")],
        "{text}"
    );

    // The app's files and generation state are mirrored to D1.
    let rec: Value = app
        .call(
            Method::GET,
            &format!("/api/apps/{app_id}"),
            &owner.token,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let d1 = rec.to_string();
    assert!(
        d1.contains("src/components/Hello.tsx") && d1.contains("\"complete\""),
        "{rec}"
    );

    // A path outside the app is rejected; the phase's other files land.
    let m2 = mark();
    let events = generate_ws(app, &owner, &app_id, &format!("scripted-evil {m2}")).await;
    let l = labels(&events);
    assert_eq!(
        &l[2..6],
        [
            "phase_start Foundation",
            "file_generated src/components/Hello.tsx",
            "error E005 true",
            "file_generated src/lib/util.ts",
        ],
        "{events:?}"
    );
    assert_eq!(l.last().unwrap(), "done Completed");
    assert!(events.iter().any(|(_, e)| matches!(e,
        AgentEvent::Error { message, .. } if message.contains("../evil.ts"))));
    let (status, f) = read_file(app, &owner, &app_id, "src/lib/util.ts").await;
    assert_eq!(status, 200);
    assert!(f["content"].as_str().unwrap().contains(&m2));
    let tree: Value = app
        .call(
            Method::GET,
            &format!("/api/apps/{app_id}/sandbox/tree"),
            &owner.token,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(!tree.to_string().contains("evil"), "{tree}");

    // A stream cut off inside a file: E005, the finished file landed, the cut one did not.
    let m3 = mark();
    let events = generate_ws(app, &owner, &app_id, &format!("scripted-cut {m3}")).await;
    let l = labels(&events);
    assert!(
        l.contains(&"file_generated src/lib/cut-ok.ts".to_string()),
        "{l:?}"
    );
    assert_eq!(
        &l[l.len() - 2..],
        ["error E005 false", "done Failed"],
        "{l:?}"
    );
    assert!(!l.iter().any(|x| x.contains("partial")));
    assert!(matches!(
        events.last().unwrap().1,
        AgentEvent::Done {
            status: RunOutcome::Failed
        }
    ));
    assert_eq!(
        read_file(app, &owner, &app_id, "src/lib/cut-ok.ts").await.0,
        200
    );
    assert_eq!(
        read_file(app, &owner, &app_id, "src/lib/partial.ts")
            .await
            .0,
        404
    );
    assert_eq!(
        state(app, &owner, &app_id, 0).await["state"]["status"],
        "failed"
    );
}

#[tokio::test]
async fn the_sandboxs_real_diagnostics_reach_the_model_and_are_corrected() {
    let app = agent_instance();
    let owner = app.user("agent-fix").await;
    let app_id = app.app(&owner, "Corrected", "private").await;

    // A syntax error after phase 1 goes back to the model; its correction fixes it.
    let m = mark();
    let events = chat(app, &owner, &app_id, &format!("scripted-fix {m}")).await;
    assert_eq!(
        labels(&events),
        [
            "phase_start planning",
            "phase_complete planning",
            "phase_start Foundation",
            "file_generated src/components/Hello.tsx",
            "file_generated src/components/Hello.tsx",
            "phase_complete Foundation",
            "phase_start Core",
            "file_generated src/App.tsx",
            "phase_complete Core",
            "preview_ready",
            "done Completed",
        ],
        "{events:?}"
    );
    let corrections: Vec<_> = fake_llm::conversations_with(&m)
        .into_iter()
        .filter(|r| r.op == Some(fake_llm::Op::Correct))
        .collect();
    assert_eq!(corrections.len(), 1);
    assert!(
        corrections[0].prompt.contains("Correction round 1 of 3")
            && corrections[0].prompt.contains("src/components/Hello.tsx:"),
        "{}",
        corrections[0].prompt
    );
    let (_, f) = read_file(app, &owner, &app_id, "src/components/Hello.tsx").await;
    assert!(f["content"].as_str().unwrap().contains("Fixed"), "{f}");

    // A type error only the type checker sees is found and corrected the same way.
    let m = mark();
    let events = generate_ws(app, &owner, &app_id, &format!("scripted-types {m}")).await;
    let l = labels(&events);
    assert_eq!(
        l.iter()
            .filter(|x| *x == "file_generated src/components/Hello.tsx")
            .count(),
        2,
        "{l:?}"
    );
    assert_eq!(l.last().unwrap(), "done Completed", "{l:?}");
    let corrections: Vec<_> = fake_llm::conversations_with(&m)
        .into_iter()
        .filter(|r| r.op == Some(fake_llm::Op::Correct))
        .collect();
    assert_eq!(corrections.len(), 1);
    assert!(
        corrections[0].prompt.contains("[typescript]")
            && corrections[0].prompt.contains("src/components/Hello.tsx:"),
        "{}",
        corrections[0].prompt
    );

    // Corrections that never fix it stop at their bound: a driver rule, proven on the host
    // (`driver_tests::correction_rounds_fix_errors_and_stop_at_their_bound`).

    // A package.json whose dependencies cannot be installed: npm's error goes to the model,
    // whose correction installs cleanly.
    let m = mark();
    let events = generate_ws(app, &owner, &app_id, &format!("scripted-deps {m}")).await;
    let l = labels(&events);
    assert_eq!(generated(&events, "package.json"), 2, "{l:?}");
    assert_eq!(l.last().unwrap(), "done Completed", "{l:?}");
    let corrections: Vec<_> = fake_llm::conversations_with(&m)
        .into_iter()
        .filter(|r| r.op == Some(fake_llm::Op::Correct))
        .collect();
    assert_eq!(corrections.len(), 1);
    assert!(
        corrections[0].prompt.contains("npm install failed")
            && corrections[0].prompt.contains("package.json"),
        "{}",
        corrections[0].prompt
    );
    let pkg = file(app, &owner, &app_id, "package.json").await.unwrap();
    assert!(
        pkg.contains(&m) && !pkg.contains("byte-missing-dep"),
        "{pkg}"
    );
}

async fn file(app: &Instance, u: &User, app_id: &str, path: &str) -> Option<String> {
    match read_file(app, u, app_id, path).await {
        (200, f) => Some(f["content"].as_str().unwrap().to_string()),
        _ => None,
    }
}

/// The caller's `GET /api/ai/usage` row for `operation` (zeros when it has none).
async fn usage_of(app: &Instance, u: &User, operation: &str) -> Value {
    let r = app.call(Method::GET, "/api/ai/usage", &u.token, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["operations"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .find(|o| o["operation"] == operation)
        .cloned()
        .unwrap_or_else(|| json!({"requests": 0, "cancelled": {"requests": 0, "totalTokens": 0}}))
}

#[tokio::test]
async fn a_stopped_runs_cancelled_model_call_is_charged_and_reported() {
    let app = agent_instance();
    let owner = app.user("agent-cancel-usage").await;
    let app_id = app.app(&owner, "Cancelled", "private").await;
    let m = mark();
    let mut ws = Ws::connect(app, &owner, &app_id, None).await;
    assert!(matches!(ws.next().await.1, AgentEvent::State(_)));
    ws.send(json!({"type": "generate", "prompt": format!("scripted-gate {m}")}))
        .await;
    // Phase 2's stream has sent part of src/App.tsx and is held open by the fake model.
    ws.until(|e| matches!(e, AgentEvent::FileChunk { path, .. } if path == "src/App.tsx"))
        .await;
    let before = usage_of(app, &owner, "implementation").await;
    assert_eq!(before["cancelled"]["requests"], 0, "{before}");

    ws.send(json!({"type": "stop"})).await;
    eventually(60, "the stop to be recorded", || async {
        state(app, &owner, &app_id, 1 << 40).await["state"]["status"] == "stopped"
    })
    .await;
    // The held stream goes on; the client sees the cancellation at its next read.
    fake_llm::release(&m);
    let rest = ws.until_done().await;
    assert!(matches!(
        rest.last().unwrap().1,
        AgentEvent::Done {
            status: RunOutcome::Stopped
        }
    ));

    // The call is recorded before the driver hears of the cancellation, so it is there now:
    // charged from its prompt and what streamed (the provider never sent its usage).
    let after = usage_of(app, &owner, "implementation").await;
    assert_eq!(after["cancelled"]["requests"], 1, "{after}");
    let cancelled = after["cancelled"]["totalTokens"].as_u64().unwrap();
    assert!(cancelled > 0, "{after}");
    assert_eq!(
        after["requests"].as_u64().unwrap(),
        before["requests"].as_u64().unwrap() + 1,
        "{after}"
    );
    assert_eq!(
        after["totalTokens"].as_u64().unwrap(),
        before["totalTokens"].as_u64().unwrap_or(0) + cancelled,
        "{after}"
    );
    let r = app
        .call(Method::GET, "/api/ai/usage", &owner.token, None)
        .await;
    let all: Value = r.json().await.unwrap();
    assert_eq!(all["total"]["cancelled"]["requests"], 1, "{all}");
    assert_eq!(all["total"]["failed"]["requests"], 0, "{all}");
}

#[tokio::test]
async fn sockets_reconnect_stop_resume_and_follow_up_edits() {
    let app = agent_instance();
    let owner = app.user("agent-ws").await;
    let app_id = app.app(&owner, "Live", "private").await;

    // With the session cookie, only this site's pages may open the socket.
    let path = format!("/api/agent/{app_id}/ws");
    let cookie = format!("byte_session={}", owner.token);
    let foreign = ws_open(
        app,
        &path,
        &[("Cookie", &cookie), ("Origin", "http://evil.test")],
    )
    .await
    .err()
    .expect("a foreign page is refused");
    assert_eq!(foreign.0, 403, "{foreign:?}");
    assert!(
        ws_open(app, &path, &[("Cookie", &cookie), ("Origin", &app.base)])
            .await
            .is_ok()
    );

    // A socket sees the state first, then the run it starts.
    let m = mark();
    let mut a = Ws::connect(app, &owner, &app_id, None).await;
    let AgentEvent::State(first) = a.next().await.1 else {
        panic!("the state comes first")
    };
    assert_eq!(first.last_event_id, 0);
    // An acknowledgement is never answered (the next message is the bad command's answer);
    // a bad command is answered on this socket only, with the field at fault.
    a.send(json!({"type": "ack", "received": 1})).await;
    a.send(json!({"type": "explode"})).await;
    let (_, e) = a.next().await;
    assert!(
        matches!(&e, AgentEvent::Error { code: ErrorCode::E004, message, recoverable: true } if message.contains("type")),
        "{e:?}"
    );
    a.send(json!({"type": "resume"})).await;
    assert!(matches!(
        a.next().await.1,
        AgentEvent::Error {
            code: ErrorCode::E004,
            ..
        }
    ));
    a.send(json!({"type": "generate", "prompt": format!("scripted-gate {m}")}))
        .await;
    // Phase 2's stream is held inside src/App.tsx: stop while it is being written.
    let before = a
        .until(|e| matches!(e, AgentEvent::FileChunk { path, .. } if path == "src/App.tsx"))
        .await;
    assert_eq!(generated(&before, "src/components/Hello.tsx"), 1);

    // A second client connecting now gets the state, what it missed, then live events.
    let mut b = Ws::connect(app, &owner, &app_id, Some(0)).await;
    let AgentEvent::State(snap) = b.next().await.1 else {
        panic!("the state comes first")
    };
    assert_eq!(snap.current_phase.as_deref(), Some("Core"), "{snap:?}");
    let mut replayed = Vec::new();
    while replayed.len() < snap.last_event_id as usize {
        let (id, e) = b.next().await;
        if id.is_none() {
            continue; // a live chunk interleaved
        }
        replayed.push((id, e));
    }
    let ids: Vec<u64> = replayed.iter().map(|(i, _)| i.unwrap()).collect();
    assert_eq!(ids, (1..=snap.last_event_id).collect::<Vec<_>>());
    assert_eq!(generated(&replayed, "src/components/Hello.tsx"), 1);

    // One run at a time: generating again while this one works is refused, to this socket.
    b.send(json!({"type": "generate", "prompt": "scripted-app MARKagain"}))
        .await;
    let refused = b
        .until(|e| {
            matches!(
                e,
                AgentEvent::Error {
                    code: ErrorCode::E005,
                    ..
                }
            )
        })
        .await;
    assert!(matches!(
        refused.last().unwrap().1,
        AgentEvent::Error {
            recoverable: true,
            ..
        }
    ));

    a.send(json!({"type": "stop"})).await;
    // Once the agent has recorded the stop, the held stream goes on; the stopped driver applies
    // none of it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while state(app, &owner, &app_id, 1 << 40).await["state"]["status"] != "stopped" {
        assert!(
            std::time::Instant::now() < deadline,
            "the stop was never recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    fake_llm::release(&m);
    let rest_a = a.until_done().await;
    assert!(matches!(
        rest_a.last().unwrap().1,
        AgentEvent::Done {
            status: RunOutcome::Stopped
        }
    ));
    let rest_b = b.until_done().await;
    assert!(matches!(
        rest_b.last().unwrap().1,
        AgentEvent::Done {
            status: RunOutcome::Stopped
        }
    ));
    let s = state(app, &owner, &app_id, 0).await;
    assert_eq!(s["state"]["status"], "stopped", "{s}");
    assert_eq!(s["state"]["phases"][0]["status"], "complete", "{s}");
    assert_eq!(s["state"]["phases"][1]["status"], "implementing", "{s}");
    // The template's App.tsx is still there: the generated one was never written.
    assert!(!file(app, &owner, &app_id, "src/App.tsx")
        .await
        .unwrap()
        .contains(&m));
    a.send(json!({"type": "stop"})).await;
    assert!(matches!(
        a.next().await.1,
        AgentEvent::Error {
            code: ErrorCode::E004,
            ..
        }
    ));

    // Resume finishes the interrupted phase; over the whole run every file landed once.
    a.send(json!({"type": "resume"})).await;
    let resumed = a.until_done().await;
    assert_eq!(
        labels(&resumed),
        [
            "phase_start Core",
            "file_generated src/App.tsx",
            "phase_complete Core",
            "preview_ready",
            "done Completed"
        ],
        "{resumed:?}"
    );
    let all: Vec<_> = before
        .iter()
        .chain(rest_a.iter())
        .chain(resumed.iter())
        .cloned()
        .collect();
    assert_eq!(generated(&all, "src/components/Hello.tsx"), 1);
    assert_eq!(generated(&all, "src/App.tsx"), 1);
    let app_tsx = file(app, &owner, &app_id, "src/App.tsx").await.unwrap();
    assert!(app_tsx.contains(&format!("<h1>{m}</h1>")), "{app_tsx}");
    let hello = file(app, &owner, &app_id, "src/components/Hello.tsx")
        .await
        .unwrap();
    let s = state(app, &owner, &app_id, 0).await;
    assert_eq!(s["state"]["status"], "complete", "{s}");
    assert_eq!(s["state"]["version"], 2, "one version per phase: {s}");

    // A follow-up chat message edits the app: one diff, only the targeted file.
    let events = chat(
        app,
        &owner,
        &app_id,
        "scripted-edit: make the heading HEADone",
    )
    .await;
    assert!(matches!(events[0].1, AgentEvent::State(_)));
    assert_eq!(
        labels(&events),
        [
            "phase_start edit",
            "file_generated src/App.tsx",
            "phase_complete edit",
            "preview_ready",
            "done Completed"
        ],
        "{events:?}"
    );
    let edit_call = fake_llm::conversations_with("HEADone");
    assert_eq!(edit_call.len(), 1);
    assert!(
        edit_call[0].prompt.contains(&app_tsx),
        "the model saw the current file"
    );
    let edited = file(app, &owner, &app_id, "src/App.tsx").await.unwrap();
    assert_eq!(
        edited,
        app_tsx.replace(&format!("<h1>{m}</h1>"), "<h1>HEADone</h1>")
    );
    assert_eq!(
        file(app, &owner, &app_id, "src/components/Hello.tsx")
            .await
            .unwrap(),
        hello
    );

    // The socket saw the same edit.
    let seen = a.until_done().await;
    assert_eq!(generated(&seen, "src/App.tsx"), 1);

    // Messages sent while work runs wait their turn, and each is applied in order.
    a.send(json!({"type": "message", "text": "scripted-edit: heading HEADtwo"}))
        .await;
    a.send(json!({"type": "message", "text": "scripted-edit: heading HEADthree"}))
        .await;
    let mut queued_seen = false;
    let mut edits = Vec::new();
    loop {
        let (id, e) = a.next().await;
        if let AgentEvent::State(s) = &e {
            queued_seen |= s.queued_messages >= 1;
        }
        let done = matches!(e, AgentEvent::Done { .. });
        edits.push((id, e));
        if done {
            break;
        }
    }
    assert!(queued_seen, "{edits:?}");
    assert_eq!(
        labels(&edits),
        [
            "phase_start edit",
            "file_generated src/App.tsx",
            "phase_complete edit",
            "phase_start edit",
            "file_generated src/App.tsx",
            "phase_complete edit",
            "preview_ready",
            "done Completed"
        ],
        "{edits:?}"
    );
    let edited = file(app, &owner, &app_id, "src/App.tsx").await.unwrap();
    assert!(edited.contains("<h1>HEADthree</h1>"), "{edited}");

    // The preview command answers with a fresh preview URL.
    a.send(json!({"type": "preview"})).await;
    let (_, e) = a.next().await;
    assert!(
        matches!(&e, AgentEvent::PreviewReady { url } if url.contains("__byte_preview=")),
        "{e:?}"
    );

    // A stopped sandbox comes back with the app's files when the preview is asked for.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/apps/{app_id}/sandbox"),
            &owner.token,
            None,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    eventually(60, "the sandbox to stop", || async {
        let s: Value = app
            .call(
                Method::GET,
                &format!("/api/apps/{app_id}/sandbox"),
                &owner.token,
                None,
            )
            .await
            .json()
            .await
            .unwrap();
        s["status"] == "stopped"
    })
    .await;
    // Its disk goes too, as a container's does: the workspace is removed from byte-sandbox.
    let r = reqwest::Client::new()
        .delete(format!(
            "{}/v1/workspaces/{}",
            sandbox_agent(),
            app_id.trim_start_matches("app_")
        ))
        .bearer_auth(SANDBOX_SECRET)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    a.send(json!({"type": "preview"})).await;
    let (_, e) = a.next().await;
    assert!(matches!(e, AgentEvent::PreviewReady { .. }), "{e:?}");
    let restored = file(app, &owner, &app_id, "src/App.tsx").await.unwrap();
    assert!(restored.contains("<h1>HEADthree</h1>"), "{restored}");
    assert!(file(app, &owner, &app_id, "src/components/Hello.tsx")
        .await
        .is_some_and(|h| h == hello));

    // Every phase and edit saved a version to R2, with its files' contents.
    let r = app
        .call(
            Method::GET,
            &format!("/api/agent/{app_id}/versions"),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let versions = v["versions"].as_array().unwrap();
    let numbers: Vec<u64> = versions
        .iter()
        .map(|x| x["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5], "{v}");
    assert_eq!(versions[2]["label"], "edit");
    let r = app
        .call(
            Method::GET,
            &format!("/api/agent/{app_id}/versions/3/files/src/App.tsx"),
            &owner.token,
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("<h1>HEADone</h1>"));
    let r = app
        .call(
            Method::GET,
            &format!("/api/agent/{app_id}/versions/1/files/src/App.tsx"),
            &owner.token,
            None,
        )
        .await;
    expect_error(r, 404, "E002").await;
    let intruder = app.user("agent-ws-intruder").await;
    let r = app
        .call(
            Method::GET,
            &format!("/api/agent/{app_id}/versions"),
            &intruder.token,
            None,
        )
        .await;
    expect_error(r, 404, "E002").await;

    // Signing out ends what the socket may do.
    let r = app
        .call(Method::POST, "/api/auth/logout", &owner.token, None)
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    a.send(json!({"type": "preview"})).await;
    let (_, e) = a.next().await;
    assert!(
        matches!(
            e,
            AgentEvent::Error {
                code: ErrorCode::E001,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn retries_and_the_fallback_model_inside_a_run() {
    let app = agent_instance();
    let owner = app.user("agent-flaky").await;
    let app_id = app.app(&owner, "Flaky", "private").await;
    let m = mark();
    let events = chat(app, &owner, &app_id, &format!("scripted-flaky {m}")).await;
    assert_eq!(
        labels(&events).last().map(String::as_str),
        Some("done Completed"),
        "{events:?}"
    );
    let calls = fake_llm::conversations_with(&m);
    let plans: Vec<_> = calls
        .iter()
        .filter(|r| r.op == Some(fake_llm::Op::Blueprint))
        .collect();
    assert_eq!(plans.len(), 2, "the 429 was retried once");
    let phase1: Vec<&str> = calls
        .iter()
        .filter(|r| r.op == Some(fake_llm::Op::Implement) && r.phase == 1)
        .map(|r| r.model.as_str())
        .collect();
    assert_eq!(phase1.last(), Some(&fake_llm::FALLBACK_MODEL), "{phase1:?}");
    assert!(
        phase1.len() >= 2 && phase1[0] == fake_llm::IMPLEMENT_MODEL,
        "{phase1:?}"
    );
    let (status, f) = read_file(app, &owner, &app_id, "src/components/Hello.tsx").await;
    assert_eq!(status, 200);
    assert!(f["content"].as_str().unwrap().contains(&m));
}

#[tokio::test]
async fn the_ai_request_limit_stops_a_run_with_e003() {
    static I: OnceLock<Instance> = OnceLock::new();
    let app = I.get_or_init(|| {
        Instance::start(&[
            ("SANDBOX_BACKEND", "local".into()),
            ("SANDBOX_URL", sandbox_agent()),
            ("SANDBOX_SECRET", SANDBOX_SECRET.into()),
            (
                "OPENAI_COMPATIBLE_BASE_URL",
                format!("{}/v1", fake_llm::url()),
            ),
            ("MODEL_CONFIG", model_config()),
            // The chat request, the app's plan, phase 1's plan and phase 1; phase 2 is over.
            ("RATE_LIMIT_AI", "4/60".into()),
        ])
    });
    let owner = app.user("agent-limit").await;
    let app_id = app.app(&owner, "Limited", "private").await;
    let events = chat(app, &owner, &app_id, &format!("scripted-app {}", mark())).await;
    let l = labels(&events);
    // Four calls go through (the chat request, the app's plan, phase 1's plan, phase 1); the
    // next one, whichever it is (phase 2's plan, or a correction if the sandbox reported an
    // error), is refused and ends the run.
    let errors: Value = app
        .call(
            Method::GET,
            &format!("/api/apps/{app_id}/sandbox/errors"),
            &owner.token,
            None,
        )
        .await
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(
        l[..4],
        [
            "phase_start planning",
            "phase_complete planning",
            "phase_start Foundation",
            "file_generated src/components/Hello.tsx",
        ],
        "{events:?}"
    );
    assert_eq!(
        l[l.len() - 2..],
        ["error E003 false", "done Failed"],
        "{events:?} sandbox errors: {errors}"
    );
    assert!(
        events.iter().any(|(_, e)| matches!(e,
        AgentEvent::Error { code: ErrorCode::E003, message, .. } if message.contains("resets in")))
    );
}

#[tokio::test]
async fn a_restarted_wrangler_dev_resumes_the_run_and_writes_every_file_once() {
    // Its own instance: this test kills it.
    let app = Instance::start(&[
        ("SANDBOX_BACKEND", "local".into()),
        ("SANDBOX_URL", sandbox_agent()),
        ("SANDBOX_SECRET", SANDBOX_SECRET.into()),
        (
            "OPENAI_COMPATIBLE_BASE_URL",
            format!("{}/v1", fake_llm::url()),
        ),
        ("MODEL_CONFIG", model_config()),
        ("RATE_LIMIT_AI", "1000/60".into()),
    ]);
    let owner = app.user("agent-restart").await;
    let app_id = app.app(&owner, "Restarted", "private").await;
    let m = mark();
    // Phase 2 writes src/lib/first.ts, then its stream stalls inside src/App.tsx.
    let mut ws = Ws::connect(&app, &owner, &app_id, None).await;
    ws.next().await;
    ws.send(json!({"type": "generate", "prompt": format!("scripted-restart {m}")}))
        .await;
    let before = ws
        .until(
            |e| matches!(e, AgentEvent::FileGenerated { path, .. } if path == "src/lib/first.ts"),
        )
        .await;
    assert_eq!(generated(&before, "src/components/Hello.tsx"), 1);
    drop(ws);

    app.restart();

    // Nobody calls the agent: its alarm picks the run up. The resumed phase asks the model to
    // continue its own output (and this time the stream completes).
    eventually(120, "the resumed phase-2 request", || async {
        fake_llm::conversations_with(&m)
            .iter()
            .any(|r| r.op == Some(fake_llm::Op::Implement) && r.phase == 2 && r.continued)
    })
    .await;
    eventually(120, "the resumed run to complete", || async {
        state(&app, &owner, &app_id, 0).await["state"]["status"] == "complete"
    })
    .await;
    let s = state(&app, &owner, &app_id, 0).await;
    let events: Vec<(Option<u64>, AgentEvent)> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut e = e.clone();
            let id = e
                .as_object_mut()
                .unwrap()
                .remove("id")
                .and_then(|i| i.as_u64());
            (id, parse_event(&e.to_string()).unwrap())
        })
        .collect();
    for path in [
        "src/components/Hello.tsx",
        "src/lib/first.ts",
        "src/App.tsx",
    ] {
        assert_eq!(generated(&events, path), 1, "{path}: {events:?}");
    }
    assert!(
        matches!(
            events.last().unwrap().1,
            AgentEvent::Done {
                status: RunOutcome::Completed
            }
        ),
        "{events:?}"
    );
    let app_tsx = file(&app, &owner, &app_id, "src/App.tsx").await.unwrap();
    assert!(app_tsx.contains(&m), "{app_tsx}");
    assert!(file(&app, &owner, &app_id, "src/lib/first.ts")
        .await
        .unwrap()
        .contains(&m));
}
