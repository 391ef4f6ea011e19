//! The LLM client: OpenAI-compatible chat completions over `fetch`, streamed ([`Llm::stream`])
//! and not ([`Llm::complete`]). The decisions are the domain's (`codegen::models` picks the
//! model, `codegen::routing` addresses the call and picks the key, `codegen::retry` decides
//! retries and the fallback, `codegen::sse` decodes) and its settings are the configuration
//! parsed once per isolate (`app.cfg.llm`); this module does the I/O around them: the per-user
//! AI limits, the user's sealed key, timeouts, backoff sleeps, cancellation, and usage accounting.
//!
//! Invariants:
//! - every call first passes the AI request limit (`RATE_LIMIT_AI`) and the token budget
//!   (`RATE_LIMIT_AI_TOKENS`), per user; the tokens every attempt used are charged when the call
//!   ends, however it ends (success, failure, time-out, cancellation): the provider's count, else
//!   an estimate of the prompt and of what streamed ([`AttemptCost`]);
//! - a user's own key for the provider is used for that user's calls only, and no key is ever
//!   logged or put in an error (provider error texts are scrubbed of the key sent);
//! - a provider's own error text goes to the log only: users are told our summary (the status
//!   and what it means, the provider's error type at most);
//! - nothing is retried once content reached the caller's callback;
//! - every attempt that cost tokens is recorded in `ai_usage` with its outcome (`completed`,
//!   `cancelled` or `failed`; the provider's count, else the estimate), before the call returns,
//!   so what `GET /api/ai/usage` reports matches what the budget was charged.

use crate::domain::codegen::chat_stream::{
    decode_completion, estimate_tokens, status_summary, AttemptCost, ChatError, ChatStream,
    ProviderError,
};
use crate::domain::codegen::crypto;
use crate::domain::codegen::models::{
    ModelConfig, ModelOverride, ModelTable, Operation, OperationModels, Provider,
};
use crate::domain::codegen::retry::{
    parse_retry_after, parse_retry_after_ms, Action, Attempts, Class as FailureClass, Failure,
    RetryPolicy,
};
use crate::domain::codegen::routing::{
    build_request, ChatMessage, ChatRequest, KeySource, LlmSettings,
};
use crate::domain::config::Config;
use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::ids::{AppId, UserId};
use crate::domain::ratelimit::{Decision, Limit};
use crate::http::DB_BINDING;
use crate::services::ai_store::{self, UsageRecord};
use crate::services::now_ms;
use crate::services::ratelimit::{self, Class};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;
use worker::{
    AbortController, D1Database, Delay, Env, Fetch, Headers, Method, Request, RequestInit,
};

/// A cancellation flag, checked before each attempt and between streamed chunks (the code
/// generator's `stop`).
pub use crate::domain::codegen::driver::Cancel;

/// What one logical call is for.
pub struct Call<'a> {
    pub user_id: &'a UserId,
    pub app_id: Option<&'a AppId>,
    pub operation: Operation,
    /// A request's own override, laid over the user's saved one.
    pub overrides: Option<&'a ModelOverride>,
    pub cancel: Option<&'a Cancel>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageOut {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// A successful call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub text: String,
    /// The model configured (not the provider-prefixed id sent to a gateway).
    pub model: String,
    pub provider: Provider,
    pub usage: UsageOut,
    pub key_source: KeySource,
    pub fallback_used: bool,
    pub attempts: u32,
}

/// The client for one request. Its settings (routing, model table, time limits) come from the
/// configuration parsed once per isolate (`domain::config::LlmConfig`).
pub struct Llm<'a> {
    /// The bindings it uses: `DB` (keys, overrides, usage) and the rate-limit objects.
    env: &'a Env,
    cfg: &'a Config,
    policy: RetryPolicy,
    timeout_ms: u64,
    total_timeout_ms: u64,
}

pub use crate::domain::codegen::driver::generation_failed;

fn limit_error(message: String, which: &str, d: &Decision) -> ApiError {
    let secs = d.retry_after_secs(now_ms()).max(1);
    let mut e = ApiError::rate_limited(format!("{message}; resets in {secs} s"));
    e.fields.insert("limit".into(), which.into());
    e.fields.insert("retryAfter".into(), secs.to_string());
    e
}

fn window_text(l: Limit) -> String {
    let s = l.window_ms / 1000;
    if s == 60 {
        "minute".into()
    } else {
        format!("{s} s")
    }
}

