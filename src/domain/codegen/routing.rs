//! How a configured model is reached: the deployment's routing settings ([`LlmSettings`], parsed
//! once with the rest of the configuration), the choice of key (the user's own over the
//! platform's), and the addressing of a call as an OpenAI-compatible chat-completions request
//! ([`build_request`]): through the AI Gateway compat endpoint, straight to the provider, or to
//! the `custom` base URL.
//!
//! Invariants:
//! - a [`ModelConfig`] handed to [`build_request`] has passed [`ModelConfig::validate`]
//!   ([`super::models::ModelTable::resolve`] guarantees it);
//! - a user's own key (BYOK) for a provider always wins over the platform's, and a request
//!   records which one it used;
//! - neither [`LlmSettings`]' nor a [`ChatRequest`]'s `Debug` output ever shows a key.

use super::models::{ModelConfig, Provider};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The provider's own OpenAI-compatible base URL, used when no AI Gateway is configured.
/// Workers AI's needs the account id.
fn direct_base_url(provider: Provider, account_id: Option<&str>) -> Option<String> {
    Some(match provider {
        Provider::Anthropic => "https://api.anthropic.com/v1".into(),
        Provider::OpenAi => "https://api.openai.com/v1".into(),
        Provider::GoogleAiStudio => {
            "https://generativelanguage.googleapis.com/v1beta/openai".into()
        }
        Provider::Cerebras => "https://api.cerebras.ai/v1".into(),
        Provider::WorkersAi => format!(
            "https://api.cloudflare.com/client/v4/accounts/{}/ai/v1",
            account_id?
        ),
        Provider::Custom => return None,
    })
}

/// The id the AI Gateway compat endpoint expects: `provider/model`.
fn gateway_model_id(cfg: &ModelConfig) -> String {
    format!("{}/{}", cfg.provider, cfg.model)
}

/// What the deployment knows about reaching models (vars and secrets).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LlmSettings {
    pub account_id: Option<String>,
    pub gateway: Option<String>,
    pub gateway_token: Option<String>,
    /// Replaces `https://gateway.ai.cloudflare.com/v1/{account}/{gateway}` (a fake in tests).
    pub gateway_url: Option<String>,
    /// The base URL for the `custom` provider.
    pub custom_base_url: Option<String>,
    /// The platform's keys.
    pub keys: BTreeMap<Provider, String>,
}

impl fmt::Debug for LlmSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmSettings")
            .field("account_id", &self.account_id)
            .field("gateway", &self.gateway)
            .field(
                "gateway_token",
                &self.gateway_token.as_ref().map(|_| "<redacted>"),
            )
            .field("gateway_url", &self.gateway_url)
            .field("custom_base_url", &self.custom_base_url)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// An http(s) base URL without its trailing slash; errors name the variable `name`. Parsed with
