//! OAuth 2.0 authorization-code flow with PKCE (RFC 7636) for Google and GitHub: endpoints
//! (configurable, so tests run a fake provider), authorize URLs, and the provider-specific shapes of
//! user profiles.
//!
//! Invariants: `state` is single-use and expires ([`STATE_TTL_SECONDS`]); the post-login redirect is
//! always a same-origin path.

use super::input::percent_encode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use strum::{EnumString, IntoStaticStr};

pub const STATE_TTL_SECONDS: i64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, EnumString)]
#[strum(serialize_all = "lowercase")]
pub enum Provider {
    Google,
    Github,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn scope(self) -> &'static str {
        match self {
            Provider::Google => "openid email profile",
            Provider::Github => "read:user user:email",
        }
    }
}

/// Where a provider lives. Defaults are the real services; every URL can be overridden.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorize: String,
    pub token: String,
    /// Google: the OpenID userinfo URL. GitHub: the REST API base (`/user`, `/user/emails`).
    pub api: String,
}

impl Endpoints {
    pub fn defaults(p: Provider) -> Self {
        match p {
            Provider::Google => Self {
                authorize: "https://accounts.google.com/o/oauth2/v2/auth".into(),
                token: "https://oauth2.googleapis.com/token".into(),
                api: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            },
            Provider::Github => Self {
                authorize: "https://github.com/login/oauth/authorize".into(),
                token: "https://github.com/login/oauth/access_token".into(),
                api: "https://api.github.com".into(),
            },
        }
    }
}

/// The S256 code challenge for a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn authorize_url(
    p: Provider,
    endpoints: &Endpoints,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    verifier: &str,
) -> String {
    let mut url = scoped_authorize_url(
        endpoints,
        client_id,
        redirect_uri,
        p.scope(),
        state,
        verifier,
    );
    if p == Provider::Google {
        url.push_str("&access_type=online&prompt=select_account");
    }
    url
}

/// The authorize URL asking for `scope` (the GitHub exporter app asks for `repo`).
pub fn scoped_authorize_url(
    endpoints: &Endpoints,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    state: &str,
    verifier: &str,
) -> String {
    let sep = if endpoints.authorize.contains('?') {
        '&'
    } else {
        '?'
    };
    format!(
        "{}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&code_challenge={}&code_challenge_method=S256",
        endpoints.authorize,
        percent_encode(client_id),
        percent_encode(redirect_uri),
        percent_encode(scope),
        percent_encode(state),
        pkce_challenge(verifier),
    )
}

/// The form body of the token request.
pub fn token_request_body(
    code: &str,
    redirect_uri: &str,
    client_id: &str,
    client_secret: &str,
    verifier: &str,
) -> String {
    format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&client_id={}&client_secret={}&code_verifier={}",
        percent_encode(code),
        percent_encode(redirect_uri),
        percent_encode(client_id),
        percent_encode(client_secret),
        percent_encode(verifier)
    )
}

/// Extracts the access token from a token response (GitHub answers errors with 200 + `error`).
pub fn access_token(body: &Value) -> Result<String, String> {
    if let Some(err) = body.get("error").and_then(Value::as_str) {
        return Err(format!("provider refused the code: {err}"));
    }
    body.get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "token response has no access_token".into())
}

/// The identity a provider vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub provider_user_id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|x| !x.is_empty())
}

/// Google's OpenID Connect userinfo.
pub fn google_profile(v: &Value) -> Result<Profile, String> {
    Ok(Profile {
        provider_user_id: s(v, "sub").ok_or("userinfo has no sub")?,
        email: s(v, "email"),
        email_verified: v
            .get("email_verified")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        display_name: s(v, "name"),
        avatar_url: s(v, "picture"),
    })
}

/// GitHub's `/user` and `/user/emails`. Only an address GitHub marks `verified` is taken, the
/// primary one first; `/user`'s public `email` is never used (the emails list is the source of
/// truth for verification). Without a verified address the profile carries the primary address,
/// unverified, so the refusal can say why.
pub fn github_profile(user: &Value, emails: &Value) -> Result<Profile, String> {
    let id = match user.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("GitHub user has no id".into()),
    };
    let list = emails
        .as_array()
        .ok_or("GitHub /user/emails is not a list")?;
    let flag = |e: &Value, k: &str| e.get(k).and_then(Value::as_bool) == Some(true);
    let verified = list
        .iter()
        .filter(|e| flag(e, "verified") && s(e, "email").is_some());
    let chosen = verified
        .clone()
        .find(|e| flag(e, "primary"))
        .or_else(|| verified.clone().next());
    let (email, email_verified) = match chosen {
        Some(e) => (s(e, "email"), true),
        None => (
            list.iter()
                .find(|e| flag(e, "primary"))
                .and_then(|e| s(e, "email")),
            false,
        ),
    };
    Ok(Profile {
        provider_user_id: id,
        email,
        email_verified,
        display_name: s(user, "name").or_else(|| s(user, "login")),
        avatar_url: s(user, "avatar_url"),
    })
}