/// Waits for `f` until the epoch-millisecond `deadline`; `None` when time ran out first.
async fn within<F: Future>(f: F, deadline: i64) -> Option<F::Output> {
    let left = (deadline - now_ms()).max(0) as u64;
    let timer = Delay::from(Duration::from_millis(left));
    match select(Box::pin(f), Box::pin(timer)).await {
        Either::Left((v, _)) => Some(v),
        Either::Right(_) => None,
    }
}

enum AttemptError {
    /// How it failed, the detail for the log (which may quote the provider), and what the user
    /// is told (our own words: [`ChatError::summary`], [`status_summary`]).
    Failed(Failure, String, String),
    Cancelled,
}

struct Success {
    text: String,
}

/// Removes the key a request carried from a text that might echo it.
fn scrub(text: &str, req: &ChatRequest) -> String {
    let mut out = text.to_string();
    for (k, v) in &req.headers {
        if k == "authorization" || k == "cf-aig-authorization" {
            let secret = v.trim_start_matches("Bearer ").trim();
            if secret.len() >= 4 {
                out = out.replace(secret, "<redacted>");
            }
        }
    }
    out
}

/// A failure after content reached the caller can never be retried.
fn after_content(f: Failure, received: bool) -> Failure {
    if received && f.class() != FailureClass::Final {
        Failure::Truncated {
            received_content: true,
        }
    } else {
        f
    }
}

fn jitter() -> f64 {
    let b = crate::domain::random::bytes::<4>();
    u32::from_be_bytes(b) as f64 / (u32::MAX as f64 + 1.0)
}

impl<'a> Llm<'a> {
    /// A client over the deployment's parsed LLM configuration. The configuration was checked
    /// when `cfg` was parsed, so this does not fail today; the `Result` leaves room for checks
    /// that need the request.
    pub fn new(env: &'a Env, cfg: &'a Config) -> ApiResult<Self> {
        let llm = &cfg.llm;
        Ok(Self {
            env,
            cfg,
            policy: RetryPolicy::default(),
            timeout_ms: llm.timeout_ms,
            total_timeout_ms: llm.total_timeout_ms,
        })
    }

    fn db(&self) -> ApiResult<D1Database> {
        Ok(self.env.d1(DB_BINDING)?)
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.cfg.llm.settings
    }

    pub fn table(&self) -> &ModelTable {
        &self.cfg.llm.models
    }