/// the `url` crate, so what is accepted is a URL a fetch can use: a scheme of http or https, a
/// host, no credentials, query or fragment.
pub(crate) fn base_url(name: &str, v: String) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "{name}: {v:?} is not a usable http(s) base URL ({why})"
        ))
    };
    let parsed = match url::Url::parse(v.trim()) {
        Ok(u) => u,
        Err(e) => return bad(&e.to_string()),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return bad("the scheme must be http or https");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return bad("no host");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad("credentials belong in their own secret");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return bad("no query or fragment");
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

impl LlmSettings {
    /// Reads `CLOUDFLARE_ACCOUNT_ID`, `CLOUDFLARE_AI_GATEWAY`, `CLOUDFLARE_AI_GATEWAY_TOKEN`,
    /// `AI_GATEWAY_URL`, `OPENAI_COMPATIBLE_BASE_URL` and each provider's key secret
    /// ([`Provider::key_secret`]; Workers AI also accepts `CLOUDFLARE_API_TOKEN`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut keys = BTreeMap::new();
        for p in Provider::ALL {
            let key = get(p.key_secret()).or_else(|| {
                (p == Provider::WorkersAi)
                    .then(|| get("CLOUDFLARE_API_TOKEN"))
                    .flatten()
            });
            if let Some(k) = key {
                keys.insert(p, k);
            }
        }
        Ok(Self {
            account_id: get("CLOUDFLARE_ACCOUNT_ID"),
            gateway: get("CLOUDFLARE_AI_GATEWAY"),
            gateway_token: get("CLOUDFLARE_AI_GATEWAY_TOKEN"),
            gateway_url: get("AI_GATEWAY_URL")
                .map(|v| base_url("AI_GATEWAY_URL", v))
                .transpose()?,
            custom_base_url: get("OPENAI_COMPATIBLE_BASE_URL")
                .map(|v| base_url("OPENAI_COMPATIBLE_BASE_URL", v))
                .transpose()?,
            keys,
        })
    }

    /// The AI Gateway's compat chat-completions URL, if a gateway is configured.
    pub fn gateway_endpoint(&self) -> Option<String> {
        if let Some(u) = &self.gateway_url {
            return Some(if u.ends_with("/chat/completions") {
                u.clone()
            } else if u.ends_with("/compat") {
                format!("{u}/chat/completions")
            } else {
                format!("{u}/compat/chat/completions")
            });
        }
        match (&self.account_id, &self.gateway) {
            (Some(a), Some(g)) => Some(format!(
                "https://gateway.ai.cloudflare.com/v1/{a}/{g}/compat/chat/completions"
            )),
            _ => None,
        }
    }
}

/// Whose key a request carries (recorded with usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// The user's own key for this provider.
    User,
    Platform,
    /// None: the gateway holds the provider key, or a local server needs none.
    None,
}

/// The key for a call: the user's own (BYOK) if they stored one for this provider, else the
/// platform's.
pub fn select_key<'a>(
    provider: Provider,
    user_key: Option<&'a str>,
    settings: &'a LlmSettings,
) -> Option<(&'a str, KeySource)> {
    match user_key.map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) => Some((k, KeySource::User)),
        None => settings
            .keys
            .get(&provider)
            .map(|k| (k.as_str(), KeySource::Platform)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Bytes at the start of `content` that every call of a run repeats (a prompt-cache
    /// breakpoint goes after them for providers that need one); 0: none. Not sent as a field.
    #[serde(skip)]
    pub cache_prefix: usize,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
            cache_prefix: 0,
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
            cache_prefix: 0,
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
            cache_prefix: 0,
        }
    }

    /// Marks the first `bytes` of the content as the run's stable prefix.
    pub fn with_cache_prefix(mut self, bytes: usize) -> Self {
        if self.content.is_char_boundary(bytes) {
            self.cache_prefix = bytes;
        }
        self
    }
}

/// The messages as sent. Anthropic caches a prompt prefix only up to an explicit breakpoint:
/// the system prompt and each message's stable prefix become text parts marked
/// `cache_control: ephemeral` (at most 4 breakpoints: the system prompt and the first three
/// prefixes). Other providers get plain messages (OpenAI, Google and DeepSeek cache prefixes
/// by themselves).
fn messages_json(provider: Provider, messages: &[ChatMessage]) -> Value {
    if provider != Provider::Anthropic {
        return json!(messages);
    }
    let mut breakpoints = 0;
    let mut out = Vec::with_capacity(messages.len());
    let mark =
        |text: &str| json!({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}});
    for m in messages {
        let v = if m.role == Role::System && breakpoints < 4 && !m.content.is_empty() {
            breakpoints += 1;
            json!({"role": m.role, "content": [mark(&m.content)]})
        } else if m.cache_prefix > 0 && m.cache_prefix < m.content.len() && breakpoints < 4 {
            breakpoints += 1;
            let (stable, rest) = m.content.split_at(m.cache_prefix);
            json!({"role": m.role, "content": [mark(stable), {"type": "text", "text": rest}]})
        } else {
            json!(m)
        };
        out.push(v);
    }
    Value::Array(out)
}

