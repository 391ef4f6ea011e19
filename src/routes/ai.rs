//! `/api/ai/*`: the caller's AI settings (own provider keys, per-operation model overrides), a
//! test completion through the full LLM client, and the caller's token usage and what is left of
//! their token budget.
//!
//! Invariants: a stored key is never returned, only its masked hint; every row read or written
//! belongs to the caller.

use crate::domain::codegen::crypto::{self, SealingKey};
use crate::domain::codegen::models::{ModelOverride, Operation, Provider};
use crate::domain::codegen::routing::{provider_usable, ChatMessage};
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::random;
use crate::http::auth::Caller;
use crate::http::{error_response, header, internal, json, json_body, no_content, read_body, App};
use crate::services::ai_store;
use crate::services::llm::{Call, Llm};
use serde_json::{json, Map, Value};
use worker::{Request, Response};

const MIN_KEY_CHARS: usize = 8;
const MAX_KEY_CHARS: usize = 512;
const MAX_PROMPT_CHARS: usize = 8_000;

fn provider_param(p: &str) -> ApiResult<Provider> {
    Provider::parse(p).ok_or_else(|| {
        ApiError::field(
            "provider",
            format!(
                "unknown provider; expected one of: {}",
                Provider::ALL.map(Provider::as_str).join(", ")
            ),
        )
    })
}

fn operation_param(op: &str) -> ApiResult<Operation> {
    Operation::parse(op).ok_or_else(|| {
        ApiError::field(
            "operation",
            format!(
                "unknown operation; expected one of: {}",
                Operation::ALL.map(Operation::as_str).join(", ")
            ),
        )
    })
}

/// The key routes need `SECRETS_ENCRYPTION_KEY` (a malformed one fails the configuration).
fn require_sealing_key(app: &App) -> ApiResult<&SealingKey> {
    app.cfg.sealing_key.as_ref().ok_or_else(|| {
        ApiError::unavailable(
            "storing your own API keys is unavailable: SECRETS_ENCRYPTION_KEY is not set on this deployment",
        )
    })
}

pub async fn list_keys(app: &App, caller: &Caller) -> ApiResult<Response> {
    require_sealing_key(app)?;
    let rows = ai_store::list_keys(&app.db()?, &caller.user_id).await?;
    let keys: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "provider": r.provider,
                "hint": r.key_hint,
                "createdAt": crate::domain::apps::iso(r.created_at),
                "updatedAt": crate::domain::apps::iso(r.updated_at),
            })
        })
        .collect();
    json(200, &json!({ "keys": keys }))
}

fn check_key(key: &str) -> Result<(), String> {
    let n = key.chars().count();
    if !(MIN_KEY_CHARS..=MAX_KEY_CHARS).contains(&n) {
        return Err(format!(
            "must be {MIN_KEY_CHARS} to {MAX_KEY_CHARS} characters"
        ));
    }
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err("may contain only printable ASCII characters without spaces".into());
    }
    Ok(())
}

pub async fn put_key(mut req: Request, app: &App, caller: &Caller, p: &str) -> ApiResult<Response> {
    let provider = provider_param(p)?;
    let sealing = require_sealing_key(app)?;
    let mut body = json_body(&mut req).await?;
    let key = body.required_string("apiKey", MAX_KEY_CHARS + 1);
    if let Some(k) = &key {
        if let Err(m) = check_key(k) {
            body.error("apiKey", m);
        }
    }
    body.finish()?;
    let key = key.ok_or_else(ApiError::internal)?;
    let sealed = crypto::seal(
        sealing,
        caller.user_id.as_str(),
        provider,
        &key,
        random::bytes::<12>(),
    );
    let hint = crypto::mask(&key);
    ai_store::put_key(
        &app.db()?,
        &caller.user_id,
        provider.as_str(),
        &sealed,
        &hint,
    )
    .await?;
    json(200, &json!({ "provider": provider, "hint": hint }))
}

pub async fn delete_key(app: &App, caller: &Caller, p: &str) -> ApiResult<Response> {
    let provider = provider_param(p)?;
    require_sealing_key(app)?;
    if !ai_store::delete_key(&app.db()?, &caller.user_id, provider.as_str()).await? {
        return Err(ApiError::not_found("API key"));
    }
    no_content()
}

