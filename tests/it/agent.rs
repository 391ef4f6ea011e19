//! The code-generation agent end to end: `POST /api/agent/chat/:appId` against the scripted fake
//! model and a real `byte-sandbox` — the SSE event sequence, files landing in the sandbox, the
//! preview serving the generated app, a path outside the app rejected while the phase's other
//! files land, a cut-off stream (E005, no partial file), an invalid plan (E005 after one retry),
//! the state endpoint with event replay, D1 mirroring, and isolation from other users.

use crate::fake_llm;
use crate::harness::{expect_error, sandbox_agent, Instance, User, SANDBOX_SECRET};
use crate::sandbox::Preview;
use byte_platform::domain::codegen::events::{parse_event, AgentEvent, RunOutcome};
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
            (
                "MODEL_CONFIG",
                json!({"default": {"provider": "custom", "model": fake_llm::PRIMARY_MODEL, "maxTokens": 1000}})
                    .to_string(),
            ),
            ("RATE_LIMIT_AI", "1000/60".into()),
            ("RATE_LIMIT_AI_TOKENS", "1000000/60".into()),
            ("LLM_TIMEOUT_MS", "30000".into()),
        ])
    })
}

fn mark() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "MARK{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts a generation and reads its whole SSE stream: `(id, event)` in order.
async fn chat(
    app: &Instance,
    u: &User,
    app_id: &str,
    message: &str,
) -> Vec<(Option<u64>, AgentEvent)> {
    // Sandbox creation and install can take a while: a longer limit than the shared client's.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(400))
        .build()
        .unwrap();
    let r = client
        .post(app.url(&format!("/api/agent/chat/{app_id}")))
        .bearer_auth(&u.token)
        .json(&json!({ "message": message }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    let mut out = Vec::new();
    for frame in text.split("\n\n").filter(|f| !f.trim().is_empty()) {
        let mut id = None;
        let mut name = "";
        let mut data = String::new();
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("event: ") {
                name = v;
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        let ev = parse_event(&data).unwrap_or_else(|e| panic!("{e}: {frame}"));
        assert_eq!(ev.sse_name(), name, "{frame}");
        out.push((id, ev));
    }
    out
}

/// The events without live chunks, as short labels.
fn labels(events: &[(Option<u64>, AgentEvent)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            AgentEvent::FileChunk { .. } => None,
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
    crate::sandbox::eventually(30, "the generated App.tsx in the preview", || async {
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
    // Everything stored so far: the failed plan's 3 events, then this run's.
    assert_eq!(all, 3 + ids.len());
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
    let events = chat(app, &owner, &app_id, &format!("scripted-evil {m2}")).await;
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
    let events = chat(app, &owner, &app_id, &format!("scripted-cut {m3}")).await;
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

    // One run at a time per app: a second chat while one streams is refused.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(400))
        .build()
        .unwrap();
    let mut r = client
        .post(app.url(&format!("/api/agent/chat/{app_id}")))
        .bearer_auth(&owner.token)
        .json(&json!({ "message": format!("scripted-app {}", mark()) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("phase_start"));
    let second = app
        .call(
            Method::POST,
            &format!("/api/agent/chat/{app_id}"),
            &owner.token,
            Some(&json!({ "message": "scripted-app MARKsecond" })),
        )
        .await;
    expect_error(second, 409, "E005").await;
    let mut rest = String::new();
    while let Some(c) = r.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(rest.contains("\"status\":\"completed\""), "{rest}");
}

#[tokio::test]
async fn correction_rounds_fix_errors_and_stop_at_their_bound() {
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
        .filter(|r| r.prompt.contains("Correction round"))
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
    let events = chat(app, &owner, &app_id, &format!("scripted-types {m}")).await;
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
        .filter(|r| r.prompt.contains("Correction round"))
        .collect();
    assert_eq!(corrections.len(), 1);
    assert!(
        corrections[0].prompt.contains("[typescript]")
            && corrections[0].prompt.contains("src/components/Hello.tsx:"),
        "{}",
        corrections[0].prompt
    );

    // Corrections that never fix it stop after 3 rounds; the remaining errors are reported and
    // the run goes on.
    let m = mark();
    let events = chat(app, &owner, &app_id, &format!("scripted-stuck {m}")).await;
    let l = labels(&events);
    let foundation: Vec<&str> = l
        .iter()
        .skip_while(|x| *x != "phase_start Foundation")
        .take_while(|x| *x != "phase_complete Foundation")
        .map(String::as_str)
        .collect();
    assert_eq!(
        foundation,
        [
            "phase_start Foundation",
            "file_generated src/components/Hello.tsx",
            "file_generated src/components/Hello.tsx",
            "file_generated src/components/Hello.tsx",
            "file_generated src/components/Hello.tsx",
            "error E005 true",
        ],
        "{l:?}"
    );
    assert!(events.iter().any(|(_, e)| matches!(e,
        AgentEvent::Error { message, .. }
            if message.contains("after 3 correction rounds") && message.contains("src/components/Hello.tsx"))));
    assert_eq!(l.last().unwrap(), "done Completed", "{l:?}");
    let rounds = fake_llm::conversations_with(&m)
        .into_iter()
        .filter(|r| r.prompt.contains("Correction round"))
        .count();
    assert_eq!(rounds, 3);
    let s = state(app, &owner, &app_id, 0).await;
    assert_eq!(s["state"]["phases"][0]["status"], "failed", "{s}");
    assert_eq!(s["state"]["phases"][1]["status"], "complete", "{s}");
}
