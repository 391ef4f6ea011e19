//! The deployment's configuration: every Worker var and secret the code reads, parsed into typed
//! values by [`Config::from_lookup`], once per isolate (`http::config` caches the result; vars do
//! not change within an isolate). Every variable is documented in the README; [`VARS`] holds the
//! default of each var `wrangler.toml` declares, and a test keeps the two equal.
//!
//! Invariants:
//! - a malformed value is an error naming the variable (every bad one, in one message), so a
//!   deployment fails at its first request instead of mid-generation; nothing is silently
//!   ignored;
//! - nothing else reads a var or secret (`http` only hands this module its lookup, and builds the
//!   token keys from `JWT_SECRET`): consumers (the LLM client, the sandbox object, the routes)
//!   take the parsed [`Config`];
//! - no secret appears in `Debug` output ([`Secret`], [`OAuthClient`]'s `Debug`, and the redacted
//!   `Debug` of [`LlmSettings`] and [`SealingKey`]).

use super::codegen::blueprint::parse_max_corrections;
use super::codegen::crypto::SealingKey;
use super::codegen::models::ModelTable;
use super::codegen::routing::{base_url, LlmSettings};
use super::deploy::cloudflare::DispatchTarget;
use super::oauth::{Endpoints, Provider};
use super::orchestrator::hub::HubSettings;
use super::orchestrator::hub_call::MAX_SHARDS;
use super::ratelimit::{BackoffPolicy, Limit};
use super::sandbox::InstanceType;
use super::user::EmailList;
use std::fmt;

/// The default of every var `wrangler.toml` declares in `[vars]`, equal to it (a test checks).
/// An empty default means "unset". A var that is absent, or set empty, takes its default; the
/// exception is `ALLOWED_ORIGINS`, which set empty allows no origin.
pub const VARS: &[(&str, &str)] = &[
    ("RATE_LIMIT_AUTH", "1000/60"),
    ("RATE_LIMIT_API", "10000/60"),
    ("RATE_LIMIT_AI", "20/60"),
    ("RATE_LIMIT_AI_TOKENS", "100000/60"),
    ("RATE_LIMIT_PREVIEW", "600/60"),
    ("LOGIN_FREE_FAILURES", "5"),
    ("LOGIN_BACKOFF_BASE_SECONDS", "2"),
    ("LOGIN_BACKOFF_MAX_SECONDS", "900"),
    ("MAX_APPS_PER_USER", "100"),
    ("MAX_PROJECTS_ACTIVE", "5"),
    ("ALLOWED_ORIGINS", "http://localhost:5173"),
    ("ALLOWED_EMAIL", ""),
    ("ADMIN_EMAILS", ""),
    ("PUBLIC_URL", ""),
    ("MAIL_BACKEND", "send_email"),
    ("MAIL_FROM", ""),
    ("SANDBOX_BACKEND", "container"),
    ("SANDBOX_URL", ""),
    ("SANDBOX_INSTANCE_TYPE", "standard-3"),
    ("MAX_SANDBOX_INSTANCES", "10"),
    ("SANDBOX_IDLE_TIMEOUT_SECONDS", "900"),
    ("PREVIEW_KEEPALIVE_SECONDS", "3600"),
    ("PREVIEW_DOMAIN", "preview.localhost"),
    ("CLOUDFLARE_ACCOUNT_ID", ""),
    ("CLOUDFLARE_AI_GATEWAY", ""),
    ("AI_GATEWAY_URL", ""),
    ("OPENAI_COMPATIBLE_BASE_URL", ""),
    ("MODEL_CONFIG", ""),
    ("LLM_TIMEOUT_MS", "120000"),
    ("LLM_TOTAL_TIMEOUT_MS", "600000"),
    ("MAX_CORRECTION_ROUNDS", "3"),
    ("RATE_LIMIT_DEPLOY", "10/3600"),
    ("HOSTING", "loader"),
    ("CUSTOM_DOMAIN", "apps.localhost"),
    (
        "CLOUDFLARE_API_BASE_URL",
        "https://api.cloudflare.com/client/v4",
    ),
    ("DISPATCH_NAMESPACE", ""),
    ("DEPLOY_BUILD_TIMEOUT_SECONDS", "300"),
    ("ORCH_HUB_SHARDS", "8"),
    ("ORCH_AUTH_TIMEOUT_SECONDS", "10"),
    ("ORCH_HEARTBEAT_SECONDS", "30"),
    ("ORCH_EXPIRY_SECONDS", "120"),
];

/// The compatibility date deployed apps run with (loader and dispatch alike).
pub const DEPLOYED_COMPATIBILITY_DATE: &str = "2026-05-01";

