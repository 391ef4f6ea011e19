//! Which model does each job: providers, operations, the spec's `ModelConfig`, per-operation
//! defaults and fallbacks, overridable by the `MODEL_CONFIG` variable (parsed once, with the rest
//! of the configuration, by [`crate::domain::config::Config`]), then per user and per request, and
//! the validation of every layer. How a configured model is reached (AI Gateway or a direct base
//! URL, which key) is [`super::routing`]'s.
//!
//! Invariants:
//! - a [`ModelConfig`] that leaves [`ModelTable::resolve`] (or [`ModelTable::from_json`]) has
//!   passed [`ModelConfig::validate`], so [`super::routing::build_request`] only sees valid ones;
//! - an operation's fallback is never the same model as its primary.

use super::super::error::{ApiError, ApiResult};
use super::super::input::{parse_object, JsonObject, Patch};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use strum::{Display, IntoStaticStr};

/// The chat messages moved to [`super::routing`] with request building; these names stay
/// importable from here for the modules that always found them here.
pub use super::routing::{ChatMessage, ChatRequest, Role};

/// The largest `maxTokens` any configuration may ask for.
pub const MAX_TOKENS_CEILING: u32 = 200_000;
/// Longest model name accepted.
const MAX_MODEL_CHARS: usize = 200;

// ---------------------------------------------------------------------------------------------
// Providers and operations.

/// An LLM provider. The canonical names are the AI Gateway's provider slugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, IntoStaticStr, Display)]
#[strum(serialize_all = "kebab-case")]
pub enum Provider {
    Anthropic,
    #[strum(serialize = "openai")]
    OpenAi,
    GoogleAiStudio,
    Cerebras,
    WorkersAi,
    /// Any OpenAI-compatible server at `OPENAI_COMPATIBLE_BASE_URL` (Ollama, LM Studio, vLLM).
    Custom,
}

impl Provider {
    pub const ALL: [Provider; 6] = [
        Provider::Anthropic,
        Provider::OpenAi,
        Provider::GoogleAiStudio,
        Provider::Cerebras,
        Provider::WorkersAi,
        Provider::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Accepts the canonical names and the spec's (`google`, `cloudflare`), case-insensitively.
    /// (Hand-written, not strum: aliases, trimming and case folding.)
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "anthropic" => Provider::Anthropic,
            "openai" => Provider::OpenAi,
            "google-ai-studio" | "google" => Provider::GoogleAiStudio,
            "cerebras" => Provider::Cerebras,
            "workers-ai" | "cloudflare" | "cloudflare-workers-ai" => Provider::WorkersAi,
            "custom" => Provider::Custom,
            _ => return None,
        })
    }

    /// The secret holding the platform's key for this provider.
    pub fn key_secret(self) -> &'static str {
        match self {
            Provider::Anthropic => "ANTHROPIC_API_KEY",
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::GoogleAiStudio => "GOOGLE_AI_STUDIO_API_KEY",
            Provider::Cerebras => "CEREBRAS_API_KEY",
            Provider::WorkersAi => "WORKERS_AI_API_TOKEN",
            Provider::Custom => "OPENAI_COMPATIBLE_API_KEY",
        }
    }

    /// A sanity ceiling on `maxTokens` per provider (the largest output current models of that
    /// provider produce), so a typo is caught here instead of as a provider 400 mid-generation.
    pub fn max_output_tokens(self) -> u32 {
        match self {
            Provider::Anthropic => 64_000,
            Provider::OpenAi => 128_000,
            Provider::GoogleAiStudio => 65_536,
            Provider::Cerebras => 65_536,
            Provider::WorkersAi => 32_768,
            Provider::Custom => MAX_TOKENS_CEILING,
        }
    }

    /// Guesses the provider from a well-known model family name; `None` when ambiguous (open
    /// models such as Llama or gpt-oss are served by several providers).
    pub fn infer(model: &str) -> Option<Self> {
        let m = model.trim().to_ascii_lowercase();
        let family = |p: &str| {
            m.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        };
        if m.starts_with("claude") {
            Some(Provider::Anthropic)
        } else if m.starts_with("gemini") {
            Some(Provider::GoogleAiStudio)
        } else if m.starts_with("@cf/") || m.starts_with("@hf/") {
            Some(Provider::WorkersAi)
        } else if (m.starts_with("gpt-") && !m.starts_with("gpt-oss"))
            || m.starts_with("chatgpt")
            || family("o1")
            || family("o3")
            || family("o4")
        {
            Some(Provider::OpenAi)
        } else {
            None
        }
    }
}