    /// The user's saved overrides, by operation (unreadable rows are logged and skipped).
    pub async fn user_overrides(
        &self,
        user_id: &UserId,
    ) -> ApiResult<BTreeMap<Operation, ModelOverride>> {
        let rows = ai_store::overrides(&self.db()?, user_id).await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let parsed = Operation::parse(&r.operation).and_then(|op| {
                let v: serde_json::Value = serde_json::from_str(&r.config).ok()?;
                ModelOverride::parse(&v).ok().map(|o| (op, o))
            });
            match parsed {
                Some((op, o)) => {
                    out.insert(op, o);
                }
                None => worker::console_warn!("skipping unreadable model override {}", r.operation),
            }
        }
        Ok(out)
    }

    /// The models a call for `op` uses: defaults, the user's override, then the request's.
    pub async fn models_for(&self, call: &Call<'_>) -> ApiResult<OperationModels> {
        let saved = self.user_overrides(call.user_id).await?;
        let mut layers: Vec<&ModelOverride> = Vec::new();
        if let Some(o) = saved.get(&call.operation) {
            layers.push(o);
        }
        if let Some(o) = call.overrides {
            layers.push(o);
        }
        self.table().resolve(call.operation, &layers)
    }

    /// The user's own key for `provider`, opened; `None` when they stored none.
    async fn user_key(&self, user_id: &UserId, provider: Provider) -> ApiResult<Option<String>> {
        let Some(sealed) = ai_store::sealed_key(&self.db()?, user_id, provider.as_str()).await?
        else {
            return Ok(None);
        };
        let Some(key) = self.cfg.sealing_key.as_ref() else {
            worker::console_warn!(
                "a stored {provider} key is ignored: SECRETS_ENCRYPTION_KEY is not set"
            );
            return Ok(None);
        };
        crypto::open(key, user_id.as_str(), provider, &sealed)
            .map(Some)
            .map_err(|e| {
                worker::console_error!("stored {provider} key of a user does not open: {e}");
                generation_failed(format!(
                    "your stored {provider} API key could not be decrypted; store it again"
                ))
            })
    }

    /// A non-streamed completion.
    pub async fn complete(&self, call: &Call<'_>, messages: &[ChatMessage]) -> ApiResult<Outcome> {
        self.run(call, messages, None).await
    }

    /// A streamed completion: `on_delta` receives each piece of content as it arrives; the
    /// outcome carries the whole text.
    pub async fn stream(
        &self,
        call: &Call<'_>,
        messages: &[ChatMessage],
        on_delta: &mut dyn FnMut(&str),
    ) -> ApiResult<Outcome> {
        self.run(call, messages, Some(on_delta)).await
    }

    /// Checks the request limit and that some token budget is left (charging one token, which
    /// [`Llm::charge_tokens`] accounts for).
    async fn admit(&self, user_id: &UserId) -> ApiResult<()> {
        let env = self.env;
        let cfg = self.cfg;
        let key = format!("user:{user_id}");
        let d = ratelimit::hit(env, Class::Ai, &key, cfg.ai_limit, 1).await?;
        if !d.allowed {
            return Err(limit_error(
                format!(
                    "AI request limit reached: {} requests per {} per user",
                    d.limit,
                    window_text(cfg.ai_limit)
                ),
                "ai_requests",
                &d,
            ));
        }
        let t = ratelimit::hit(env, Class::AiTokens, &key, cfg.ai_token_limit, 1).await?;
        if !t.allowed {
            return Err(limit_error(
                format!(
                    "AI token limit reached: {} tokens per {} per user",
                    t.limit,
                    window_text(cfg.ai_token_limit)
                ),
                "ai_tokens",
                &t,
            ));
        }
        Ok(())
    }

    /// Charges a finished call's tokens to the budget (one was charged on admission). A call
    /// that overshoots fills the budget, so the next one waits.
    async fn charge_tokens(&self, user_id: &UserId, total: u64) {
        if total > 0 {
            worker::console_log!("AI call of {user_id} charged {total} tokens");
        }
        let cost = total.saturating_sub(1);
        if cost == 0 {
            return;
        }
        let env = self.env;
        let limit = self.cfg.ai_token_limit;
        let key = format!("user:{user_id}");
        match ratelimit::hit(env, Class::AiTokens, &key, limit, cost.min(limit.requests)).await {
            Ok(d) if !d.allowed && d.remaining > 0 => {
                let _ = ratelimit::hit(env, Class::AiTokens, &key, limit, d.remaining).await;
            }
            Ok(_) => {}
            Err(e) => worker::console_error!("charging AI tokens failed: {}", e.message),
        }
    }

    /// One logical call: admission, then attempts until one succeeds or the policy gives up;
    /// every attempt's tokens are charged at the end, whatever the outcome.
    async fn run(
        &self,
        call: &Call<'_>,
        messages: &[ChatMessage],
        on_delta: Option<&mut dyn FnMut(&str)>,
    ) -> ApiResult<Outcome> {
        self.admit(call.user_id).await?;
        let mut spent = 0u64;
        let result = self.attempts(call, messages, on_delta, &mut spent).await;
        self.charge_tokens(call.user_id, spent).await;
        result
    }

    async fn attempts(
        &self,
        call: &Call<'_>,
        messages: &[ChatMessage],
        mut on_delta: Option<&mut dyn FnMut(&str)>,
        spent: &mut u64,
    ) -> ApiResult<Outcome> {
        let prompt_estimate: u64 = messages.iter().map(|m| estimate_tokens(&m.content)).sum();
        let models = self.models_for(call).await?;
        let streamed = on_delta.is_some();
        let deadline = now_ms() + self.total_timeout_ms as i64;
        let mut attempts = Attempts::new(self.policy, models.fallback.is_some());
        let mut tried: Vec<String> = Vec::new();
        // Opened once per provider per call.
        let mut user_keys: BTreeMap<Provider, Option<String>> = BTreeMap::new();
        let mut last;
        loop {
            if call.cancel.is_some_and(Cancel::is_cancelled) {
                return Err(cancelled());
            }
            let cfg: &ModelConfig = match (attempts.on_fallback(), &models.fallback) {
                (true, Some(f)) => f,
                _ => &models.primary,
            };
            let name = format!("{}/{}", cfg.provider, cfg.model);
            if !tried.contains(&name) {
                tried.push(name.clone());
            }
            if let std::collections::btree_map::Entry::Vacant(e) = user_keys.entry(cfg.provider) {
                e.insert(self.user_key(call.user_id, cfg.provider).await?);
            }
            let user_key = user_keys.get(&cfg.provider).cloned().flatten();
            let mut cost = AttemptCost::new(prompt_estimate);
            let result = match build_request(
                cfg,
                self.settings(),
                user_key.as_deref(),
                messages,
                streamed,
            ) {
                Ok(req) => {
                    let attempt_deadline = (now_ms() + self.timeout_ms as i64).min(deadline);
                    let r = self
                        .attempt(
                            &req,
                            attempt_deadline,
                            call.cancel,
                            on_delta.as_deref_mut(),
                            &mut cost,
                        )
                        .await;
                    r.map(|s| (s, req.key_source))
                }
                Err(e) => Err(AttemptError::Failed(
                    Failure::Status {
                        status: 400,
                        retry_after_ms: None,
                    },
                    e.to_string(),
                    e.to_string(),
                )),
            };
            *spent += cost.tokens();
            let key_source = user_key
                .as_ref()
                .map_or(KeySource::Platform, |_| KeySource::User);
            let (failure, why, summary) = match result {
                Ok((s, key_source)) => {
                    return Ok(self
                        .succeeded(call, cfg, s, &cost, key_source, &attempts)
                        .await);
                }
                Err(AttemptError::Cancelled) => {
                    self.record(call, cfg, &cost, key_source, "cancelled").await;
                    return Err(cancelled());
                }
                Err(AttemptError::Failed(f, why, summary)) => {
                    self.record(call, cfg, &cost, key_source, "failed").await;
                    (f, why, summary)
                }
            };
            worker::console_warn!(
                "LLM attempt {} on {name} failed: {why}",
                attempts.failed() + 1
            );
            last = format!("{name}: {summary}");
            match attempts.next(&failure, jitter()) {
                Action::Retry { delay_ms } => {
                    if now_ms() + delay_ms as i64 >= deadline {
                        break;
                    }
                    Delay::from(Duration::from_millis(delay_ms)).await;
                }
                Action::Fallback => {}
                Action::GiveUp => break,
            }
            if now_ms() >= deadline {
                last = format!(
                    "{last} (the call's total time limit of {} ms was reached)",
                    self.total_timeout_ms
                );
                break;
            }
        }
        Err(generation_failed(format!(
            "AI generation failed after {} attempt(s) with {}: {last}",
            attempts.failed(),
            tried.join(" then ")
        )))
    }

    /// Records one attempt in `ai_usage` (an attempt that cost nothing is not recorded, unless
    /// it completed). A failure to record is logged: the call's outcome stands.
    async fn record(
        &self,
        call: &Call<'_>,
        cfg: &ModelConfig,
        cost: &AttemptCost,
        key_source: KeySource,
        outcome: &str,
    ) {
        let u = cost.usage();
        if u.total_tokens == 0 && outcome != "completed" {
            return;
        }
        let record = UsageRecord {
            user_id: call.user_id,
            app_id: call.app_id,
            operation: call.operation.as_str(),
            provider: cfg.provider.as_str(),
            model: &cfg.model,
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            cached_tokens: u.cached_tokens,
            key_source: if key_source == KeySource::User {
                "user"
            } else {
                "platform"
            },
            outcome,
        };
        let result = match self.db() {
            Ok(db) => ai_store::record_usage(&db, &record).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            worker::console_error!("recording AI usage failed: {}", e.message);
        }
    }

    async fn succeeded(
        &self,
        call: &Call<'_>,
        cfg: &ModelConfig,
        s: Success,
        cost: &AttemptCost,
        key_source: KeySource,
        attempts: &Attempts,
    ) -> Outcome {
        self.record(call, cfg, cost, key_source, "completed").await;
        let u = cost.usage();
        Outcome {
            text: s.text,
            model: cfg.model.clone(),
            provider: cfg.provider,
            usage: UsageOut {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                total_tokens: u.total_tokens,
            },
            key_source,
            fallback_used: attempts.on_fallback(),
            attempts: attempts.failed() + 1,
        }
    }

    /// One HTTP exchange with the model, bounded by `deadline`; `cost` follows what it used.
    async fn attempt<'f>(
        &self,
        req: &ChatRequest,
        deadline: i64,
        cancel: Option<&Cancel>,
        on_delta: Option<&mut (dyn FnMut(&str) + 'f)>,
        cost: &mut AttemptCost,
    ) -> Result<Success, AttemptError> {
        // Our own words, for the log and the user alike.
        let failed = |f: Failure, why: String| {
            let why = scrub(&why, req);
            AttemptError::Failed(f, why.clone(), why)
        };
        // The provider's words for the log; the user gets `user`.
        let failed_as =
            |f: Failure, why: String, user: String| AttemptError::Failed(f, scrub(&why, req), user);
        let chat_failed = |f: Failure, e: &ChatError| failed_as(f, e.to_string(), e.summary());
        let timed_out = || {
            failed(
                Failure::Timeout,
                format!("no complete answer within {} ms", self.timeout_ms),
            )
        };
        let headers = Headers::new();
        for (k, v) in &req.headers {
            headers
                .set(k, v)
                .map_err(|_| failed(Failure::Connection, format!("bad header {k}")))?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(req.body.clone().into()));
        let request = Request::new_with_init(&req.url, &init)
            .map_err(|_| failed(Failure::Connection, "the model URL is not valid".into()))?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        cost.sent();
        let sent = within(fetch.send_with_signal(&signal), deadline).await;
        let mut resp = match sent {
            None => {
                controller.abort();
                return Err(timed_out());
            }
            Some(Err(e)) => {
                cost.refused();
                return Err(failed_as(
                    Failure::Connection,
                    format!("could not reach the model: {e}"),
                    "could not reach the model provider".into(),
                ));
            }
            Some(Ok(r)) => r,
        };
        let status = resp.status_code();
        if !(200..300).contains(&status) {
            cost.refused();
            let h = resp.headers();
            let retry_after = h
                .get("retry-after-ms")
                .ok()
                .flatten()
                .and_then(|v| parse_retry_after_ms(&v))
                .or_else(|| {
                    h.get("retry-after")
                        .ok()
                        .flatten()
                        .and_then(|v| parse_retry_after(&v))
                });
            let body = match within(resp.text(), deadline).await {
                Some(Ok(b)) => b,
                Some(Err(_)) => String::new(),
                None => {
                    controller.abort();
                    String::new()
                }
            };
            let provider = ProviderError::from_body(&body);
            let why = format!("HTTP {status}: {provider}");
            return Err(failed_as(
                Failure::from_response(status, retry_after, &body),
                why,
                status_summary(status, &provider),
            ));
        }
        let Some(on_delta) = on_delta else {
            let body = match within(resp.text(), deadline).await {
                None => {
                    controller.abort();
                    return Err(timed_out());
                }
                Some(Err(e)) => {
                    return Err(failed_as(
                        Failure::Connection,
                        format!("the response could not be read: {e}"),
                        "the model's response could not be read".into(),
                    ))
                }
                Some(Ok(b)) => b,
            };
            return match decode_completion(&body) {
                Ok(c) => {
                    cost.streamed(&c.content);
                    cost.reported(c.usage);
                    Ok(Success { text: c.content })
                }
                Err(e) => Err(chat_failed(Failure::from_chat_error(&e), &e)),
            };
        };
        let mut bytes = match resp.stream() {
            Ok(s) => s,
            Err(e) => {
                return Err(failed(
                    Failure::Connection,
                    format!("the response has no body: {e}"),
                ))
            }
        };
        let mut chat = ChatStream::new();
        let mut text = String::new();
        loop {
            cost.reported(chat.usage());
            if cancel.is_some_and(Cancel::is_cancelled) {
                controller.abort();
                return Err(AttemptError::Cancelled);
            }
            let received = chat.received_content();
            match within(bytes.next(), deadline).await {
                None => {
                    controller.abort();
                    let AttemptError::Failed(f, why, _) = timed_out() else {
                        unreachable!()
                    };
                    return Err(failed(after_content(f, received), why));
                }
                Some(None) => break,
                Some(Some(Err(e))) => {
                    return Err(failed_as(
                        after_content(Failure::Connection, received),
                        format!("the response stream broke: {e}"),
                        "the model's response stream broke".into(),
                    ))
                }
                Some(Some(Ok(chunk))) => match chat.feed(&chunk) {
                    Ok(t) => {
                        if !t.is_empty() {
                            cost.streamed(&t);
                            on_delta(&t);
                            text.push_str(&t);
                        }
                    }
                    Err(e) => {
                        controller.abort();
                        let f =
                            after_content(Failure::from_chat_error(&e), chat.received_content());
                        return Err(chat_failed(f, &e));
                    }
                },
            }
        }
        match chat.finish() {
            Ok((tail, summary)) => {
                if !tail.is_empty() {
                    cost.streamed(&tail);
                    on_delta(&tail);
                    text.push_str(&tail);
                }
                cost.reported(summary.usage);
                Ok(Success { text })
            }
            Err(e) => {
                let f = after_content(Failure::from_chat_error(&e), chat.received_content());
                cost.reported(chat.usage());
                Err(chat_failed(f, &e))
            }
        }
    }
}

fn cancelled() -> ApiError {
    ApiError::new(409, ErrorCode::E005, "AI generation was cancelled")
}