/// The shortest idle timeout a sandbox may have (`SANDBOX_IDLE_TIMEOUT_SECONDS`).
pub const MIN_SANDBOX_IDLE_SECONDS: u64 = 10;

/// A secret value: read through [`Secret::expose`], never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub endpoints: Endpoints,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

/// Where sandboxes run (`SANDBOX_BACKEND`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxBackend {
    /// Production: each sandbox object drives its own Cloudflare Container.
    Container,
    /// `make dev` and the tests: one `byte-sandbox` process at `SANDBOX_URL` (no trailing slash).
    Local { url: String },
}

/// How verification mail leaves (`MAIL_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailBackend {
    /// Production: Cloudflare's `send_email` binding (`EMAIL`); `wrangler dev` simulates it.
    SendEmail,
    /// `make dev`: mail is logged and kept in KV, readable at `GET /api/dev/outbox`. Refused
    /// with an https `PUBLIC_URL`, so a deployment cannot expose its outbox by mistake.
    Outbox,
}

/// What the LLM client needs: how models are reached, which model does each job, time limits.
#[derive(Debug)]
pub struct LlmConfig {
    /// Gateway, base URLs and the platform's provider keys.
    pub settings: LlmSettings,
    /// The built-in per-operation models with `MODEL_CONFIG` laid over them.
    pub models: ModelTable,
    /// Time one attempt may take, start to last byte (`LLM_TIMEOUT_MS`).
    pub timeout_ms: u64,
    /// Time a whole call may take, retries and fallback included (`LLM_TOTAL_TIMEOUT_MS`).
    pub total_timeout_ms: u64,
}

/// Where deployed apps run (`HOSTING`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hosting {
    /// Dynamic Workers through the `LOADER` binding (`wrangler dev`; no account needed).
    Loader,
    /// Workers for Platforms: uploaded through the Cloudflare API, served by `DISPATCHER`.
    Dispatch(DispatchTarget),
}

/// One-click deployment settings.
#[derive(Debug)]
pub struct DeployConfig {
    pub hosting: Hosting,
    /// Deployed apps are served on `<app label>.<domain>` (`CUSTOM_DOMAIN`).
    pub domain: String,
    /// Deployments per user (`RATE_LIMIT_DEPLOY`).
    pub limit: Limit,
    /// The longest a production build may run (`DEPLOY_BUILD_TIMEOUT_SECONDS`, in ms here).
    pub build_timeout_ms: u64,
}

#[derive(Debug)]
pub struct Config {
    pub auth_limit: Limit,
    pub api_limit: Limit,
    pub ai_limit: Limit,
    /// Model tokens per window per user (`requests` counts tokens here).
    pub ai_token_limit: Limit,
    /// Preview requests per client address (`RATE_LIMIT_PREVIEW`).
    pub preview_limit: Limit,
    /// Per-account lock after repeated failed sign-ins (`LOGIN_*`).
    pub signin_backoff: BackoffPolicy,
    pub allowed_origins: Vec<String>,
    pub max_apps_per_user: u64,
    /// Orchestration projects one account may have active (not completed or archived).
    pub max_projects_active: u64,
    pub allowed_email: EmailList,
    pub admin_emails: EmailList,
    pub public_url: Option<String>,
    pub mail_backend: MailBackend,
    /// The sender of verification mail (`MAIL_FROM`); `None`: `noreply@<the request's host>`.
    pub mail_from: Option<String>,
    pub google: Option<OAuthClient>,
    pub github: Option<OAuthClient>,
    pub max_sandboxes_per_user: u64,
    /// Previews are served on `<app label>.<preview_domain>`.
    pub preview_domain: String,
    pub sandbox_instance_type: InstanceType,
    pub sandbox_backend: SandboxBackend,
    /// A ready sandbox idle this long is stopped (`SANDBOX_IDLE_TIMEOUT_SECONDS`, in ms here).
    pub sandbox_idle_timeout_ms: i64,
    /// Preview traffic (anyone's) keeps a sandbox awake at most this long after its owner's last
    /// activity (`PREVIEW_KEEPALIVE_SECONDS`, in ms here).
    pub preview_keepalive_ms: i64,
    /// Shared with `byte-sandbox` (`SANDBOX_SECRET`); sandboxes are unavailable without it.
    pub sandbox_secret: Option<Secret>,
    /// Correction rounds per phase before remaining errors are reported (`MAX_CORRECTION_ROUNDS`).
    pub max_corrections: u32,
    pub llm: LlmConfig,
    /// Seals users' own provider keys (`SECRETS_ENCRYPTION_KEY`); storing them is unavailable
    /// without it.
    pub sealing_key: Option<SealingKey>,
    pub deploy: DeployConfig,
    pub hub: HubConfig,
}