/// Well-known model ids per provider, offered by the settings screen (any other valid id may
/// still be typed: providers add models faster than deployments update). `custom` has none: a
/// local server serves whatever was pulled into it.
pub fn suggested_models(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Anthropic => &["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"],
        Provider::OpenAi => &["gpt-5", "gpt-5-mini", "gpt-4.1"],
        Provider::GoogleAiStudio => &[
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.5-flash-lite",
        ],
        Provider::Cerebras => &["qwen-3-coder-480b", "gpt-oss-120b", "llama-3.3-70b"],
        Provider::WorkersAi => &[
            "@cf/qwen/qwen2.5-coder-32b-instruct",
            "@cf/openai/gpt-oss-120b",
            "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
        ],
        Provider::Custom => &[],
    }
}

impl Serialize for Provider {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Provider {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Provider::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown provider {s:?}")))
    }
}

fn provider_names() -> String {
    "anthropic, openai, google-ai-studio (google), cerebras, workers-ai (cloudflare), custom".into()
}

/// A job the platform asks a model to do; each has its own model configuration.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    IntoStaticStr,
    Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Operation {
    Blueprint,
    PhasePlanning,
    Implementation,
    ErrorCorrection,
    ChatEdit,
    TicketGeneration,
}

impl Operation {
    pub const ALL: [Operation; 6] = [
        Operation::Blueprint,
        Operation::PhasePlanning,
        Operation::Implementation,
        Operation::ErrorCorrection,
        Operation::ChatEdit,
        Operation::TicketGeneration,
    ];

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Accepts `snake_case` and `camelCase`. (Hand-written, not strum: separators and case are
    /// folded.)
    pub fn parse(s: &str) -> Option<Self> {
        let norm: String = s
            .trim()
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str().replace('_', "") == norm)
    }
}

// ---------------------------------------------------------------------------------------------
// Model configuration.

/// The spec's `ModelConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelConfig {
    pub provider: Provider,
    pub model: String,
    pub temperature: f64,
    pub max_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
}

fn check_model_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().count() > MAX_MODEL_CHARS {
        return Err(format!("must be at most {MAX_MODEL_CHARS} characters"));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._/:@+".contains(c))
    {
        return Err("may contain only letters, digits and - . _ / : @ +".into());
    }
    Ok(())
}

fn in_range(v: f64, lo: f64, hi: f64) -> bool {
    v.is_finite() && v >= lo && v <= hi
}

impl ModelConfig {
    /// Every problem, by camelCase field name.
    pub fn validate(&self) -> Result<(), BTreeMap<String, String>> {
        let mut e = BTreeMap::new();
        if let Err(m) = check_model_name(&self.model) {
            e.insert("model".into(), m);
        }
        if !in_range(self.temperature, 0.0, 1.0) {
            e.insert("temperature".into(), "must be between 0 and 1".into());
        }
        let max = self.provider.max_output_tokens();
        if self.max_tokens == 0 || self.max_tokens > max {
            e.insert(
                "maxTokens".into(),
                format!("must be from 1 to {max} for {}", self.provider),
            );
        }
        if self.top_p.is_some_and(|v| !in_range(v, 0.0, 1.0)) {
            e.insert("topP".into(), "must be between 0 and 1".into());
        }
        for (name, v) in [
            ("frequencyPenalty", self.frequency_penalty),
            ("presencePenalty", self.presence_penalty),
        ] {
            if v.is_some_and(|v| !in_range(v, -2.0, 2.0)) {
                e.insert(name.into(), "must be between -2 and 2".into());
            }
        }
        if e.is_empty() {
            Ok(())
        } else {
            Err(e)
        }
    }

