//! Configuration read once per request from Worker vars and secrets, parsed into typed values.
//! Every variable is documented in the README; defaults are the spec's values.
//!
//! Invariant: a malformed value is a startup-class error reported by name, never silently ignored.

use super::oauth::{Endpoints, Provider};
use super::ratelimit::Limit;
use super::sandbox::InstanceType;
use super::user::EmailList;

#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_secret: String,
    pub endpoints: Endpoints,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub auth_limit: Limit,
    pub api_limit: Limit,
    pub ai_limit: Limit,
    /// Model tokens per window per user (`requests` counts tokens here).
    pub ai_token_limit: Limit,
    pub allowed_origins: Vec<String>,
    pub max_apps_per_user: u64,
    pub allowed_email: EmailList,
    pub admin_emails: EmailList,
    pub public_url: Option<String>,
    pub google: Option<OAuthClient>,
    pub github: Option<OAuthClient>,
    pub max_sandboxes_per_user: u64,
    /// Previews are served on `<app label>.<preview_domain>`.
    pub preview_domain: String,
    pub sandbox_instance_type: InstanceType,
    /// Correction rounds per phase before remaining errors are reported (`MAX_CORRECTION_ROUNDS`).
    pub max_corrections: u32,
}

impl Config {
    /// Builds the configuration from a lookup of variable names (vars and secrets alike).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let limit = |k: &str, default: &str| -> Result<Limit, String> {
            Limit::parse(&get(k).unwrap_or_else(|| default.into())).map_err(|e| format!("{k}: {e}"))
        };
        let oauth = |p: Provider, prefix: &str| -> Option<OAuthClient> {
            let client_id = get(&format!("{prefix}_CLIENT_ID"))?;
            let client_secret = get(&format!("{prefix}_CLIENT_SECRET"))?;
            let d = Endpoints::defaults(p);
            let api_key = if p == Provider::Google {
                "GOOGLE_USERINFO_URL"
            } else {
                "GITHUB_API_URL"
            };
            Some(OAuthClient {
                client_id,
                client_secret,
                endpoints: Endpoints {
                    authorize: get(&format!("{prefix}_OAUTH_AUTHORIZE_URL")).unwrap_or(d.authorize),
                    token: get(&format!("{prefix}_OAUTH_TOKEN_URL")).unwrap_or(d.token),
                    api: get(api_key).unwrap_or(d.api),
                },
            })
        };
        let number = |k: &str, default: u64| -> Result<u64, String> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| format!("{k}: {v:?} is not a number")),
            }
        };
        let max_apps_per_user = number("MAX_APPS_PER_USER", 100)?;
        let max_sandboxes_per_user = number("MAX_SANDBOX_INSTANCES", 10)?;
        let sandbox_instance_type = InstanceType::parse(
            &get("SANDBOX_INSTANCE_TYPE").unwrap_or_else(|| "standard-3".into()),
        )
        .map_err(|e| format!("SANDBOX_INSTANCE_TYPE: {e}"))?;
        let max_corrections = match get("MAX_CORRECTION_ROUNDS") {
            None => super::codegen::blueprint::DEFAULT_MAX_CORRECTIONS,
            Some(v) => super::codegen::blueprint::parse_max_corrections(&v)
                .map_err(|e| format!("MAX_CORRECTION_ROUNDS: {e}"))?,
        };
        Ok(Self {
            auth_limit: limit("RATE_LIMIT_AUTH", "1000/60")?,
            api_limit: limit("RATE_LIMIT_API", "10000/60")?,
            ai_limit: limit("RATE_LIMIT_AI", "20/60")?,
            ai_token_limit: limit("RATE_LIMIT_AI_TOKENS", "100000/60")?,
            allowed_origins: get("ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().trim_end_matches('/').to_string())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            max_apps_per_user,
            allowed_email: EmailList::parse(&get("ALLOWED_EMAIL").unwrap_or_default()),
            admin_emails: EmailList::parse(&get("ADMIN_EMAILS").unwrap_or_default()),
            public_url: get("PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string()),
            google: oauth(Provider::Google, "GOOGLE"),
            github: oauth(Provider::Github, "GITHUB"),
            max_sandboxes_per_user,
            preview_domain: get("PREVIEW_DOMAIN")
                .unwrap_or_else(|| "preview.localhost".into())
                .to_ascii_lowercase(),
            sandbox_instance_type,
            max_corrections,
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
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_specs() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.auth_limit.requests, 1000);
        assert_eq!(c.api_limit.requests, 10000);
        assert_eq!(c.ai_limit.requests, 20);
        assert_eq!(c.ai_token_limit.requests, 100_000);
        assert_eq!(c.max_apps_per_user, 100);
        assert!(c.google.is_none() && c.github.is_none());
        assert_eq!(c.max_corrections, 3);
        assert_eq!(
            cfg(&[("MAX_CORRECTION_ROUNDS", "0")])
                .unwrap()
                .max_corrections,
            0
        );
        assert!(cfg(&[("MAX_CORRECTION_ROUNDS", "11")])
            .unwrap_err()
            .contains("MAX_CORRECTION_ROUNDS"));
        assert_eq!(
            (c.max_sandboxes_per_user, c.preview_domain.as_str()),
            (10, "preview.localhost")
        );
        assert_eq!(c.sandbox_instance_type, InstanceType::Standard3);
        assert!(cfg(&[("SANDBOX_INSTANCE_TYPE", "huge")])
            .unwrap_err()
            .contains("SANDBOX_INSTANCE_TYPE"));
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
        assert!(cfg(&[("RATE_LIMIT_AI", "lots")])
            .unwrap_err()
            .contains("RATE_LIMIT_AI"));
        assert!(cfg(&[("MAX_APPS_PER_USER", "x")]).is_err());
    }
}