/// OpenAI routes calls with the same key to the same cache: one key per stable prefix (the
/// system prompt and the first marked prefix), so a run's calls share it.
fn prompt_cache_key(messages: &[ChatMessage]) -> Option<String> {
    use sha2::{Digest, Sha256};
    let system = messages.iter().find(|m| m.role == Role::System)?;
    let mut h = Sha256::new();
    h.update(system.content.as_bytes());
    if let Some(m) = messages.iter().find(|m| m.cache_prefix > 0) {
        h.update([0u8]);
        h.update(&m.content.as_bytes()[..m.cache_prefix]);
    }
    let d = h.finalize();
    Some(format!(
        "byte-{}",
        d.iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// A fully addressed chat-completions call.
#[derive(Clone, PartialEq, Eq)]
pub struct ChatRequest {
    pub url: String,
    /// Lower-case header names.
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: String,
    /// The model id as sent (`provider/model` through the gateway).
    pub model: String,
    pub key_source: KeySource,
    pub via_gateway: bool,
}

impl fmt::Debug for ChatRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let secret = k == "authorization" || k == "cf-aig-authorization";
                (k.as_str(), if secret { "<redacted>" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("ChatRequest")
            .field("url", &self.url)
            .field("headers", &headers)
            .field("model", &self.model)
            .field("key_source", &self.key_source)
            .field("via_gateway", &self.via_gateway)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Why a call cannot be addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The deployment lacks a setting this provider needs.
    NotConfigured(String),
    /// No key (the user's or the platform's) for a provider that needs one.
    MissingKey(Provider),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::NotConfigured(m) => f.write_str(m),
            RouteError::MissingKey(p) => write!(
                f,
                "no API key for {p}: add your own key in settings, or set {} on the deployment",
                p.key_secret()
            ),
        }
    }
}

impl std::error::Error for RouteError {}

/// OpenAI's reasoning models take `max_completion_tokens` only and reject sampling parameters.
fn openai_reasoning_model(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    ["o1", "o3", "o4", "gpt-5"].iter().any(|p| {
        m.strip_prefix(p)
            .is_some_and(|r| r.is_empty() || r.starts_with('-'))
    })
}

/// Whether this deployment can call `provider` for a user (who has their own key for it or
/// not): the rules [`build_request`] applies, so the settings screen offers exactly the
/// providers a generation could use.
pub fn provider_usable(provider: Provider, settings: &LlmSettings, user_key: bool) -> bool {
    let probe = ModelConfig::new(provider, "probe", 0.0, 1);
    build_request(&probe, settings, user_key.then_some("user-key"), &[], false).is_ok()
}

/// Addresses a call: URL, headers and JSON body.
///
/// Routing: `custom` goes to `OPENAI_COMPATIBLE_BASE_URL` with the bare model name; any other
/// provider goes through the AI Gateway compat endpoint with `provider/model` when a gateway is
/// configured, else straight to the provider's own OpenAI-compatible endpoint.
pub fn build_request(
    cfg: &ModelConfig,
    settings: &LlmSettings,
    user_key: Option<&str>,
    messages: &[ChatMessage],
    stream: bool,
) -> Result<ChatRequest, RouteError> {
    let key = select_key(cfg.provider, user_key, settings);
    let (url, model, via_gateway) = if cfg.provider == Provider::Custom {
        let base = settings.custom_base_url.as_ref().ok_or_else(|| {
            RouteError::NotConfigured(
                "the custom provider needs OPENAI_COMPATIBLE_BASE_URL on the deployment".into(),
            )
        })?;
        (format!("{base}/chat/completions"), cfg.model.clone(), false)
    } else if let Some(url) = settings.gateway_endpoint() {
        (url, gateway_model_id(cfg), true)
    } else {
        let base =
            direct_base_url(cfg.provider, settings.account_id.as_deref()).ok_or_else(|| {
                RouteError::NotConfigured(format!(
                    "{} needs CLOUDFLARE_ACCOUNT_ID (or an AI Gateway) on the deployment",
                    cfg.provider
                ))
            })?;
        (format!("{base}/chat/completions"), cfg.model.clone(), false)
    };
    // A gateway with its own token may hold provider keys itself; a local server may need none.
    let key_optional =
        cfg.provider == Provider::Custom || (via_gateway && settings.gateway_token.is_some());
    if key.is_none() && !key_optional {
        return Err(RouteError::MissingKey(cfg.provider));
    }

    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if stream {
        headers.push(("accept".into(), "text/event-stream".into()));
    }
    if let Some((k, _)) = key {
        headers.push(("authorization".into(), format!("Bearer {k}")));
    }
    if via_gateway {
        if let Some(t) = &settings.gateway_token {
            headers.push(("cf-aig-authorization".into(), format!("Bearer {t}")));
        }
    }

    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), messages_json(cfg.provider, messages));
    if cfg.provider == Provider::OpenAi {
        if let Some(k) = prompt_cache_key(messages) {
            body.insert("prompt_cache_key".into(), json!(k));
        }
    }
    body.insert("stream".into(), json!(stream));
    let reasoning = cfg.provider == Provider::OpenAi && openai_reasoning_model(&cfg.model);
    if cfg.provider == Provider::OpenAi {
        body.insert("max_completion_tokens".into(), json!(cfg.max_tokens));
    } else {
        body.insert("max_tokens".into(), json!(cfg.max_tokens));
    }
    if !reasoning {
        body.insert("temperature".into(), json!(cfg.temperature));
        let optional = [
            ("top_p", cfg.top_p),
            ("frequency_penalty", cfg.frequency_penalty),
            ("presence_penalty", cfg.presence_penalty),
        ];
        for (name, v) in optional {
            if let Some(v) = v {
                body.insert(name.into(), json!(v));
            }
        }
    }
    if stream {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }

    Ok(ChatRequest {
        url,
        headers,
        body: Value::Object(body).to_string(),
        model,
        key_source: key.map_or(KeySource::None, |(_, s)| s),
        via_gateway,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn base_urls_are_parsed_not_pattern_matched() {
        let ok = |v: &str| base_url("X", v.to_string());
        assert_eq!(
            ok("http://127.0.0.1:11434/v1/").unwrap(),
            "http://127.0.0.1:11434/v1"
        );
        assert_eq!(
            ok(" https://Gateway.example/x ").unwrap(),
            "https://gateway.example/x"
        );
        for bad in [
            "ftp://host/",
            "http://",
            "https://user:pw@host/v1",
            "https://host/v1?key=1",
            "https://host/v1#f",
            "not a url",
            "http://exa mple.com",
        ] {
            let e = ok(bad).unwrap_err();
            assert!(e.starts_with("X: "), "{bad}: {e}");
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> LlmSettings {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LlmSettings::from_lookup(|k| m.get(k).cloned()).unwrap()
    }

    fn cfg(provider: Provider, model: &str) -> ModelConfig {
        ModelConfig::new(provider, model, 0.5, 1000)
    }

    fn header<'a>(r: &'a ChatRequest, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn body(r: &ChatRequest) -> Value {
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn usable_providers_follow_keys_gateway_and_base_url() {
        let usable = |s: &LlmSettings, user: bool| -> Vec<&str> {
            Provider::ALL
                .into_iter()
                .filter(|p| provider_usable(*p, s, user))
                .map(Provider::as_str)
                .collect()
        };
        let none = settings(&[]);
        assert!(usable(&none, false).is_empty());
        // An own key makes every provider reachable directly usable (Workers AI needs the account).
        assert_eq!(
            usable(&none, true),
            ["anthropic", "openai", "google-ai-studio", "cerebras"]
        );
        let keyed = settings(&[
            ("OPENAI_API_KEY", "sk-platform"),
            ("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:11434/v1"),
        ]);
        assert_eq!(usable(&keyed, false), ["openai", "custom"]);
        // A gateway holding the provider keys itself serves every provider.
        let gateway = settings(&[
            ("CLOUDFLARE_ACCOUNT_ID", "acct"),
            ("CLOUDFLARE_AI_GATEWAY", "gw"),
            ("CLOUDFLARE_AI_GATEWAY_TOKEN", "t"),
        ]);
        assert_eq!(usable(&gateway, false).len(), Provider::ALL.len() - 1);
        assert!(!usable(&gateway, false).contains(&"custom"));
    }

    #[test]
    fn settings_from_variables() {
        let s = settings(&[
            ("CLOUDFLARE_ACCOUNT_ID", "acc"),
            ("CLOUDFLARE_AI_GATEWAY", "gw"),
            ("ANTHROPIC_API_KEY", " sk-ant "),
            ("CLOUDFLARE_API_TOKEN", "cf-token"),
            ("OPENAI_API_KEY", ""),
            ("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:11434/v1/"),
        ]);
        assert_eq!(s.keys[&Provider::Anthropic], "sk-ant");
        assert_eq!(s.keys[&Provider::WorkersAi], "cf-token");
        assert!(!s.keys.contains_key(&Provider::OpenAi));
        assert_eq!(
            s.custom_base_url.as_deref(),
            Some("http://127.0.0.1:11434/v1")
        );
        assert_eq!(
            s.gateway_endpoint().as_deref(),
            Some("https://gateway.ai.cloudflare.com/v1/acc/gw/compat/chat/completions")
        );
        assert!(!format!("{s:?}").contains("sk-ant"));
        let bad =
            LlmSettings::from_lookup(|k| (k == "AI_GATEWAY_URL").then(|| "ftp://x".to_string()));
        assert!(bad.unwrap_err().contains("AI_GATEWAY_URL"));
        for (u, want) in [
            (
                "http://127.0.0.1:9000/v1/a/g",
                "http://127.0.0.1:9000/v1/a/g/compat/chat/completions",
            ),
            (
                "http://127.0.0.1:9000/compat/",
                "http://127.0.0.1:9000/compat/chat/completions",
            ),
            (
                "http://127.0.0.1:9000/x/chat/completions",
                "http://127.0.0.1:9000/x/chat/completions",
            ),
        ] {
            assert_eq!(
                settings(&[("AI_GATEWAY_URL", u)])
                    .gateway_endpoint()
                    .as_deref(),
                Some(want)
            );
        }
        assert_eq!(
            settings(&[("CLOUDFLARE_ACCOUNT_ID", "a")]).gateway_endpoint(),
            None
        );
    }

    #[test]
    fn routes_through_the_gateway_with_provider_prefixed_ids() {
        let s = settings(&[
            ("CLOUDFLARE_ACCOUNT_ID", "acc"),
            ("CLOUDFLARE_AI_GATEWAY", "gw"),
            ("CLOUDFLARE_AI_GATEWAY_TOKEN", "gwtok"),
            ("ANTHROPIC_API_KEY", "platform-key"),
        ]);
        let msgs = [ChatMessage::system("s"), ChatMessage::user("u")];
        let r = build_request(
            &cfg(Provider::Anthropic, "claude-sonnet-4-5"),
            &s,
            None,
            &msgs,
            true,
        )
        .unwrap();
        assert_eq!(
            r.url,
            "https://gateway.ai.cloudflare.com/v1/acc/gw/compat/chat/completions"
        );
        assert_eq!(r.model, "anthropic/claude-sonnet-4-5");
        assert!(r.via_gateway);
        assert_eq!(header(&r, "authorization"), Some("Bearer platform-key"));
        assert_eq!(header(&r, "cf-aig-authorization"), Some("Bearer gwtok"));
        assert_eq!(header(&r, "accept"), Some("text/event-stream"));
        assert_eq!(r.key_source, KeySource::Platform);
        let b = body(&r);
        assert_eq!(b["model"], "anthropic/claude-sonnet-4-5");
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_tokens"], 1000);
        assert_eq!(b["temperature"], 0.5);
        // The system prompt carries Anthropic's cache breakpoint.
        assert_eq!(
            b["messages"][0],
            json!({"role":"system","content":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]})
        );
        assert!(b.get("top_p").is_none());
        // The user's own key wins.
        let r = build_request(
            &cfg(Provider::Anthropic, "claude-sonnet-4-5"),
            &s,
            Some("user-key"),
            &msgs,
            false,
        )
        .unwrap();
        assert_eq!(header(&r, "authorization"), Some("Bearer user-key"));
        assert_eq!(r.key_source, KeySource::User);
        assert!(body(&r).get("stream_options").is_none());
        assert!(header(&r, "accept").is_none());
        // Workers AI model ids keep their @cf/ path.
        let r = build_request(
            &cfg(Provider::WorkersAi, "@cf/meta/llama-3.1-8b-instruct"),
            &s,
            None,
            &msgs,
            true,
        )
        .unwrap();
        assert_eq!(r.model, "workers-ai/@cf/meta/llama-3.1-8b-instruct");
        // No key, but the gateway has a token (it may store provider keys): sent without one.
        assert_eq!(r.key_source, KeySource::None);
        assert!(header(&r, "authorization").is_none());
        // Keys never show in debug output.
        let dbg = format!(
            "{:?}",
            build_request(
                &cfg(Provider::Anthropic, "c"),
                &s,
                Some("user-key"),
                &msgs,
                true
            )
            .unwrap()
        );
        assert!(!dbg.contains("user-key") && !dbg.contains("gwtok"), "{dbg}");
    }

    #[test]
    fn routes_direct_and_custom() {
        let msgs = [ChatMessage::user("u")];
        let s = settings(&[
            ("OPENAI_COMPATIBLE_BASE_URL", "http://localhost:11434/v1"),
            ("OPENAI_API_KEY", "ok"),
            ("CEREBRAS_API_KEY", "ck"),
        ]);
        let mut c = cfg(Provider::Custom, "qwen2.5-coder:7b");
        c.top_p = Some(0.9);
        c.presence_penalty = Some(0.5);
        let r = build_request(&c, &s, None, &msgs, true).unwrap();
        assert_eq!(r.url, "http://localhost:11434/v1/chat/completions");
        assert_eq!(r.model, "qwen2.5-coder:7b");
        assert!(!r.via_gateway);
        assert!(header(&r, "authorization").is_none());
        let b = body(&r);
        assert_eq!(b["top_p"], 0.9);
        assert_eq!(b["presence_penalty"], 0.5);
        assert!(b.get("frequency_penalty").is_none());
        // Without a gateway, providers are called directly.
        let r = build_request(
            &cfg(Provider::Cerebras, "llama3.1-8b"),
            &s,
            None,
            &msgs,
            true,
        )
        .unwrap();
        assert_eq!(r.url, "https://api.cerebras.ai/v1/chat/completions");
        assert_eq!(r.model, "llama3.1-8b");
        // OpenAI takes max_completion_tokens; its reasoning models take no sampling parameters.
        let r = build_request(&cfg(Provider::OpenAi, "gpt-4o"), &s, None, &msgs, false).unwrap();
        let b = body(&r);
        assert_eq!(b["max_completion_tokens"], 1000);
        assert!(b.get("max_tokens").is_none());
        assert_eq!(b["temperature"], 0.5);
        let r =
            build_request(&cfg(Provider::OpenAi, "gpt-5-mini"), &s, None, &msgs, false).unwrap();
        assert!(body(&r).get("temperature").is_none());
        // Missing pieces are explained.
        assert_eq!(
            build_request(&cfg(Provider::Anthropic, "c"), &s, None, &msgs, true),
            Err(RouteError::MissingKey(Provider::Anthropic))
        );
        assert!(RouteError::MissingKey(Provider::Anthropic)
            .to_string()
            .contains("ANTHROPIC_API_KEY"));
        let e = build_request(
            &cfg(Provider::WorkersAi, "@cf/x"),
            &s,
            Some("k"),
            &msgs,
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("CLOUDFLARE_ACCOUNT_ID"));
        let e = build_request(
            &cfg(Provider::Custom, "m"),
            &settings(&[]),
            None,
            &msgs,
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("OPENAI_COMPATIBLE_BASE_URL"));
        // A gateway without a token still needs a key.
        let s = settings(&[
            ("CLOUDFLARE_ACCOUNT_ID", "a"),
            ("CLOUDFLARE_AI_GATEWAY", "g"),
        ]);
        assert_eq!(
            build_request(&cfg(Provider::OpenAi, "gpt-4o"), &s, None, &msgs, true),
            Err(RouteError::MissingKey(Provider::OpenAi))
        );
        let s = settings(&[
            ("CLOUDFLARE_ACCOUNT_ID", "acc"),
            ("WORKERS_AI_API_TOKEN", "t"),
        ]);
        let r = build_request(&cfg(Provider::WorkersAi, "@cf/m"), &s, None, &msgs, true).unwrap();
        assert_eq!(
            r.url,
            "https://api.cloudflare.com/client/v4/accounts/acc/ai/v1/chat/completions"
        );
    }

    #[test]
    fn key_selection() {
        let s = settings(&[("OPENAI_API_KEY", "platform")]);
        assert_eq!(
            select_key(Provider::OpenAi, Some("mine"), &s),
            Some(("mine", KeySource::User))
        );
        assert_eq!(
            select_key(Provider::OpenAi, Some("  "), &s),
            Some(("platform", KeySource::Platform))
        );
        assert_eq!(
            select_key(Provider::OpenAi, None, &s),
            Some(("platform", KeySource::Platform))
        );
        assert_eq!(select_key(Provider::Anthropic, None, &s), None);
    }

    #[test]
    fn prompt_caching_is_requested_the_way_each_provider_takes_it() {
        let s = settings(&[
            ("CLOUDFLARE_ACCOUNT_ID", "acc"),
            ("CLOUDFLARE_AI_GATEWAY", "gw"),
            ("ANTHROPIC_API_KEY", "ak"),
            ("OPENAI_API_KEY", "ok"),
            ("CEREBRAS_API_KEY", "ck"),
        ]);
        let call = |tail: &str| {
            vec![
                ChatMessage::system("rules"),
                ChatMessage::user(format!("the plan\n{tail}")).with_cache_prefix(9),
            ]
        };
        let (a, b) = (call("phase 1"), call("phase 2"));
        // Anthropic (through the gateway): explicit breakpoints after the stable parts.
        let r = build_request(
            &cfg(Provider::Anthropic, "claude-sonnet-4-5"),
            &s,
            None,
            &a,
            true,
        )
        .unwrap();
        let m = &body(&r)["messages"];
        assert_eq!(
            m[0],
            json!({"role": "system", "content": [{"type": "text", "text": "rules", "cache_control": {"type": "ephemeral"}}]})
        );
        assert_eq!(
            m[1]["content"],
            json!([
                {"type": "text", "text": "the plan\n", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "phase 1"}
            ])
        );
        assert!(body(&r).get("prompt_cache_key").is_none());
        // OpenAI: one cache key for every call sharing the prefix, plain messages.
        let key = |m: &[ChatMessage]| {
            let r = build_request(&cfg(Provider::OpenAi, "gpt-4o"), &s, None, m, true).unwrap();
            assert_eq!(body(&r)["messages"][1]["content"], m[1].content.as_str());
            body(&r)["prompt_cache_key"].as_str().unwrap().to_string()
        };
        assert_eq!(key(&a), key(&b));
        let other = vec![ChatMessage::system("other rules"), a[1].clone()];
        assert_ne!(key(&a), key(&other));
        // Others: the request as it was.
        let r = build_request(&cfg(Provider::Cerebras, "llama3.1-8b"), &s, None, &a, true).unwrap();
        assert_eq!(
            body(&r)["messages"],
            json!([{"role": "system", "content": "rules"}, {"role": "user", "content": "the plan\nphase 1"}])
        );
        assert!(body(&r).get("prompt_cache_key").is_none());
    }
}
