//! The AI routes and the LLM client end to end, against the fake OpenAI-compatible server:
//! BYOK keys sealed at rest, never returned, used for their owner's calls only; model override
//! validation; retries, fallback, malformed/truncated/stalled output (E005); the per-user AI
//! request and token limits (E003); usage accounting.

use crate::fake_llm::{self, BIG_TOTAL, FALLBACK_MODEL, NORMAL_TOTAL, PRIMARY_MODEL};
use crate::harness::{expect_error, Instance, User};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The AI instance: the `custom` provider pointed at the fake OpenAI-compatible server, a
/// platform key for it, BYOK enabled, tiny AI limits and a short model timeout.
pub const AI_REQUEST_LIMIT: u64 = 5;
pub const AI_TOKEN_LIMIT: u64 = 100;
pub const AI_PLATFORM_KEY: &str = "platform-key-0123456789";
pub const AI_TIMEOUT_MS: u64 = 1500;

pub fn ai_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| {
        let fake = fake_llm::url();
        let primary = fake_llm::PRIMARY_MODEL;
        let fallback = fake_llm::FALLBACK_MODEL;
        Instance::start(&[
            ("OPENAI_COMPATIBLE_BASE_URL", format!("{fake}/v1")),
            ("OPENAI_COMPATIBLE_API_KEY", AI_PLATFORM_KEY.into()),
            (
                "MODEL_CONFIG",
                json!({
                    "default": {"provider": "custom", "model": primary, "maxTokens": 1000},
                    "chat_edit": {"fallback": {"model": fallback}},
                    "blueprint": {"fallback": {"model": fallback}},
                })
                .to_string(),
            ),
            (
                "SECRETS_ENCRYPTION_KEY",
                "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into(),
            ),
            ("RATE_LIMIT_AI", format!("{AI_REQUEST_LIMIT}/60")),
            ("RATE_LIMIT_AI_TOKENS", format!("{AI_TOKEN_LIMIT}/60")),
            ("LLM_TIMEOUT_MS", AI_TIMEOUT_MS.to_string()),
            ("LLM_TOTAL_TIMEOUT_MS", "30000".into()),
        ])
    })
}

/// An instance without `SECRETS_ENCRYPTION_KEY` (set empty, overriding any local `.dev.vars`).
pub fn ai_nokey_instance() -> &'static Instance {
    static I: OnceLock<Instance> = OnceLock::new();
    I.get_or_init(|| Instance::start(&[("SECRETS_ENCRYPTION_KEY", String::new())]))
}

/// A marker unique to this test run, so the fake's records can be told apart.
fn nonce(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn ai_test(app: &Instance, u: &User, body: Value) -> Response {
    app.call(Method::POST, "/api/ai/test", &u.token, Some(&body))
        .await
}

async fn ok_json(r: Response) -> Value {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "body: {body}");
    body
}

async fn get(app: &Instance, u: &User, path: &str) -> Value {
    ok_json(app.call(Method::GET, path, &u.token, None).await).await
}

/// Rows from the instance's local D1 database, read straight from its SQLite file with a
/// read-only connection: the database is in WAL mode, where readers never block the running
/// Worker's writes (an external `wrangler d1 execute` took locks and made them fail as busy).
fn d1_rows(app: &Instance, sql: &str) -> Vec<Value> {
    let dir = app.state.join("v3/d1");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sqlite") {
                files.push(p);
            }
        }
    }
    for f in files {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let Ok(conn) = rusqlite::Connection::open_with_flags(&f, flags) else {
            continue;
        };
        let Ok(mut stmt) = conn.prepare(sql) else {
            continue;
        };
        let names: Vec<String> = stmt.column_names().map(|n| n.to_string()).collect();
        let rows = stmt
            .query_map([], |row| {
                let mut obj = serde_json::Map::new();
                for (i, n) in names.iter().enumerate() {
                    let v = match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => Value::Null,
                        rusqlite::types::ValueRef::Integer(x) => json!(x),
                        rusqlite::types::ValueRef::Real(x) => json!(x),
                        rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                        rusqlite::types::ValueRef::Blob(b) => json!(b),
                    };
                    obj.insert(n.clone(), v);
                }
                Ok(Value::Object(obj))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        return rows;
    }
    panic!(
        "no D1 database under {} answers {sql:?}",
        app.state.display()
    );
}