impl Profile {
    /// The address the provider vouches for, if it vouches for one.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }
}

/// A post-login redirect target: only a same-origin absolute path, never `//host` or a URL.
pub fn safe_redirect(raw: Option<&str>) -> String {
    match raw {
        Some(r)
            if r.starts_with('/')
                && !r.starts_with("//")
                && !r.starts_with("/\\")
                && r.len() <= 512
                && !r.chars().any(|c| c.is_control()) =>
        {
            r.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn authorize_url_carries_state_and_challenge() {
        let e = Endpoints {
            authorize: "http://127.0.0.1:9/authorize".into(),
            token: String::new(),
            api: String::new(),
        };
        let u = authorize_url(
            Provider::Github,
            &e,
            "cid",
            "http://localhost:8787/api/auth/callback/github",
            "st",
            "v",
        );
        assert!(u.starts_with("http://127.0.0.1:9/authorize?response_type=code&client_id=cid"));
        assert!(u.contains(
            "redirect_uri=http%3A%2F%2Flocalhost%3A8787%2Fapi%2Fauth%2Fcallback%2Fgithub"
        ));
        assert!(
            u.contains("&state=st&")
                && u.contains(&format!("code_challenge={}", pkce_challenge("v")))
        );
    }

    #[test]
    fn profiles() {
        let g =
            google_profile(&json!({"sub":"1","email":"a@b.co","email_verified":true,"name":"A"}))
                .unwrap();
        assert!(g.email_verified && g.provider_user_id == "1");
        assert!(google_profile(&json!({"email":"a@b.co"})).is_err());
        let gh = github_profile(
            &json!({"id": 42, "login": "octo", "email": null}),
            &json!([{"email":"x@y.co","primary":false,"verified":true},{"email":"o@y.co","primary":true,"verified":true}]),
        )
        .unwrap();
        assert_eq!(
            (
                gh.provider_user_id.as_str(),
                gh.email.as_deref(),
                gh.display_name.as_deref()
            ),
            ("42", Some("o@y.co"), Some("octo"))
        );
        assert_eq!(gh.verified_email(), Some("o@y.co"));
        assert_eq!(
            access_token(&json!({"error":"bad_verification_code"})).unwrap_err(),
            "provider refused the code: bad_verification_code"
        );
    }

    #[test]
    fn only_provider_verified_addresses_are_taken() {
        let user = json!({"id": 7, "login": "m", "email": "public@y.co"});
        // An unverified primary loses to a verified secondary.
        let p = github_profile(
            &user,
            &json!([{"email":"victim@y.co","primary":true,"verified":false},{"email":"m@y.co","primary":false,"verified":true}]),
        )
        .unwrap();
        assert_eq!(p.verified_email(), Some("m@y.co"));
        // Nothing verified: no address, whatever `/user` shows publicly.
        let p = github_profile(
            &user,
            &json!([{"email":"victim@y.co","primary":true,"verified":false}]),
        )
        .unwrap();
        assert_eq!(
            (p.verified_email(), p.email.as_deref()),
            (None, Some("victim@y.co"))
        );
        assert_eq!(
            github_profile(&user, &json!([])).unwrap().verified_email(),
            None
        );
        assert!(github_profile(&user, &json!({"message": "x"})).is_err());
        // Google: `email_verified` must be true.
        for v in [json!(false), json!("true"), Value::Null] {
            let g =
                google_profile(&json!({"sub":"1","email":"a@b.co","email_verified": v})).unwrap();
            assert_eq!(g.verified_email(), None);
        }
    }

    #[test]
    fn redirects_stay_on_site() {
        assert_eq!(safe_redirect(Some("/apps/1?x=y")), "/apps/1?x=y");
        for bad in [
            "//evil.com",
            "https://evil.com",
            "/\\evil.com",
            "apps",
            "/a\nb",
        ] {
            assert_eq!(safe_redirect(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_redirect(None), "/");
    }
}