    /// This configuration with `o` laid over it. A new model without a provider takes the
    /// provider its name implies (`claude-…` → anthropic), or one written as `provider/model`; a
    /// provider change clamps an inherited `maxTokens` to the new provider's ceiling.
    pub fn with(&self, o: &ModelOverride) -> ModelConfig {
        let mut c = self.clone();
        match (&o.model, o.provider) {
            // An explicit provider takes the model id verbatim: custom servers use ids such as
            // `openai/gpt-oss-20b` that only look like `provider/model`.
            (Some(m), Some(p)) => {
                c.model = m.clone();
                c.provider = p;
            }
            (Some(m), None) => {
                let named = match m.split_once('/') {
                    Some((p, rest)) if !m.starts_with('@') => {
                        Provider::parse(p).map(|p| (p, rest.to_string()))
                    }
                    _ => None,
                };
                match named {
                    Some((p, bare)) => {
                        c.provider = p;
                        c.model = bare;
                    }
                    None => {
                        c.model = m.clone();
                        if let Some(p) = Provider::infer(m) {
                            c.provider = p;
                        }
                    }
                }
            }
            (None, Some(p)) => c.provider = p,
            (None, None) => {}
        }
        if let Some(t) = o.temperature {
            c.temperature = t;
        }
        match o.max_tokens {
            Some(n) => c.max_tokens = n,
            None if c.provider != self.provider => {
                c.max_tokens = c.max_tokens.min(c.provider.max_output_tokens())
            }
            None => {}
        }
        if o.top_p.is_some() {
            c.top_p = o.top_p;
        }
        if o.frequency_penalty.is_some() {
            c.frequency_penalty = o.frequency_penalty;
        }
        if o.presence_penalty.is_some() {
            c.presence_penalty = o.presence_penalty;
        }
        c
    }

    pub(crate) fn new(provider: Provider, model: &str, temperature: f64, max_tokens: u32) -> Self {
        Self {
            provider,
            model: model.into(),
            temperature,
            max_tokens,
            top_p: None,
            frequency_penalty: None,
            presence_penalty: None,
        }
    }
}

/// A partial [`ModelConfig`]: what a user, a request or `MODEL_CONFIG` changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
}

/// Renames an error's fields to `prefix.field` (a nested object's fields).
fn prefixed(e: ApiError, prefix: &str) -> ApiError {
    if e.fields.is_empty() {
        return ApiError::field(prefix, e.message);
    }
    ApiError::with_fields(
        e.fields
            .into_iter()
            .map(|(k, v)| (format!("{prefix}.{k}"), v))
            .collect(),
    )
}

fn object_of(v: &Value) -> ApiResult<JsonObject> {
    if !v.is_object() {
        return Err(ApiError::validation("must be an object"));
    }
    parse_object(&serde_json::to_vec(v).map_err(|_| ApiError::internal())?)
}

impl ModelOverride {
    /// Parses untrusted JSON (a request's `config`, a user's saved settings). Field-level
    /// checks only; limits that depend on the provider are checked after merging, by
    /// [`ModelTable::resolve`].
    pub fn parse(v: &Value) -> ApiResult<Self> {
        let mut o = object_of(v)?;
        let r = Self::take(&mut o);
        o.finish()?;
        Ok(r)
    }

    /// Like [`ModelOverride::parse`], naming fields `prefix.field` in errors.
    pub fn parse_prefixed(v: &Value, prefix: &str) -> ApiResult<Self> {
        Self::parse(v).map_err(|e| prefixed(e, prefix))
    }

