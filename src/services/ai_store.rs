//! D1 repository of the AI tables (`migrations/0004_ai.sql`): users' sealed provider keys, their
//! per-operation model overrides, and token usage. Bound parameters only; every statement is
//! scoped by `user_id`, so one user's rows are unreachable from another's calls.

use crate::domain::error::ApiResult;
use crate::domain::ids::{AppId, UserId};
use serde::Deserialize;
use worker::D1Database;

use super::db::{all, first, int, opt, run, text};

// ---------------------------------------------------------------- provider keys

/// A stored key as listed: never the key itself.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyRow {
    pub provider: String,
    pub key_hint: String,
    pub created_at: Option<f64>,
    pub updated_at: Option<f64>,
}

pub async fn list_keys(db: &D1Database, user_id: &UserId) -> ApiResult<Vec<KeyRow>> {
    all(
        db,
        "SELECT provider, key_hint, created_at, updated_at FROM user_provider_keys \
         WHERE user_id = ?1 ORDER BY provider",
        &[text(user_id)],
    )
    .await
}

pub async fn sealed_key(
    db: &D1Database,
    user_id: &UserId,
    provider: &str,
) -> ApiResult<Option<String>> {
    #[derive(Deserialize)]
    struct Row {
        sealed_key: String,
    }
    Ok(first::<Row>(
        db,
        "SELECT sealed_key FROM user_provider_keys WHERE user_id = ?1 AND provider = ?2",
        &[text(user_id), text(provider)],
    )
    .await?
    .map(|r| r.sealed_key))
}

pub async fn put_key(
    db: &D1Database,
    user_id: &UserId,
    provider: &str,
    sealed: &str,
    hint: &str,
) -> ApiResult<()> {
    run(
        db,
        "INSERT INTO user_provider_keys (user_id, provider, sealed_key, key_hint) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (user_id, provider) DO UPDATE SET sealed_key = excluded.sealed_key, \
         key_hint = excluded.key_hint, updated_at = unixepoch()",
        &[text(user_id), text(provider), text(sealed), text(hint)],
    )
    .await
    .map(|_| ())
}

pub async fn delete_key(db: &D1Database, user_id: &UserId, provider: &str) -> ApiResult<bool> {
    Ok(run(
        db,
        "DELETE FROM user_provider_keys WHERE user_id = ?1 AND provider = ?2",
        &[text(user_id), text(provider)],
    )
    .await?
        > 0)
}

// ---------------------------------------------------------------- model overrides

#[derive(Debug, Clone, Deserialize)]
pub struct OverrideRow {
    pub operation: String,
    pub config: String,
}

pub async fn overrides(db: &D1Database, user_id: &UserId) -> ApiResult<Vec<OverrideRow>> {
    all(
        db,
        "SELECT operation, config FROM user_model_configs WHERE user_id = ?1",
        &[text(user_id)],
    )
    .await
}

pub async fn override_for(
    db: &D1Database,
    user_id: &UserId,
    op: &str,
) -> ApiResult<Option<String>> {
    Ok(first::<OverrideRow>(
        db,
        "SELECT operation, config FROM user_model_configs WHERE user_id = ?1 AND operation = ?2",
        &[text(user_id), text(op)],
    )
    .await?
    .map(|r| r.config))
}

pub async fn put_override(
    db: &D1Database,
    user_id: &UserId,
    op: &str,
    config: &str,
) -> ApiResult<()> {
    run(
        db,
        "INSERT INTO user_model_configs (user_id, operation, config) VALUES (?1, ?2, ?3) \
         ON CONFLICT (user_id, operation) DO UPDATE SET config = excluded.config, updated_at = unixepoch()",
        &[text(user_id), text(op), text(config)],
    )
    .await
    .map(|_| ())
}

pub async fn delete_override(db: &D1Database, user_id: &UserId, op: &str) -> ApiResult<bool> {
    Ok(run(
        db,
        "DELETE FROM user_model_configs WHERE user_id = ?1 AND operation = ?2",
        &[text(user_id), text(op)],
    )
    .await?
        > 0)
}

// ---------------------------------------------------------------- usage

/// One successful model call.
pub struct UsageRecord<'a> {
    pub user_id: &'a UserId,
    pub app_id: Option<&'a AppId>,
    pub operation: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_tokens: u64,
    /// `user` or `platform`.
    pub key_source: &'a str,
    /// `completed`, `cancelled` or `failed`.
    pub outcome: &'a str,
}

pub async fn record_usage(db: &D1Database, r: &UsageRecord<'_>) -> ApiResult<()> {
    run(
        db,
        "INSERT INTO ai_usage (id, user_id, app_id, operation, provider, model, prompt_tokens, \
         completion_tokens, total_tokens, key_source, outcome, cached_tokens) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        &[
            text(crate::domain::random::id("use")),
            text(r.user_id),
            opt(r.app_id.map(AppId::as_str)),
            text(r.operation),
            text(r.provider),
            text(r.model),
            int(r.prompt_tokens as i64),
            int(r.completion_tokens as i64),
            int(r.total_tokens as i64),
            text(r.key_source),
            text(r.outcome),
            int(r.cached_tokens as i64),
        ],
    )
    .await
    .map(|_| ())
}

#[derive(Debug, Clone, Deserialize)]
pub struct UsageTotals {
    pub operation: String,
    pub requests: f64,
    pub prompt_tokens: f64,
    pub completion_tokens: f64,
    pub total_tokens: f64,
    /// Calls (and their tokens, included above) that were cancelled or failed.
    pub cancelled_requests: f64,
    pub cancelled_tokens: f64,
    pub failed_requests: f64,
    pub failed_tokens: f64,
}

/// Per operation, everything an app's calls used (any time), cached prompt tokens included.
#[derive(Debug, Clone, Deserialize)]
pub struct AppUsageTotals {
    pub operation: String,
    pub requests: f64,
    pub prompt_tokens: f64,
    pub completion_tokens: f64,
    pub cached_tokens: f64,
    pub total_tokens: f64,
}

/// An app's usage per operation (the caller checked ownership).
pub async fn app_usage(db: &D1Database, app_id: &AppId) -> ApiResult<Vec<AppUsageTotals>> {
    all(
        db,
        "SELECT operation, COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, \
         SUM(completion_tokens) AS completion_tokens, SUM(cached_tokens) AS cached_tokens, \
         SUM(total_tokens) AS total_tokens \
         FROM ai_usage WHERE app_id = ?1 GROUP BY operation ORDER BY operation",
        &[text(app_id)],
    )
    .await
}

/// The user's usage since `since` (epoch seconds), per operation: every recorded attempt,
/// whatever its outcome.
pub async fn usage_since(
    db: &D1Database,
    user_id: &UserId,
    since: i64,
) -> ApiResult<Vec<UsageTotals>> {
    all(
        db,
        "SELECT operation, COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, \
         SUM(completion_tokens) AS completion_tokens, SUM(total_tokens) AS total_tokens, \
         SUM(outcome = 'cancelled') AS cancelled_requests, \
         SUM(CASE WHEN outcome = 'cancelled' THEN total_tokens ELSE 0 END) AS cancelled_tokens, \
         SUM(outcome = 'failed') AS failed_requests, \
         SUM(CASE WHEN outcome = 'failed' THEN total_tokens ELSE 0 END) AS failed_tokens \
         FROM ai_usage WHERE user_id = ?1 AND created_at >= ?2 GROUP BY operation ORDER BY operation",
        &[text(user_id), int(since)],
    )
    .await
}