pub async fn models(app: &App, caller: &Caller) -> ApiResult<Response> {
    let client = Llm::new(&app.env, &app.cfg)?;
    let saved = client.user_overrides(&caller.user_id).await?;
    let mut ops = Map::new();
    for op in Operation::ALL {
        let o = saved.get(&op).cloned().unwrap_or_default();
        let default = &client.table().get(op).primary;
        let entry = match client.table().resolve(op, &[&o]) {
            Ok(m) => json!({
                "primary": m.primary,
                "fallback": m.fallback,
                "override": saved.get(&op),
                "default": default,
            }),
            // A saved override that no longer validates (e.g. MODEL_CONFIG changed): show the
            // deployment's choice and the problem.
            Err(e) => {
                let m = client.table().get(op);
                json!({
                    "primary": m.primary,
                    "fallback": m.fallback,
                    "override": saved.get(&op),
                    "overrideError": e.fields,
                    "default": default,
                })
            }
        };
        ops.insert(op.as_str().into(), entry);
    }
    let user_keys: Vec<String> = ai_store::list_keys(&app.db()?, &caller.user_id)
        .await?
        .into_iter()
        .map(|r| r.provider)
        .collect();
    let settings = client.settings();
    let providers: Vec<Value> = Provider::ALL
        .iter()
        .map(|p| {
            let user_key = user_keys.iter().any(|u| u == p.as_str());
            json!({
                "provider": p,
                "platformKey": settings.keys.contains_key(p),
                "userKey": user_key,
                "usable": provider_usable(*p, settings, user_key),
                "models": client.table().models_of(*p),
            })
        })
        .collect();
    json(
        200,
        &json!({
            "operations": ops,
            "providers": providers,
            "gateway": settings.gateway_endpoint().is_some(),
            "customBaseUrl": settings.custom_base_url.is_some(),
        }),
    )
}

fn merge(base: &ModelOverride, o: &ModelOverride) -> ModelOverride {
    ModelOverride {
        provider: o.provider.or(base.provider),
        model: o.model.clone().or_else(|| base.model.clone()),
        temperature: o.temperature.or(base.temperature),
        max_tokens: o.max_tokens.or(base.max_tokens),
        top_p: o.top_p.or(base.top_p),
        frequency_penalty: o.frequency_penalty.or(base.frequency_penalty),
        presence_penalty: o.presence_penalty.or(base.presence_penalty),
    }
}

pub async fn patch_model(
    mut req: Request,
    app: &App,
    caller: &Caller,
    op: &str,
) -> ApiResult<Response> {
    let op = operation_param(op)?;
    let ct = header(&req, "Content-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !ct.starts_with("application/json") {
        return Err(ApiError::field("Content-Type", "must be application/json"));
    }
    let bytes = read_body(&mut req).await?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::validation(format!(
            "malformed JSON at line {}, column {}",
            e.line(),
            e.column()
        ))
    })?;
    let patch = ModelOverride::parse(&v)?;
    let db = app.db()?;
    let saved = match ai_store::override_for(&db, &caller.user_id, op.as_str()).await? {
        Some(s) => serde_json::from_str::<Value>(&s)
            .ok()
            .and_then(|v| ModelOverride::parse(&v).ok())
            .unwrap_or_default(),
        None => ModelOverride::default(),
    };
    let merged = merge(&saved, &patch);
    // Provider-dependent limits (maxTokens) are checked on the merged configuration.
    let resolved = app.cfg.llm.models.resolve(op, &[&merged])?;
    let stored = serde_json::to_string(&merged).map_err(internal)?;
    ai_store::put_override(&db, &caller.user_id, op.as_str(), &stored).await?;
    json(
        200,
        &json!({
            "operation": op,
            "override": merged,
            "primary": resolved.primary,
            "fallback": resolved.fallback,
        }),
    )
}

pub async fn delete_model(app: &App, caller: &Caller, op: &str) -> ApiResult<Response> {
    let op = operation_param(op)?;
    ai_store::delete_override(&app.db()?, &caller.user_id, op.as_str()).await?;
    let m = app.cfg.llm.models.get(op);
    json(
        200,
        &json!({ "operation": op, "override": Value::Null, "primary": m.primary, "fallback": m.fallback }),
    )
}

/// Sets `Retry-After` on the AI limits' 429s.
fn with_retry_after(r: ApiResult<Response>) -> ApiResult<Response> {
    match r {
        Err(e) if e.status == 429 => {
            let resp = error_response(&e);
            if let Some(s) = e.fields.get("retryAfter") {
                let _ = resp.headers().set("Retry-After", s);
            }
            Ok(resp)
        }
        other => other,
    }
}