    fn take(o: &mut JsonObject) -> Self {
        let provider = match o.string("provider", 64) {
            Patch::Value(s) => Provider::parse(&s).or_else(|| {
                o.error("provider", format!("must be one of: {}", provider_names()));
                None
            }),
            _ => None,
        };
        let model = match o.string("model", MAX_MODEL_CHARS + 1) {
            Patch::Value(s) => match check_model_name(&s) {
                Ok(()) => Some(s),
                Err(m) => {
                    o.error("model", m);
                    None
                }
            },
            _ => None,
        };
        Self {
            provider,
            model,
            temperature: o.number("temperature", 0.0, 1.0),
            max_tokens: o
                .integer("maxTokens", 1, MAX_TOKENS_CEILING as u64)
                .map(|n| n as u32),
            top_p: o.number("topP", 0.0, 1.0),
            frequency_penalty: o.number("frequencyPenalty", -2.0, 2.0),
            presence_penalty: o.number("presencePenalty", -2.0, 2.0),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A user's saved per-operation overrides, as stored (JSON object keyed by operation).
pub type UserOverrides = BTreeMap<Operation, ModelOverride>;

/// Parses a user's per-operation overrides from untrusted JSON
/// (`{"implementation": {"model": "…"}, …}`).
pub fn parse_user_overrides(v: &Value) -> ApiResult<UserOverrides> {
    let Value::Object(map) = v else {
        return Err(ApiError::validation(
            "model settings must be an object keyed by operation",
        ));
    };
    let mut out = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for (k, val) in map {
        let Some(op) = Operation::parse(k) else {
            errors.insert(
                k.clone(),
                format!(
                    "unknown operation; expected one of: {}",
                    Operation::ALL.map(Operation::as_str).join(", ")
                ),
            );
            continue;
        };
        match ModelOverride::parse_prefixed(val, op.as_str()) {
            Ok(o) => {
                out.insert(op, o);
            }
            Err(e) => errors.extend(e.fields),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::with_fields(errors))
    }
}

/// The models for one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationModels {
    pub primary: ModelConfig,
    /// Tried once, after the primary's retries are spent; never the same model as the primary.
    pub fallback: Option<ModelConfig>,
}

/// The deployment's model choice for every operation.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTable {
    entries: BTreeMap<Operation, OperationModels>,
}

impl Default for ModelTable {
    fn default() -> Self {
        Self::defaults()
    }
}

fn same_model(a: &ModelConfig, b: &ModelConfig) -> bool {
    a.provider == b.provider && a.model == b.model
}

impl ModelTable {
    /// Built-in defaults. Google AI Studio is the one provider whose key the spec requires, so
    /// every default runs on it; each operation falls back to the other Gemini tier.
    pub fn defaults() -> Self {
        use Operation::*;
        use Provider::GoogleAiStudio as G;
        const PRO: &str = "gemini-2.5-pro";
        const FLASH: &str = "gemini-2.5-flash";
        let entry =
            |model: &str, fallback: &str, temperature: f64, max_tokens: u32| OperationModels {
                primary: ModelConfig::new(G, model, temperature, max_tokens),
                fallback: Some(ModelConfig::new(G, fallback, temperature, max_tokens)),
            };
        let entries = BTreeMap::from([
            (Blueprint, entry(PRO, FLASH, 0.4, 16_000)),
            (PhasePlanning, entry(FLASH, PRO, 0.4, 8_000)),
            (Implementation, entry(PRO, FLASH, 0.3, 32_000)),
            (ErrorCorrection, entry(FLASH, PRO, 0.2, 16_000)),
            (ChatEdit, entry(PRO, FLASH, 0.3, 16_000)),
            (TicketGeneration, entry(FLASH, PRO, 0.5, 8_000)),
        ]);
        Self { entries }
    }