/// Whether `needle` occurs in any file under `dir` (databases, logs, object storage).
fn appears_under(dir: &std::path::Path, needle: &[u8]) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(hit) = appears_under(&p, needle) {
                return Some(hit);
            }
        } else if let Ok(bytes) = std::fs::read(&p) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return Some(p);
            }
        }
    }
    None
}

#[tokio::test]
async fn own_keys_are_sealed_never_returned_and_used_only_by_their_owner() {
    let app = ai_instance();
    let a = app.user("byok-a").await;
    let b = app.user("byok-b").await;
    let key_a = format!("sk-usera-{}", nonce("Secret").replace('-', "X"));

    // Shape and provider are validated.
    for (provider, body, field) in [
        ("custom", json!({"apiKey": "short"}), "apiKey"),
        ("custom", json!({"apiKey": "has spaces in it ok"}), "apiKey"),
        ("custom", json!({}), "apiKey"),
        ("custom", json!({"apiKey": key_a, "extra": 1}), "extra"),
        ("nope", json!({"apiKey": key_a}), "provider"),
    ] {
        let r = app
            .call(
                Method::PUT,
                &format!("/api/ai/keys/{provider}"),
                &a.token,
                Some(&body),
            )
            .await;
        let e = expect_error(r, 400, "E004").await;
        assert!(e["error"]["fields"][field].is_string(), "{e}");
    }

    let r = app
        .call(
            Method::PUT,
            "/api/ai/keys/custom",
            &a.token,
            Some(&json!({ "apiKey": key_a })),
        )
        .await;
    let text = r.text().await.unwrap();
    assert!(!text.contains(&key_a), "{text}");
    let put: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(put["provider"], "custom");
    let hint = put["hint"].as_str().unwrap();
    assert!(hint.contains('…') && hint != key_a, "{hint}");

    // No route returns it.
    for path in ["/api/ai/keys", "/api/ai/models", "/api/ai/usage"] {
        let body = get(app, &a, path).await;
        assert!(!body.to_string().contains(&key_a), "{path}: {body}");
    }
    let keys = get(app, &a, "/api/ai/keys").await;
    assert_eq!(keys["keys"][0]["provider"], "custom");
    assert_eq!(keys["keys"][0]["hint"], hint);
    assert!(keys["keys"][0]["createdAt"].is_string());
    assert_eq!(get(app, &b, "/api/ai/keys").await["keys"], json!([]));
    let models = get(app, &a, "/api/ai/models").await;
    let custom = models["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "custom")
        .unwrap()
        .clone();
    assert_eq!(
        (custom["userKey"].clone(), custom["platformKey"].clone()),
        (json!(true), json!(true))
    );
    // What the settings screen offers: the providers this deployment can call (the local
    // server here; no other provider has a key, gateway or account), their models (the
    // configured one first), and each operation's default.
    let usable: Vec<&str> = models["providers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["usable"] == true)
        .map(|p| p["provider"].as_str().unwrap())
        .collect();
    assert_eq!(usable, ["custom"], "{models}");
    assert_eq!(
        custom["models"][0],
        models["operations"]["blueprint"]["default"]["model"]
    );
    assert_eq!(
        models["operations"]["blueprint"]["default"]["provider"],
        "custom"
    );

    // A's calls carry A's key; B's carry the platform's.
    let na = nonce("byok-call-a");
    let r = ok_json(ai_test(app, &a, json!({ "prompt": na })).await).await;
    assert_eq!(r["keySource"], "user");
    let nb = nonce("byok-call-b");
    let r = ok_json(ai_test(app, &b, json!({ "prompt": nb })).await).await;
    assert_eq!(r["keySource"], "platform");
    let seen_a = fake_llm::requests_with(&na);
    let seen_b = fake_llm::requests_with(&nb);
    assert_eq!(seen_a.len(), 1);
    assert_eq!(
        seen_a[0].authorization.as_deref(),
        Some(format!("Bearer {key_a}").as_str())
    );
    assert_eq!(
        seen_b[0].authorization.as_deref(),
        Some(format!("Bearer {AI_PLATFORM_KEY}").as_str())
    );

    // At rest: sealed, bound to A, and the raw key is nowhere in the instance's state or logs.
    let rows = d1_rows(
        app,
        &format!(
            "SELECT user_id, provider, sealed_key, key_hint FROM user_provider_keys WHERE user_id = '{}'",
            a.id
        ),
    );
    assert_eq!(rows.len(), 1);
    let sealed = rows[0]["sealed_key"].as_str().unwrap();
    assert!(
        sealed.starts_with("v1:") && !sealed.contains(&key_a),
        "{sealed}"
    );
    assert_eq!(rows[0]["key_hint"], hint);
    assert_eq!(appears_under(&app.state, key_a.as_bytes()), None);

    // Deleted: gone, and A's calls fall back to the platform key.
    let del = |u: &User| {
        app.req(Method::DELETE, "/api/ai/keys/custom")
            .bearer_auth(&u.token)
            .send()
    };
    assert_eq!(del(&b).await.unwrap().status(), 404);
    assert_eq!(del(&a).await.unwrap().status(), 204);
    expect_error(del(&a).await.unwrap(), 404, "E002").await;
    let na2 = nonce("byok-call-a2");
    let r = ok_json(ai_test(app, &a, json!({ "prompt": na2 })).await).await;
    assert_eq!(r["keySource"], "platform");
}

#[tokio::test]
async fn key_routes_need_the_encryption_key() {
    let app = ai_nokey_instance();
    let u = app.user("nokey").await;
    let r = app.call(Method::GET, "/api/ai/keys", &u.token, None).await;
    let e = expect_error(r, 503, "E000").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SECRETS_ENCRYPTION_KEY"),
        "{e}"
    );
    let r = app
        .call(
            Method::PUT,
            "/api/ai/keys/openai",
            &u.token,
            Some(&json!({"apiKey": "sk-0123456789abcdef"})),
        )
        .await;
    expect_error(r, 503, "E000").await;
}

#[tokio::test]
async fn model_overrides_are_validated_and_applied() {
    let app = ai_instance();
    let u = app.user("models").await;
    let patch = |op: &str, body: Value| {
        app.req(Method::PATCH, &format!("/api/ai/models/{op}"))
            .bearer_auth(&u.token)
            .json(&body)
            .send()
    };
    let e = expect_error(
        patch(
            "chat_edit",
            json!({"temperature": 3, "maxTokens": 0, "provider": "nope", "bogus": 1}),
        )
        .await
        .unwrap(),
        400,
        "E004",
    )
    .await;
    for f in ["temperature", "maxTokens", "provider", "bogus"] {
        assert!(e["error"]["fields"][f].is_string(), "{f}: {e}");
    }
    let e = expect_error(patch("planning", json!({})).await.unwrap(), 400, "E004").await;
    assert!(e["error"]["fields"]["operation"].is_string(), "{e}");
    // Provider-dependent bounds are checked on the merged configuration.
    let e = expect_error(
        patch(
            "chat_edit",
            json!({"provider": "workers-ai", "model": "@cf/meta/llama-3.1-8b-instruct", "maxTokens": 100000}),
        )
        .await
        .unwrap(),
        400,
        "E004",
    )
    .await;
    assert!(
        e["error"]["fields"]["maxTokens"]
            .as_str()
            .unwrap()
            .contains("32768"),
        "{e}"
    );

    let r = ok_json(
        patch(
            "chatEdit",
            json!({"temperature": 0.2, "model": "fake-other"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(r["primary"]["model"], "fake-other");
    assert_eq!(r["primary"]["temperature"], 0.2);
    // A later patch merges with the saved override.
    let r = ok_json(patch("chat_edit", json!({"maxTokens": 500})).await.unwrap()).await;
    assert_eq!(
        r["override"],
        json!({"model": "fake-other", "temperature": 0.2, "maxTokens": 500})
    );
    let models = get(app, &u, "/api/ai/models").await;
    assert_eq!(
        models["operations"]["chat_edit"]["primary"]["model"],
        "fake-other"
    );
    assert_eq!(
        models["operations"]["blueprint"]["primary"]["model"],
        PRIMARY_MODEL
    );

    let n = nonce("override");
    let r = ok_json(ai_test(app, &u, json!({ "prompt": n })).await).await;
    assert_eq!(r["model"], "fake-other");
    assert_eq!(fake_llm::requests_with(&n)[0].model, "fake-other");

    // Reset.
    let r = app
        .call(Method::DELETE, "/api/ai/models/chat_edit", &u.token, None)
        .await;
    assert_eq!(ok_json(r).await["primary"]["model"], PRIMARY_MODEL);
    let n = nonce("reset");
    let r = ok_json(ai_test(app, &u, json!({ "prompt": n, "operation": "blueprint" })).await).await;
    assert_eq!(r["model"], PRIMARY_MODEL);
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_and_succeeds() {
    let app = ai_instance();
    let u = app.user("r429").await;
    let n = nonce("fail-429-once");
    let r = ok_json(ai_test(app, &u, json!({ "prompt": n })).await).await;
    assert_eq!(r["model"], PRIMARY_MODEL);
    assert_eq!(r["attempts"], 2);
    assert_eq!(r["fallbackUsed"], false);
    let seen = fake_llm::requests_with(&n);
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.model == PRIMARY_MODEL));
}

#[tokio::test]
async fn a_failing_primary_falls_back_to_the_fallback_model() {
    let app = ai_instance();
    let u = app.user("r500").await;
    let n = nonce("fail-500-always");
    let r = ok_json(ai_test(app, &u, json!({ "prompt": n })).await).await;
    assert_eq!(r["model"], FALLBACK_MODEL);
    assert_eq!(r["fallbackUsed"], true);
    assert!(r["text"].as_str().unwrap().contains(FALLBACK_MODEL));
    let models: Vec<String> = fake_llm::requests_with(&n)
        .into_iter()
        .map(|s| s.model)
        .collect();
    assert_eq!(
        models,
        [PRIMARY_MODEL, PRIMARY_MODEL, PRIMARY_MODEL, FALLBACK_MODEL]
    );
    // Streamed, the same.
    let n = nonce("fail-500-always");
    let r = ok_json(ai_test(app, &u, json!({ "prompt": n, "stream": true })).await).await;
    assert_eq!(r["model"], FALLBACK_MODEL);
}

#[tokio::test]
async fn malformed_and_truncated_output_is_e005_and_recorded_as_failed() {
    let app = ai_instance();
    // One user per call: every failed attempt is charged to its user's token budget.
    let mut users = Vec::new();
    for stream in [false, true] {
        let u = app.user("bad-output").await;
        let n = nonce("malformed");
        let e = expect_error(
            ai_test(app, &u, json!({ "prompt": n, "stream": stream })).await,
            502,
            "E005",
        )
        .await;
        let m = e["error"]["message"].as_str().unwrap();
        assert!(m.contains("malformed"), "{m}");
        // Retried on the primary, then the fallback, then reported.
        assert_eq!(fake_llm::requests_with(&n).len(), 5, "{m}");
        users.push(u);
    }
    // A stream cut mid-answer is not retried (content had reached the caller).
    let u = app.user("bad-output").await;
    let n = nonce("truncated");
    let e = expect_error(
        ai_test(app, &u, json!({ "prompt": n, "stream": true })).await,
        502,
        "E005",
    )
    .await;
    assert!(
        e["error"]["message"].as_str().unwrap().contains("cut off"),
        "{e}"
    );
    assert_eq!(fake_llm::requests_with(&n).len(), 1);
    users.push(u);
    // Every attempt that cost tokens is recorded, as failed: none as completed.
    for u in &users {
        let usage = get(app, u, "/api/ai/usage").await;
        let total = &usage["total"];
        assert_eq!(total["requests"], total["failed"]["requests"], "{usage}");
        assert_eq!(
            total["totalTokens"], total["failed"]["totalTokens"],
            "{usage}"
        );
        assert_eq!(total["cancelled"]["requests"], 0, "{usage}");
        let outcomes = d1_rows(
            app,
            &format!(
                "SELECT DISTINCT outcome FROM ai_usage WHERE user_id = '{}'",
                u.id
            ),
        );
        assert!(
            !outcomes.is_empty() && outcomes.iter().all(|r| r.to_string().contains("failed")),
            "{outcomes:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_streams_tokens_are_charged_to_the_budget() {
    let app = ai_instance();
    let u = app.user("charged").await;
    // A stream cut mid-answer: the provider sent no usage, so the prompt's estimate (one token
    // per four characters, here well over the budget) and what streamed are charged.
    let padding = "p".repeat(4 * AI_TOKEN_LIMIT as usize + 40);
    let n = nonce("truncated");
    expect_error(
        ai_test(
            app,
            &u,
            json!({ "prompt": format!("{n} {padding}"), "stream": true }),
        )
        .await,
        502,
        "E005",
    )
    .await;
    assert_eq!(fake_llm::requests_with(&n).len(), 1);
    // The budget is spent: the next call is refused before it reaches the model.
    let usage = get(app, &u, "/api/ai/usage").await;
    // (Nothing is left, unless a window rolled over just now and forgave a few.)
    assert!(
        usage["budget"]["remaining"].as_u64().unwrap() < 5,
        "{usage}"
    );
    // ... and reported: one failed call with what it was charged.
    assert_eq!(usage["total"]["requests"], 1, "{usage}");
    assert_eq!(usage["total"]["failed"]["requests"], 1, "{usage}");
    assert!(
        usage["total"]["failed"]["totalTokens"].as_u64().unwrap() > AI_TOKEN_LIMIT,
        "{usage}"
    );
    let n = nonce("after-charge");
    let e = expect_error(ai_test(app, &u, json!({ "prompt": n })).await, 429, "E003").await;
    let m = e["error"]["message"].as_str().unwrap();
    assert!(m.contains("token limit"), "{m}");
    assert!(fake_llm::requests_with(&n).is_empty());
    // Another user's budget is untouched.
    let v = app.user("charged-other").await;
    ok_json(ai_test(app, &v, json!({ "prompt": nonce("charged-other") })).await).await;
}

#[tokio::test]
async fn a_timed_out_streams_content_is_charged_to_the_budget() {
    let app = ai_instance();
    let u = app.user("charged-hang").await;
    // The prompt alone is estimated well under the budget; with the echo that streamed before
    // the stream stalled (as long again) it is over.
    let padding = "q".repeat(2 * AI_TOKEN_LIMIT as usize);
    let n = nonce("drip-hang");
    let prompt = format!("{n} {padding}");
    assert!((prompt.len() + 44) / 4 + 1 < AI_TOKEN_LIMIT as usize);
    let e = expect_error(
        ai_test(app, &u, json!({ "prompt": prompt, "stream": true })).await,
        502,
        "E005",
    )
    .await;
    let m = e["error"]["message"].as_str().unwrap();
    assert!(m.contains(&format!("within {AI_TIMEOUT_MS} ms")), "{m}");
    // Content had arrived: not retried.
    assert_eq!(fake_llm::requests_with(&n).len(), 1);
    let n = nonce("after-hang");
    let e = expect_error(ai_test(app, &u, json!({ "prompt": n })).await, 429, "E003").await;
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("token limit"));
    assert!(fake_llm::requests_with(&n).is_empty());
}

#[tokio::test]
async fn a_providers_error_text_is_summarised_for_the_user() {
    let app = ai_instance();
    let u = app.user("provider-401").await;
    let n = nonce("fail-401-always");
    let e = expect_error(ai_test(app, &u, json!({ "prompt": n })).await, 502, "E005").await;
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.contains(
            "the model provider answered 401 (invalid_request_error): the API key was rejected"
        ),
        "{m}"
    );
    // The provider's own words (which quote the key) stay in the log.
    for raw in ["Incorrect API key", "fake-node-7", AI_PLATFORM_KEY] {
        assert!(!m.contains(raw), "{raw} in {m}");
    }
    assert!(!fake_llm::requests_with(&n).is_empty());
}

#[tokio::test]
async fn a_stalled_model_times_out_with_e005() {
    let app = ai_instance();
    let u = app.user("stall").await;
    let n = nonce("stall");
    let e = expect_error(ai_test(app, &u, json!({ "prompt": n })).await, 502, "E005").await;
    let m = e["error"]["message"].as_str().unwrap();
    assert!(m.contains(&format!("within {AI_TIMEOUT_MS} ms")), "{m}");
    assert!(!fake_llm::requests_with(&n).is_empty());
}

#[tokio::test]
async fn streamed_completion_and_usage_is_recorded() {
    let app = ai_instance();
    let u = app.user("stream").await;
    let n = nonce("hello there streaming world");
    let r = ok_json(ai_test(app, &u, json!({ "prompt": n, "stream": true })).await).await;
    assert_eq!(r["text"], format!("echo from {PRIMARY_MODEL}: {n}"));
    assert!(r["deltas"].as_u64().unwrap() > 1, "{r}");
    assert_eq!(r["usage"]["totalTokens"], NORMAL_TOTAL);
    assert!(fake_llm::requests_with(&n)[0].stream);
    let r = ok_json(ai_test(app, &u, json!({ "prompt": nonce("plain") })).await).await;
    assert_eq!(r["usage"]["promptTokens"], 7);
    let usage = get(app, &u, "/api/ai/usage").await;
    assert_eq!(usage["total"]["requests"], 2, "{usage}");
    // Both calls' tokens left the budget (a window that rolled over since may have forgiven
    // some of them, never more).
    assert_eq!(usage["budget"]["tokens"], AI_TOKEN_LIMIT, "{usage}");
    let left = usage["budget"]["remaining"].as_u64().unwrap();
    assert!(
        (AI_TOKEN_LIMIT - 2 * NORMAL_TOTAL..AI_TOKEN_LIMIT).contains(&left),
        "{usage}"
    );
    assert_eq!(usage["total"]["totalTokens"], 2 * NORMAL_TOTAL);
    assert_eq!(usage["operations"][0]["operation"], "chat_edit");
    let rows = d1_rows(
        app,
        &format!(
            "SELECT provider, model, key_source, total_tokens, app_id FROM ai_usage WHERE user_id = '{}'",
            u.id
        ),
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["provider"], "custom");
    assert_eq!(rows[0]["key_source"], "platform");
    assert_eq!(rows[0]["total_tokens"], NORMAL_TOTAL);
    assert!(rows[0]["app_id"].is_null());
}

#[tokio::test]
async fn the_ai_request_limit_answers_e003_naming_it() {
    let app = ai_instance();
    let u = app.user("ai-limit").await;
    for i in 0..AI_REQUEST_LIMIT {
        ok_json(ai_test(app, &u, json!({ "prompt": nonce(&format!("limit-{i}")) })).await).await;
    }
    let r = ai_test(app, &u, json!({ "prompt": nonce("limit-over") })).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // A sliding window that rolled over mid-test can ask for up to two windows.
    assert!((1..=120).contains(&retry), "retry-after {retry}");
    let e = expect_error(r, 429, "E003").await;
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("AI request limit")
            && m.contains(&format!("{AI_REQUEST_LIMIT} requests"))
            && m.contains("resets in"),
        "{m}"
    );
    // Another user is unaffected.
    let v = app.user("ai-limit-other").await;
    ok_json(ai_test(app, &v, json!({ "prompt": nonce("limit-other") })).await).await;
}

#[tokio::test]
async fn the_ai_token_budget_answers_e003_naming_it() {
    let app = ai_instance();
    let u = app.user("tok-limit").await;
    // Two calls of BIG_TOTAL tokens exhaust the budget; the next is refused before any call.
    const { assert!(2 * BIG_TOTAL > AI_TOKEN_LIMIT && BIG_TOTAL < AI_TOKEN_LIMIT) };
    for _ in 0..2 {
        ok_json(ai_test(app, &u, json!({ "prompt": nonce("big-usage") })).await).await;
    }
    let n = nonce("big-usage");
    let e = expect_error(ai_test(app, &u, json!({ "prompt": n })).await, 429, "E003").await;
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("token limit") && m.contains(&format!("{AI_TOKEN_LIMIT} tokens")),
        "{m}"
    );
    assert!(fake_llm::requests_with(&n).is_empty());
}