/// The orchestrator WebSocket hub (`ORCH_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubConfig {
    /// Shard objects new connections are spread over (`ORCH_HUB_SHARDS`).
    pub shards: u32,
    pub timing: HubSettings,
}

/// The default [`VARS`] gives `k` (`None` for secrets and optional vars).
fn default_of(k: &str) -> Option<&'static str> {
    VARS.iter().find(|(name, _)| *name == k).map(|(_, v)| *v)
}

impl Config {
    /// Builds the configuration from a lookup of variable names (vars and secrets alike).
    /// Fails with every malformed value named (`NAME: problem`, joined by `; `), never echoing a
    /// secret.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        // As set, trimmed, with the default when absent (empty stays empty).
        let raw = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .or_else(|| default_of(k).map(str::to_string))
        };
        // Empty reads as unset; unset takes the default.
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .or_else(|| default_of(k).filter(|d| !d.is_empty()).map(str::to_string))
        };
        let limit = |k: &str| -> Result<Limit, String> {
            Limit::parse(&get(k).unwrap_or_default()).map_err(|e| format!("{k}: {e}"))
        };
        let number = |k: &str| -> Result<u64, String> {
            let v = get(k).unwrap_or_default();
            v.parse()
                .map_err(|_| format!("{k}: {v:?} is not a whole number"))
        };
        let positive = |k: &str| -> Result<u64, String> {
            match number(k)? {
                0 => Err(format!("{k}: must be more than 0")),
                n => Ok(n),
            }
        };
        let oauth = |p: Provider, prefix: &str| -> Result<Option<OAuthClient>, String> {
            let id_key = format!("{prefix}_CLIENT_ID");
            let secret_key = format!("{prefix}_CLIENT_SECRET");
            let (client_id, client_secret) = match (get(&id_key), get(&secret_key)) {
                (None, None) => return Ok(None),
                (Some(id), Some(secret)) => (id, secret),
                (Some(_), None) => return Err(format!("{secret_key}: required with {id_key}")),
                (None, Some(_)) => return Err(format!("{id_key}: required with {secret_key}")),
            };
            let d = Endpoints::defaults(p);
            let api_key = if p == Provider::Google {
                "GOOGLE_USERINFO_URL"
            } else {
                "GITHUB_API_URL"
            };
            Ok(Some(OAuthClient {
                client_id,
                client_secret,
                endpoints: Endpoints {
                    authorize: get(&format!("{prefix}_OAUTH_AUTHORIZE_URL")).unwrap_or(d.authorize),
                    token: get(&format!("{prefix}_OAUTH_TOKEN_URL")).unwrap_or(d.token),
                    api: get(api_key).unwrap_or(d.api),
                },
            }))
        };

        let auth_limit = limit("RATE_LIMIT_AUTH");
        let api_limit = limit("RATE_LIMIT_API");
        let ai_limit = limit("RATE_LIMIT_AI");
        let ai_token_limit = limit("RATE_LIMIT_AI_TOKENS");
        let preview_limit = limit("RATE_LIMIT_PREVIEW");
        let seconds_ms = |k: &str, min: u64| -> Result<i64, String> {
            let s = number(k)?;
            if s < min {
                return Err(format!("{k}: must be at least {min}"));
            }
            if s > 86_400 {
                return Err(format!("{k}: must be at most 86400 (a day)"));
            }
            Ok(s as i64 * 1000)
        };
        let signin_backoff = (|| {
            let free_failures = u32::try_from(positive("LOGIN_FREE_FAILURES")?)
                .map_err(|_| "LOGIN_FREE_FAILURES: too large".to_string())?;
            let base_ms = seconds_ms("LOGIN_BACKOFF_BASE_SECONDS", 1)?;
            let max_ms = seconds_ms("LOGIN_BACKOFF_MAX_SECONDS", 1)?;
            if max_ms < base_ms {
                return Err(
                    "LOGIN_BACKOFF_MAX_SECONDS: must be at least LOGIN_BACKOFF_BASE_SECONDS".into(),
                );
            }
            Ok(BackoffPolicy {
                free_failures,
                base_ms,
                max_ms,
            })
        })();
        let preview_keepalive_ms = seconds_ms("PREVIEW_KEEPALIVE_SECONDS", 0);
        let deploy = (|| {
            let api_base = base_url(
                "CLOUDFLARE_API_BASE_URL",
                get("CLOUDFLARE_API_BASE_URL").unwrap_or_default(),
            );
            let namespace = get("DISPATCH_NAMESPACE");
            let hosting = match get("HOSTING").as_deref() {
                Some("loader") => Hosting::Loader,
                Some("dispatch") => {
                    let need = |k: &str| {
                        get(k).ok_or_else(|| format!("{k}: required when HOSTING is dispatch"))
                    };
                    let namespace =
                        namespace.ok_or("DISPATCH_NAMESPACE: required when HOSTING is dispatch")?;
                    Hosting::Dispatch(DispatchTarget::new(
                        Some(&api_base?),
                        &need("CLOUDFLARE_ACCOUNT_ID")?,
                        &namespace,
                        &need("CLOUDFLARE_API_TOKEN")?,
                        DEPLOYED_COMPATIBILITY_DATE,
                    )?)
                }
                other => {
                    return Err(format!(
                        "HOSTING: {:?} is not loader or dispatch",
                        other.unwrap_or_default()
                    ))
                }
            };
            let domain = get("CUSTOM_DOMAIN")
                .unwrap_or_default()
                .trim_matches('.')
                .to_ascii_lowercase();
            if domain.is_empty()
                || !domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(format!("CUSTOM_DOMAIN: {domain:?} is not a domain name"));
            }
            let build_timeout_ms = seconds_ms("DEPLOY_BUILD_TIMEOUT_SECONDS", 10)? as u64;
            Ok(DeployConfig {
                hosting,
                domain,
                limit: limit("RATE_LIMIT_DEPLOY")?,
                build_timeout_ms,
            })
        })();
        let max_apps_per_user = number("MAX_APPS_PER_USER");
        let max_projects_active = number("MAX_PROJECTS_ACTIVE");
        let max_sandboxes_per_user = number("MAX_SANDBOX_INSTANCES");
        let google = oauth(Provider::Google, "GOOGLE");
        let github = oauth(Provider::Github, "GITHUB");
        let sandbox_instance_type =
            InstanceType::parse(&get("SANDBOX_INSTANCE_TYPE").unwrap_or_default())
                .map_err(|e| format!("SANDBOX_INSTANCE_TYPE: {e}"));
        let sandbox_url = get("SANDBOX_URL");
        let sandbox_backend = match get("SANDBOX_BACKEND").as_deref() {
            Some("container") => Ok(SandboxBackend::Container),
            Some("local") => match sandbox_url {
                Some(u) => base_url("SANDBOX_URL", u).map(|url| SandboxBackend::Local { url }),
                None => Err("SANDBOX_URL: required when SANDBOX_BACKEND is local".into()),
            },
            other => Err(format!(
                "SANDBOX_BACKEND: {:?} is not container or local",
                other.unwrap_or_default()
            )),
        };
        let sandbox_idle_timeout_ms = number("SANDBOX_IDLE_TIMEOUT_SECONDS").and_then(|s| {
            if s < MIN_SANDBOX_IDLE_SECONDS {
                return Err(format!(
                    "SANDBOX_IDLE_TIMEOUT_SECONDS: must be at least {MIN_SANDBOX_IDLE_SECONDS}"
                ));
            }
            i64::try_from(s)
                .ok()
                .and_then(|s| s.checked_mul(1000))
                .ok_or_else(|| "SANDBOX_IDLE_TIMEOUT_SECONDS: too large".to_string())
        });
        let max_corrections =
            parse_max_corrections(&get("MAX_CORRECTION_ROUNDS").unwrap_or_default())
                .map_err(|e| format!("MAX_CORRECTION_ROUNDS: {e}"));
        let settings = LlmSettings::from_lookup(get);
        let models = ModelTable::from_json(&get("MODEL_CONFIG").unwrap_or_default());
        let timeout_ms = positive("LLM_TIMEOUT_MS");
        let total_timeout_ms = positive("LLM_TOTAL_TIMEOUT_MS");
        let public_url = get("PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string());
        let mail_backend = match get("MAIL_BACKEND").as_deref() {
            Some("send_email") => Ok(MailBackend::SendEmail),
            Some("outbox")
                if public_url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("https://")) =>
            {
                Err("MAIL_BACKEND: outbox is for local development; PUBLIC_URL is https".into())
            }
            Some("outbox") => Ok(MailBackend::Outbox),
            other => Err(format!(
                "MAIL_BACKEND: {:?} is not send_email or outbox",
                other.unwrap_or_default()
            )),
        };
        let mail_from = get("MAIL_FROM")
            .map(|f| {
                super::user::Email::parse(&f)
                    .map(|e| e.as_str().to_string())
                    .map_err(|e| format!("MAIL_FROM: {e}"))
            })
            .transpose();
        let sealing_key = get("SECRETS_ENCRYPTION_KEY")
            .map(|v| SealingKey::parse(&v))
            .transpose();
        let hub = (|| {
            let shards = positive("ORCH_HUB_SHARDS")?;
            if shards > MAX_SHARDS as u64 {
                return Err(format!("ORCH_HUB_SHARDS: must be at most {MAX_SHARDS}"));
            }
            let timing = HubSettings {
                auth_timeout_ms: seconds_ms("ORCH_AUTH_TIMEOUT_SECONDS", 1)?,
                heartbeat_ms: seconds_ms("ORCH_HEARTBEAT_SECONDS", 1)?,
                expiry_ms: seconds_ms("ORCH_EXPIRY_SECONDS", 1)?,
            };
            if timing.expiry_ms <= timing.heartbeat_ms {
                return Err(
                    "ORCH_EXPIRY_SECONDS: must be more than ORCH_HEARTBEAT_SECONDS (a client answers heartbeats)"
                        .into(),
                );
            }
            Ok(HubConfig {
                shards: shards as u32,
                timing,
            })
        })();

        let problems: Vec<&String> = [
            auth_limit.as_ref().err(),
            api_limit.as_ref().err(),
            ai_limit.as_ref().err(),
            ai_token_limit.as_ref().err(),
            preview_limit.as_ref().err(),
            signin_backoff.as_ref().err(),
            preview_keepalive_ms.as_ref().err(),
            deploy.as_ref().err(),
            max_apps_per_user.as_ref().err(),
            max_projects_active.as_ref().err(),
            max_sandboxes_per_user.as_ref().err(),
            google.as_ref().err(),
            github.as_ref().err(),
            sandbox_instance_type.as_ref().err(),
            sandbox_backend.as_ref().err(),
            sandbox_idle_timeout_ms.as_ref().err(),
            max_corrections.as_ref().err(),
            settings.as_ref().err(),
            models.as_ref().err(),
            timeout_ms.as_ref().err(),
            total_timeout_ms.as_ref().err(),
            sealing_key.as_ref().err(),
            mail_backend.as_ref().err(),
            mail_from.as_ref().err(),
            hub.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !problems.is_empty() {
            return Err(problems
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join("; "));
        }
        // Every `?` below is on a value checked above.
        Ok(Self {
            auth_limit: auth_limit?,
            api_limit: api_limit?,
            ai_limit: ai_limit?,
            ai_token_limit: ai_token_limit?,
            preview_limit: preview_limit?,
            signin_backoff: signin_backoff?,
            allowed_origins: raw("ALLOWED_ORIGINS")
                .unwrap_or_default()
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            max_apps_per_user: max_apps_per_user?,
            max_projects_active: max_projects_active?,
            allowed_email: EmailList::parse(&get("ALLOWED_EMAIL").unwrap_or_default()),
            admin_emails: EmailList::parse(&get("ADMIN_EMAILS").unwrap_or_default()),
            public_url,
            mail_backend: mail_backend?,
            mail_from: mail_from?,
            google: google?,
            github: github?,
            max_sandboxes_per_user: max_sandboxes_per_user?,
            preview_domain: get("PREVIEW_DOMAIN")
                .unwrap_or_default()
                .to_ascii_lowercase(),
            sandbox_instance_type: sandbox_instance_type?,
            sandbox_backend: sandbox_backend?,
            sandbox_idle_timeout_ms: sandbox_idle_timeout_ms?,
            preview_keepalive_ms: preview_keepalive_ms?,
            sandbox_secret: get("SANDBOX_SECRET").map(Secret),
            max_corrections: max_corrections?,
            llm: LlmConfig {
                settings: settings?,
                models: models?,
                timeout_ms: timeout_ms?,
                total_timeout_ms: total_timeout_ms?,
            },
            sealing_key: sealing_key?,
            deploy: deploy?,
            hub: hub?,
        })
    }

    pub fn oauth(&self, p: Provider) -> Option<&OAuthClient> {
        match p {
            Provider::Google => self.google.as_ref(),
            Provider::Github => self.github.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::codegen::blueprint::DEFAULT_MAX_CORRECTIONS;
    use crate::domain::codegen::models::{Operation, Provider as LlmProvider};
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    const HEX_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    /// `wrangler.toml`'s `[vars]`, in order: `NAME = "value"` lines (no escapes), comments and
    /// blank lines skipped, up to the next table header.
    fn wrangler_vars() -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut inside = false;
        for line in include_str!("../../wrangler.toml").lines() {
            let line = line.trim();
            if line.starts_with('[') {
                inside = line == "[vars]";
                continue;
            }
            if !inside || line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("[vars] line is not NAME = \"value\": {line}"));
            let v = v
                .trim()
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .filter(|v| !v.contains(['"', '\\']))
                .unwrap_or_else(|| panic!("[vars] value is not a plain string: {line}"));
            out.push((k.trim().to_string(), v.to_string()));
        }
        assert!(!out.is_empty(), "wrangler.toml has no [vars]");
        out
    }

    #[test]
    fn defaults_equal_wrangler_toml_vars() {
        let declared = wrangler_vars();
        let declared_map: BTreeMap<&str, &str> = declared
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            declared_map.len(),
            declared.len(),
            "a var is declared twice"
        );
        let code: BTreeMap<&str, &str> = VARS.iter().copied().collect();
        assert_eq!(code.len(), VARS.len(), "a var is listed twice in VARS");
        assert_eq!(declared_map, code, "wrangler.toml [vars] vs config::VARS");

        // A deployment setting every var to wrangler.toml's value is configured exactly like
        // one setting none: the parse takes its defaults from VARS and nowhere else.
        let pairs: Vec<(&str, &str)> = declared
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let set = format!("{:?}", cfg(&pairs).unwrap());
        let unset = format!("{:?}", cfg(&[]).unwrap());
        assert_eq!(set, unset);

        // And every default is read.
        let asked = RefCell::new(BTreeSet::new());
        Config::from_lookup(|k| {
            asked.borrow_mut().insert(k.to_string());
            None
        })
        .unwrap();
        for (k, _) in VARS {
            assert!(
                asked.borrow().contains(*k),
                "{k} has a default but is never read"
            );
        }
    }

    #[test]
    fn defaults_are_the_specs() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.auth_limit.requests, 1000);
        assert_eq!(c.api_limit.requests, 10000);
        assert_eq!(c.ai_limit.requests, 20);
        assert_eq!(c.ai_token_limit.requests, 100_000);
        assert_eq!(c.preview_limit.requests, 600);
        assert_eq!(
            c.signin_backoff,
            BackoffPolicy {
                free_failures: 5,
                base_ms: 2_000,
                max_ms: 900_000
            }
        );
        assert_eq!(c.preview_keepalive_ms, 3_600_000);
        assert_eq!(c.max_apps_per_user, 100);
        assert_eq!(c.max_projects_active, 5);
        assert_eq!(c.allowed_origins, vec!["http://localhost:5173"]);
        assert!(c.google.is_none() && c.github.is_none());
        assert_eq!(c.max_corrections, DEFAULT_MAX_CORRECTIONS);
        assert_eq!(
            (c.max_sandboxes_per_user, c.preview_domain.as_str()),
            (10, "preview.localhost")
        );
        assert_eq!(c.sandbox_instance_type, InstanceType::Standard3);
        assert_eq!(c.sandbox_backend, SandboxBackend::Container);
        assert_eq!(c.sandbox_idle_timeout_ms, 900_000);
        assert!(c.sandbox_secret.is_none() && c.sealing_key.is_none());
        assert_eq!(
            (c.llm.timeout_ms, c.llm.total_timeout_ms),
            (120_000, 600_000)
        );
        assert_eq!(c.llm.models, ModelTable::defaults());
        assert_eq!(c.deploy.hosting, Hosting::Loader);
        assert_eq!(c.deploy.domain, "apps.localhost");
        assert_eq!(
            (c.deploy.limit.requests, c.deploy.build_timeout_ms),
            (10, 300_000)
        );
        assert!(c.llm.settings.keys.is_empty() && c.llm.settings.gateway_endpoint().is_none());
        assert_eq!(
            c.hub,
            HubConfig {
                shards: 8,
                timing: HubSettings::default()
            }
        );
    }

    #[test]
    fn overrides_and_errors() {
        let c = cfg(&[
            ("RATE_LIMIT_API", "5/60"),
            (
                "ALLOWED_ORIGINS",
                "http://localhost:5173/, https://app.example.com",
            ),
            ("GITHUB_CLIENT_ID", "id"),
            ("GITHUB_CLIENT_SECRET", "s"),
            ("GITHUB_OAUTH_TOKEN_URL", "http://127.0.0.1:1/token"),
            ("MAX_CORRECTION_ROUNDS", "0"),
            // Empty reads as unset.
            ("MAX_APPS_PER_USER", " "),
        ])
        .unwrap();
        assert_eq!(c.api_limit.requests, 5);
        assert_eq!(
            c.allowed_origins,
            vec!["http://localhost:5173", "https://app.example.com"]
        );
        let gh = c.github.unwrap();
        assert_eq!(gh.endpoints.token, "http://127.0.0.1:1/token");
        assert_eq!(gh.endpoints.api, "https://api.github.com");
        assert_eq!(c.max_corrections, 0);
        assert_eq!(c.max_apps_per_user, 100);
        // ALLOWED_ORIGINS set empty allows none.
        assert!(cfg(&[("ALLOWED_ORIGINS", "")])
            .unwrap()
            .allowed_origins
            .is_empty());
        for (k, v) in [
            ("RATE_LIMIT_AI", "lots"),
            ("MAX_APPS_PER_USER", "x"),
            ("MAX_CORRECTION_ROUNDS", "11"),
            ("SANDBOX_INSTANCE_TYPE", "huge"),
            ("GOOGLE_CLIENT_ID", "only-the-id"),
            ("RATE_LIMIT_PREVIEW", "0/60"),
            ("LOGIN_FREE_FAILURES", "0"),
            ("LOGIN_BACKOFF_BASE_SECONDS", "0"),
            ("LOGIN_BACKOFF_MAX_SECONDS", "1"),
            ("PREVIEW_KEEPALIVE_SECONDS", "86401"),
            ("HOSTING", "somewhere"),
            ("CUSTOM_DOMAIN", "bad domain"),
            ("RATE_LIMIT_DEPLOY", "x"),
            ("DEPLOY_BUILD_TIMEOUT_SECONDS", "1"),
            ("ORCH_HUB_SHARDS", "0"),
            ("ORCH_HUB_SHARDS", "1025"),
            ("ORCH_AUTH_TIMEOUT_SECONDS", "0"),
            ("ORCH_EXPIRY_SECONDS", "30"),
        ] {
            let e = cfg(&[(k, v)]).unwrap_err();
            assert!(
                e.starts_with(k) || e.contains("GOOGLE_CLIENT_SECRET"),
                "{k}: {e}"
            );
        }
    }

    #[test]
    fn dispatch_hosting_needs_its_account_and_never_shows_its_token() {
        let e = cfg(&[("HOSTING", "dispatch")]).unwrap_err();
        assert!(
            e.starts_with("HOSTING") || e.contains("required when HOSTING"),
            "{e}"
        );
        let c = cfg(&[
            ("HOSTING", "dispatch"),
            ("CLOUDFLARE_ACCOUNT_ID", "acc"),
            ("DISPATCH_NAMESPACE", "apps"),
            ("CLOUDFLARE_API_TOKEN", "tok-secret"),
            ("CLOUDFLARE_API_BASE_URL", "http://127.0.0.1:9/client/v4/"),
            ("CUSTOM_DOMAIN", "Apps.Example.com."),
        ])
        .unwrap();
        let Hosting::Dispatch(d) = &c.deploy.hosting else {
            panic!("dispatch expected")
        };
        assert_eq!(d.api_base, "http://127.0.0.1:9/client/v4");
        assert_eq!(
            (d.account_id.as_str(), d.namespace.as_str()),
            ("acc", "apps")
        );
        assert_eq!(d.api_token, "tok-secret");
        assert_eq!(c.deploy.domain, "apps.example.com");
        assert!(!format!("{c:?}").contains("tok-secret"));
    }

    #[test]
    fn llm_settings_are_parsed_up_front() {
        let c = cfg(&[
            ("OPENAI_COMPATIBLE_BASE_URL", "http://127.0.0.1:11434/v1/"),
            ("OPENAI_COMPATIBLE_API_KEY", "platform-key"),
            (
                "MODEL_CONFIG",
                r#"{"default":{"provider":"custom","model":"qwen2.5-coder:7b"}}"#,
            ),
            ("LLM_TIMEOUT_MS", "1500"),
            ("LLM_TOTAL_TIMEOUT_MS", "30000"),
            ("SECRETS_ENCRYPTION_KEY", HEX_KEY),
        ])
        .unwrap();
        assert_eq!(
            c.llm.settings.custom_base_url.as_deref(),
            Some("http://127.0.0.1:11434/v1")
        );
        assert_eq!(c.llm.settings.keys[&LlmProvider::Custom], "platform-key");
        let imp = c.llm.models.get(Operation::Implementation);
        assert_eq!(
            (imp.primary.provider, imp.primary.model.as_str()),
            (LlmProvider::Custom, "qwen2.5-coder:7b")
        );
        assert_eq!((c.llm.timeout_ms, c.llm.total_timeout_ms), (1500, 30_000));
        assert!(c.sealing_key.is_some());
        // Set empty, the encryption key is unset (storing own keys is then unavailable).
        assert!(cfg(&[("SECRETS_ENCRYPTION_KEY", "")])
            .unwrap()
            .sealing_key
            .is_none());
    }

    #[test]
    fn sandbox_settings() {
        let c = cfg(&[
            ("SANDBOX_BACKEND", "local"),
            ("SANDBOX_URL", "http://127.0.0.1:8790/"),
            ("SANDBOX_IDLE_TIMEOUT_SECONDS", "10"),
            ("SANDBOX_SECRET", "s3cret-value"),
        ])
        .unwrap();
        assert_eq!(
            c.sandbox_backend,
            SandboxBackend::Local {
                url: "http://127.0.0.1:8790".into()
            }
        );
        assert_eq!(c.sandbox_idle_timeout_ms, 10_000);
        assert_eq!(c.sandbox_secret.unwrap().expose(), "s3cret-value");
        for (pairs, needle) in [
            (vec![("SANDBOX_BACKEND", "local")], "SANDBOX_URL: required"),
            (
                vec![("SANDBOX_BACKEND", "local"), ("SANDBOX_URL", "127.0.0.1")],
                "SANDBOX_URL",
            ),
            (vec![("SANDBOX_BACKEND", "docker")], "SANDBOX_BACKEND"),
            (
                vec![("SANDBOX_IDLE_TIMEOUT_SECONDS", "5")],
                "SANDBOX_IDLE_TIMEOUT_SECONDS: must be at least 10",
            ),
            (
                vec![("SANDBOX_IDLE_TIMEOUT_SECONDS", "-1")],
                "SANDBOX_IDLE_TIMEOUT_SECONDS",
            ),
        ] {
            let e = cfg(&pairs).unwrap_err();
            assert!(e.contains(needle), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn mail_settings() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            (c.mail_backend, c.mail_from),
            (MailBackend::SendEmail, None)
        );
        let c = cfg(&[("MAIL_BACKEND", "outbox"), ("MAIL_FROM", "No@Byte.Test")]).unwrap();
        assert_eq!(c.mail_backend, MailBackend::Outbox);
        assert_eq!(c.mail_from.as_deref(), Some("no@byte.test"));
        // The dev outbox cannot be switched on for a public https deployment.
        let e = cfg(&[
            ("MAIL_BACKEND", "outbox"),
            ("PUBLIC_URL", "https://byte.example"),
        ])
        .unwrap_err();
        assert!(e.contains("MAIL_BACKEND"), "{e}");
        assert!(cfg(&[
            ("MAIL_BACKEND", "outbox"),
            ("PUBLIC_URL", "http://localhost:8787")
        ])
        .is_ok());
        let e = cfg(&[("MAIL_BACKEND", "smtp"), ("MAIL_FROM", "nope")]).unwrap_err();
        assert!(e.contains("MAIL_BACKEND") && e.contains("MAIL_FROM"), "{e}");
    }

    #[test]
    fn every_malformed_value_is_reported_at_once_without_secrets() {
        let e = cfg(&[
            ("MODEL_CONFIG", "{"),
            ("LLM_TIMEOUT_MS", "0"),
            ("LLM_TOTAL_TIMEOUT_MS", "soon"),
            ("AI_GATEWAY_URL", "ftp://x"),
            ("SANDBOX_BACKEND", "docker"),
            ("SECRETS_ENCRYPTION_KEY", "too-short-secret"),
            ("RATE_LIMIT_AUTH", "many"),
        ])
        .unwrap_err();
        for name in [
            "MODEL_CONFIG is not JSON",
            "LLM_TIMEOUT_MS: must be more than 0",
            "LLM_TOTAL_TIMEOUT_MS",
            "AI_GATEWAY_URL",
            "SANDBOX_BACKEND",
            "SECRETS_ENCRYPTION_KEY",
            "RATE_LIMIT_AUTH",
        ] {
            assert!(e.contains(name), "{name} missing from: {e}");
        }
        assert!(!e.contains("too-short-secret"), "{e}");
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let c = cfg(&[
            ("GITHUB_CLIENT_ID", "gh-id"),
            ("GITHUB_CLIENT_SECRET", "gh-client-secret"),
            ("SANDBOX_SECRET", "sandbox-shared-secret"),
            ("SECRETS_ENCRYPTION_KEY", HEX_KEY),
            ("OPENAI_API_KEY", "sk-platform-openai"),
            ("CLOUDFLARE_AI_GATEWAY_TOKEN", "gateway-token"),
        ])
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("gh-id"), "{dbg}");
        for secret in [
            "gh-client-secret",
            "sandbox-shared-secret",
            HEX_KEY,
            "sk-platform-openai",
            "gateway-token",
        ] {
            assert!(!dbg.contains(secret), "{secret} in {dbg}");
        }
    }
}