    /// The defaults with `MODEL_CONFIG` laid over them:
    ///
    /// ```json
    /// { "default": {"provider": "custom", "model": "qwen2.5-coder:7b"},
    ///   "implementation": {"maxTokens": 16000, "fallback": {"model": "gemini-2.5-flash"}},
    ///   "blueprint": {"fallback": null} }
    /// ```
    ///
    /// `default` applies to every operation (primary and fallback) before the operation's own
    /// entry; a `fallback` object applies over the current fallback (or the primary if there is
    /// none); `null` removes it. Errors name the offending entry.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let mut table = Self::defaults();
        if text.trim().is_empty() {
            return Ok(table);
        }
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("MODEL_CONFIG is not JSON: {e}"))?;
        let Value::Object(map) = v else {
            return Err("MODEL_CONFIG must be a JSON object keyed by operation".into());
        };
        let describe = |e: ApiError| {
            if e.fields.is_empty() {
                e.message
            } else {
                e.fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        let parse_entry = |key: &str,
                           v: &Value|
         -> Result<(ModelOverride, Option<Value>), String> {
            let mut obj: Map<String, Value> = v
                .as_object()
                .cloned()
                .ok_or_else(|| format!("MODEL_CONFIG.{key} must be an object"))?;
            let fallback = obj.remove("fallback");
            let o =
                ModelOverride::parse_prefixed(&Value::Object(obj), &format!("MODEL_CONFIG.{key}"))
                    .map_err(describe)?;
            Ok((o, fallback))
        };
        if let Some(d) = map.get("default") {
            let (o, fallback) = parse_entry("default", d)?;
            if fallback.is_some() {
                return Err(
                    "MODEL_CONFIG.default cannot have a fallback; set it per operation".into(),
                );
            }
            for m in table.entries.values_mut() {
                m.primary = m.primary.with(&o);
                m.fallback = m.fallback.as_ref().map(|f| f.with(&o));
            }
        }
        for (key, v) in &map {
            if key == "default" {
                continue;
            }
            let op = Operation::parse(key).ok_or_else(|| {
                format!(
                    "MODEL_CONFIG.{key}: unknown operation; expected default or one of: {}",
                    Operation::ALL.map(Operation::as_str).join(", ")
                )
            })?;
            let (o, fallback) = parse_entry(key, v)?;
            let m = table
                .entries
                .get_mut(&op)
                .expect("every operation has an entry");
            m.primary = m.primary.with(&o);
            match fallback {
                None => {}
                Some(Value::Null) => m.fallback = None,
                Some(f) => {
                    let fo =
                        ModelOverride::parse_prefixed(&f, &format!("MODEL_CONFIG.{key}.fallback"))
                            .map_err(describe)?;
                    let base = m.fallback.clone().unwrap_or_else(|| m.primary.clone());
                    m.fallback = Some(base.with(&fo));
                }
            }
        }
        for (op, m) in &mut table.entries {
            for (which, c) in [("", Some(&m.primary)), (".fallback", m.fallback.as_ref())] {
                if let Some(c) = c {
                    c.validate().map_err(|e| {
                        let list: Vec<String> =
                            e.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                        format!("MODEL_CONFIG.{op}{which}: {}", list.join("; "))
                    })?;
                }
            }
            if m.fallback
                .as_ref()
                .is_some_and(|f| same_model(f, &m.primary))
            {
                m.fallback = None;
            }
        }
        Ok(table)
    }

    /// The models offered for `provider`: those this deployment's table configures for it
    /// (primary and fallback of every operation) first, then [`suggested_models`]; each once.
    pub fn models_of(&self, provider: Provider) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let configured = self
            .entries
            .values()
            .flat_map(|m| std::iter::once(&m.primary).chain(m.fallback.as_ref()))
            .filter(|c| c.provider == provider)
            .map(|c| c.model.as_str());
        for m in configured.chain(suggested_models(provider).iter().copied()) {
            if !out.iter().any(|o| o == m) {
                out.push(m.to_string());
            }
        }
        out
    }

    pub fn get(&self, op: Operation) -> &OperationModels {
        &self.entries[&op]
    }

    /// The models for `op` with override layers applied in order (a user's saved settings, then
    /// a request's `config`), validated. The fallback is the deployment's, dropped if it names
    /// the model the layers chose.
    pub fn resolve(&self, op: Operation, layers: &[&ModelOverride]) -> ApiResult<OperationModels> {
        let base = self.get(op);
        let primary = layers.iter().fold(base.primary.clone(), |c, o| c.with(o));
        primary.validate().map_err(ApiError::with_fields)?;
        let fallback = base.fallback.clone().filter(|f| !same_model(f, &primary));
        Ok(OperationModels { primary, fallback })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(provider: Provider, model: &str) -> ModelConfig {
        ModelConfig::new(provider, model, 0.5, 1000)
    }

    #[test]
    fn models_offered_per_provider_start_with_the_configured_ones() {
        let t = ModelTable::from_json(
            r#"{"default": {"provider": "custom", "model": "qwen2.5-coder:7b"},
                "implementation": {"provider": "google-ai-studio", "model": "gemini-exp", "fallback": {"model": "gemini-2.5-flash"}}}"#,
        )
        .unwrap();
        assert_eq!(t.models_of(Provider::Custom), ["qwen2.5-coder:7b"]);
        assert_eq!(
            t.models_of(Provider::GoogleAiStudio),
            [
                "gemini-exp",
                "gemini-2.5-flash",
                "gemini-2.5-pro",
                "gemini-2.5-flash-lite"
            ]
        );
        assert_eq!(
            t.models_of(Provider::OpenAi),
            suggested_models(Provider::OpenAi)
        );
        // Every suggestion is a valid model id for its provider.
        for p in Provider::ALL {
            for m in suggested_models(p) {
                assert!(
                    ModelConfig::new(p, m, 0.5, 1000).validate().is_ok(),
                    "{p} {m}"
                );
            }
        }
    }