pub async fn test(mut req: Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    let mut body = json_body(&mut req).await?;
    let op = match body.string("operation", 64) {
        crate::domain::input::Patch::Value(s) => match Operation::parse(&s) {
            Some(op) => Some(op),
            None => {
                body.error(
                    "operation",
                    format!(
                        "unknown operation; expected one of: {}",
                        Operation::ALL.map(Operation::as_str).join(", ")
                    ),
                );
                None
            }
        },
        _ => Some(Operation::ChatEdit),
    };
    let prompt = body.required_string("prompt", MAX_PROMPT_CHARS);
    let stream = matches!(
        body.boolean("stream"),
        crate::domain::input::Patch::Value(true)
    );
    body.finish()?;
    let (Some(op), Some(prompt)) = (op, prompt) else {
        return Err(ApiError::internal());
    };
    let client = Llm::new(&app.env, &app.cfg)?;
    let call = Call {
        user_id: &caller.user_id,
        app_id: None,
        operation: op,
        overrides: None,
        cancel: None,
    };
    let messages = [
        ChatMessage::system("You are a helpful assistant. Answer briefly."),
        ChatMessage::user(prompt),
    ];
    let mut deltas = 0u32;
    let result = if stream {
        client
            .stream(&call, &messages, &mut |_d: &str| deltas += 1)
            .await
    } else {
        client.complete(&call, &messages).await
    };
    with_retry_after(result.and_then(|o| {
        let mut v = serde_json::to_value(&o).map_err(internal)?;
        v["operation"] = json!(op);
        if stream {
            v["deltas"] = json!(deltas);
        }
        json(200, &v)
    }))
}

/// `GET /api/apps/:id/usage`: the owner's app's usage per operation, cached tokens included.
pub async fn app_usage(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let rows = ai_store::app_usage(&app.db()?, &rec.id).await?;
    let mut total = [0u64; 5];
    let ops: Vec<Value> = rows
        .iter()
        .map(|r| {
            let n = [
                r.requests,
                r.prompt_tokens,
                r.completion_tokens,
                r.cached_tokens,
                r.total_tokens,
            ]
            .map(|x| x.max(0.0) as u64);
            for (t, x) in total.iter_mut().zip(n) {
                *t += x;
            }
            json!({
                "operation": r.operation,
                "requests": n[0],
                "promptTokens": n[1],
                "completionTokens": n[2],
                "cachedTokens": n[3],
                "totalTokens": n[4],
            })
        })
        .collect();
    json(
        200,
        &json!({
            "appId": rec.id,
            "operations": ops,
            "total": {
                "requests": total[0],
                "promptTokens": total[1],
                "completionTokens": total[2],
                "cachedTokens": total[3],
                "totalTokens": total[4],
            },
        }),
    )
}

pub async fn usage(app: &App, caller: &Caller) -> ApiResult<Response> {
    // The token budget as it stands: a probe (cost 0) records nothing.
    let limit = app.cfg.ai_token_limit;
    let key = format!("user:{}", caller.user_id);
    let budget = crate::services::ratelimit::hit(
        &app.env,
        crate::services::ratelimit::Class::AiTokens,
        &key,
        limit,
        0,
    )
    .await?;
    let since = crate::services::now_ms() / 1000 - 24 * 3600;
    let rows = ai_store::usage_since(&app.db()?, &caller.user_id, since).await?;
    let mut total = [0u64; 8];
    let ops: Vec<Value> = rows
        .iter()
        .map(|r| {
            let n = [
                r.requests,
                r.prompt_tokens,
                r.completion_tokens,
                r.total_tokens,
                r.cancelled_requests,
                r.cancelled_tokens,
                r.failed_requests,
                r.failed_tokens,
            ]
            .map(|v| v as u64);
            for (t, v) in total.iter_mut().zip(n) {
                *t += v;
            }
            let mut v = usage_counts(&n);
            v["operation"] = json!(r.operation);
            v
        })
        .collect();
    json(
        200,
        &json!({
            "budget": {
                "tokens": limit.requests,
                "windowSeconds": limit.window_ms / 1000,
                "remaining": budget.remaining,
                "resetAt": (budget.reset_ms + 999) / 1000,
            },
            "windowHours": 24,
            "operations": ops,
            "total": usage_counts(&total),
        }),
    )
}

/// One row of usage: requests, tokens, then requests and tokens of cancelled and failed calls.
fn usage_counts(n: &[u64; 8]) -> Value {
    json!({
        "requests": n[0],
        "promptTokens": n[1],
        "completionTokens": n[2],
        "totalTokens": n[3],
        "cancelled": { "requests": n[4], "totalTokens": n[5] },
        "failed": { "requests": n[6], "totalTokens": n[7] },
    })
}