    #[test]
    fn provider_names_and_aliases() {
        for p in Provider::ALL {
            assert_eq!(Provider::parse(p.as_str()), Some(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Provider>(&json).unwrap(), p);
        }
        assert_eq!(Provider::parse("google"), Some(Provider::GoogleAiStudio));
        assert_eq!(Provider::parse(" Cloudflare "), Some(Provider::WorkersAi));
        assert_eq!(
            Provider::parse("cloudflare-workers-ai"),
            Some(Provider::WorkersAi)
        );
        assert_eq!(Provider::parse("azure"), None);
        assert!(serde_json::from_str::<Provider>("\"azure\"").is_err());
    }

    #[test]
    fn provider_inference_from_model_names() {
        for (m, p) in [
            ("claude-sonnet-4.5", Some(Provider::Anthropic)),
            ("gpt-4o-mini", Some(Provider::OpenAi)),
            ("o3", Some(Provider::OpenAi)),
            ("o4-mini", Some(Provider::OpenAi)),
            ("gemini-2.5-flash", Some(Provider::GoogleAiStudio)),
            ("@cf/meta/llama-3.1-8b-instruct", Some(Provider::WorkersAi)),
            ("gpt-oss-120b", None),
            ("llama3.1-8b", None),
            ("o1x", None),
            ("qwen2.5-coder:7b", None),
        ] {
            assert_eq!(Provider::infer(m), p, "{m}");
        }
    }

    #[test]
    fn operation_names() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(op));
            assert_eq!(
                serde_json::to_string(&op).unwrap(),
                format!("\"{}\"", op.as_str())
            );
        }
        assert_eq!(
            Operation::parse("phasePlanning"),
            Some(Operation::PhasePlanning)
        );
        assert_eq!(
            Operation::parse("ErrorCorrection"),
            Some(Operation::ErrorCorrection)
        );
        assert_eq!(Operation::parse("planning"), None);
    }

    #[test]
    fn model_config_serde_matches_the_spec() {
        let c: ModelConfig = serde_json::from_str(
            r#"{"provider":"anthropic","model":"claude-sonnet-4.5","temperature":0.7,"maxTokens":8000}"#,
        )
        .unwrap();
        assert_eq!(c.provider, Provider::Anthropic);
        assert_eq!(c.max_tokens, 8000);
        assert!(c.validate().is_ok());
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["maxTokens"], 8000);
        assert!(v.get("topP").is_none());
        let c: ModelConfig = serde_json::from_str(
            r#"{"provider":"google","model":"gemini-2.5-pro","temperature":0,"maxTokens":1,"topP":0.9}"#,
        )
        .unwrap();
        assert_eq!(c.provider, Provider::GoogleAiStudio);
        assert_eq!(
            serde_json::to_value(&c).unwrap()["provider"],
            "google-ai-studio"
        );
    }

    #[test]
    fn validation_names_every_bad_field() {
        let mut c = cfg(Provider::Anthropic, "claude sonnet");
        c.temperature = 1.5;
        c.max_tokens = 64_001;
        c.top_p = Some(-0.1);
        c.frequency_penalty = Some(2.5);
        c.presence_penalty = Some(f64::NAN);
        let e = c.validate().unwrap_err();
        assert_eq!(
            e.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "frequencyPenalty",
                "maxTokens",
                "model",
                "presencePenalty",
                "temperature",
                "topP"
            ]
        );
        assert!(e["maxTokens"].contains("64000") && e["maxTokens"].contains("anthropic"));
        c = cfg(Provider::Custom, "m");
        c.max_tokens = MAX_TOKENS_CEILING;
        assert!(c.validate().is_ok());
        c.max_tokens = 0;
        assert!(c.validate().is_err());
        assert!(cfg(Provider::Custom, "").validate().is_err());
        assert!(cfg(Provider::Custom, &"m".repeat(201)).validate().is_err());
    }

    #[test]
    fn override_parsing_collects_field_errors() {
        let o =
            ModelOverride::parse(&json!({"model":"claude-sonnet-4.5","temperature":0.7})).unwrap();
        assert_eq!(o.model.as_deref(), Some("claude-sonnet-4.5"));
        assert_eq!(o.temperature, Some(0.7));
        assert!(ModelOverride::parse(&json!({})).unwrap().is_empty());
        // Nulls are "not set".
        assert!(ModelOverride::parse(&json!({"topP": null}))
            .unwrap()
            .is_empty());
        let e = ModelOverride::parse(&json!({
            "provider":"azure", "model":"a b", "temperature":"hot", "maxTokens": 0,
            "topP": 2, "frequencyPenalty": -3, "presencePenalty": true, "seed": 1
        }))
        .unwrap_err();
        assert_eq!(e.status, 400);
        for f in [
            "provider",
            "model",
            "temperature",
            "maxTokens",
            "topP",
            "frequencyPenalty",
            "presencePenalty",
            "seed",
        ] {
            assert!(e.fields.contains_key(f), "{f}: {:?}", e.fields);
        }
        assert_eq!(e.fields["seed"], "unknown field");
        assert!(e.fields["provider"].contains("google-ai-studio"));
        let e = ModelOverride::parse(&json!({"maxTokens": 1.5})).unwrap_err();
        assert!(e.fields["maxTokens"].contains("integer"));
        let e = ModelOverride::parse_prefixed(&json!({"temperature": 9}), "config").unwrap_err();
        assert!(e.fields.contains_key("config.temperature"));
        let e = ModelOverride::parse_prefixed(&json!("x"), "config").unwrap_err();
        assert_eq!(e.fields["config"], "must be an object");
    }

    #[test]
    fn merging_infers_providers_and_clamps_inherited_limits() {
        let base = ModelConfig::new(Provider::OpenAi, "gpt-4o", 0.2, 100_000);
        let c = base.with(&ModelOverride {
            model: Some("claude-sonnet-4.5".into()),
            ..Default::default()
        });
        assert_eq!(c.provider, Provider::Anthropic);
        assert_eq!(c.max_tokens, 64_000, "inherited maxTokens clamped");
        assert_eq!(c.temperature, 0.2);
        let c = base.with(&ModelOverride {
            model: Some("cerebras/llama3.1-8b".into()),
            ..Default::default()
        });
        assert_eq!(
            (c.provider, c.model.as_str()),
            (Provider::Cerebras, "llama3.1-8b")
        );
        let c = base.with(&ModelOverride {
            model: Some("@cf/meta/llama-3.1-8b-instruct".into()),
            ..Default::default()
        });
        assert_eq!(c.provider, Provider::WorkersAi);
        assert_eq!(c.model, "@cf/meta/llama-3.1-8b-instruct");
        // An explicit provider wins; an unknown family keeps the current provider.
        let c = base.with(&ModelOverride {
            provider: Some(Provider::Custom),
            model: Some("gpt-4o".into()),
            max_tokens: Some(150_000),
            ..Default::default()
        });
        assert_eq!((c.provider, c.max_tokens), (Provider::Custom, 150_000));
        let c = base.with(&ModelOverride {
            provider: Some(Provider::Custom),
            model: Some("openai/gpt-oss-20b".into()),
            ..Default::default()
        });
        assert_eq!(
            (c.provider, c.model.as_str()),
            (Provider::Custom, "openai/gpt-oss-20b")
        );
        let c = base.with(&ModelOverride {
            model: Some("my-finetune".into()),
            top_p: Some(0.5),
            ..Default::default()
        });
        assert_eq!((c.provider, c.top_p), (Provider::OpenAi, Some(0.5)));
    }

    #[test]
    fn defaults_are_valid_with_distinct_fallbacks() {
        let t = ModelTable::defaults();
        for op in Operation::ALL {
            let m = t.get(op);
            assert!(m.primary.validate().is_ok(), "{op}");
            let f = m.fallback.as_ref().unwrap();
            assert!(f.validate().is_ok());
            assert!(!same_model(f, &m.primary));
            assert_eq!(m.primary.provider, Provider::GoogleAiStudio);
        }
        assert_eq!(ModelTable::from_json("  ").unwrap(), t);
    }

    #[test]
    fn model_config_variable_overrides_defaults() {
        let t = ModelTable::from_json(
            r#"{"default":{"provider":"custom","model":"qwen2.5-coder:7b"},
                "implementation":{"maxTokens":16000,"fallback":{"provider":"anthropic","model":"claude-sonnet-4-5"}},
                "blueprint":{"temperature":0.1,"fallback":null},
                "errorCorrection":{"model":"claude-haiku-4-5"}}"#,
        )
        .unwrap();
        let imp = t.get(Operation::Implementation);
        assert_eq!(imp.primary.provider, Provider::Custom);
        assert_eq!(imp.primary.model, "qwen2.5-coder:7b");
        assert_eq!(imp.primary.max_tokens, 16_000);
        let f = imp.fallback.as_ref().unwrap();
        assert_eq!(
            (f.provider, f.model.as_str()),
            (Provider::Anthropic, "claude-sonnet-4-5")
        );
        let bp = t.get(Operation::Blueprint);
        assert_eq!(bp.primary.temperature, 0.1);
        assert!(bp.fallback.is_none());
        // `default` moved both primary and fallback to the same model: no pointless fallback.
        assert!(t.get(Operation::ChatEdit).fallback.is_none());
        assert_eq!(
            t.get(Operation::ErrorCorrection).primary.provider,
            Provider::Anthropic
        );

        for (bad, needle) in [
            ("[]", "JSON object"),
            ("{", "not JSON"),
            (
                r#"{"planning":{}}"#,
                "MODEL_CONFIG.planning: unknown operation",
            ),
            (
                r#"{"blueprint":{"temperature":3}}"#,
                "MODEL_CONFIG.blueprint.temperature",
            ),
            (r#"{"blueprint":5}"#, "must be an object"),
            (r#"{"default":{"fallback":null}}"#, "cannot have a fallback"),
            (
                r#"{"blueprint":{"maxTokens":100000,"provider":"anthropic"}}"#,
                "MODEL_CONFIG.blueprint: maxTokens",
            ),
            (
                r#"{"chat_edit":{"fallback":{"bogus":1}}}"#,
                "MODEL_CONFIG.chat_edit.fallback.bogus",
            ),
        ] {
            let e = ModelTable::from_json(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn resolve_layers_user_then_request_and_validates() {
        let t = ModelTable::defaults();
        let user = ModelOverride {
            model: Some("claude-sonnet-4-5".into()),
            temperature: Some(0.9),
            ..Default::default()
        };
        let request = ModelOverride {
            temperature: Some(0.1),
            ..Default::default()
        };
        let m = t
            .resolve(Operation::Implementation, &[&user, &request])
            .unwrap();
        assert_eq!(m.primary.provider, Provider::Anthropic);
        assert_eq!(m.primary.temperature, 0.1);
        assert_eq!(m.primary.max_tokens, 32_000);
        assert_eq!(m.fallback.as_ref().unwrap().model, "gemini-2.5-flash");
        // A user who picks the fallback model gets no fallback (it would be the same call).
        let same = ModelOverride {
            model: Some("gemini-2.5-flash".into()),
            ..Default::default()
        };
        assert!(t
            .resolve(Operation::Implementation, &[&same])
            .unwrap()
            .fallback
            .is_none());
        // Provider-dependent limits are checked after merging.
        let too_many = ModelOverride {
            provider: Some(Provider::WorkersAi),
            model: Some("@cf/meta/llama-3.1-8b-instruct".into()),
            max_tokens: Some(100_000),
            ..Default::default()
        };
        let e = t.resolve(Operation::ChatEdit, &[&too_many]).unwrap_err();
        assert!(e.fields["maxTokens"].contains("32768"));
    }

    #[test]
    fn user_overrides_parse_by_operation() {
        let u = parse_user_overrides(&json!({
            "implementation": {"model": "gpt-4o"},
            "chatEdit": {"temperature": 0.5}
        }))
        .unwrap();
        assert_eq!(
            u[&Operation::Implementation].model.as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(u[&Operation::ChatEdit].temperature, Some(0.5));
        let e = parse_user_overrides(&json!({"nope": {}, "blueprint": {"temperature": 2}}))
            .unwrap_err();
        assert!(e.fields["nope"].contains("unknown operation"));
        assert!(e.fields.contains_key("blueprint.temperature"));
        assert!(parse_user_overrides(&json!([])).is_err());
        // What is stored round-trips through serde.
        let stored = serde_json::to_value(&u).unwrap();
        assert_eq!(parse_user_overrides(&stored).unwrap(), u);
    }
}
