//! Session tokens: HS256 JWTs carrying the spec's payload plus a session id (`sid`) that logout
//! revokes, and the CSRF token bound to that session; and email-verification tokens (HS256 JWTs
//! under a key derived for that purpose only, carrying the account, the address and a single-use
//! id `jti` that D1 records, see [`EmailClaims`]).
//!
//! Invariants: only `HS256` verifies (a `none` or `RS256` header is rejected before any claim is
//! read); expiry is always checked against the injected clock; every session failure maps to one
//! 401 E001 and every email-token failure to one 400 E004; a session token is never accepted as
//! an email token nor the reverse (different keys).

use super::error::ApiError;
use super::ids::{SessionId, UserId};
use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Tokens live 30 days, as the spec says.
pub const TOKEN_DAYS: i64 = 30;
pub const TOKEN_SECONDS: i64 = TOKEN_DAYS * 24 * 3600;

/// The custom part of the payload (`iat` and `exp` are added by the claims envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionClaims {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    /// `email`, `google` or `github`: how the session was established.
    pub provider: String,
    /// Session id, the handle logout revokes.
    pub sid: SessionId,
}

/// A verified token's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub claims: SessionClaims,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// How long an email-verification link works: a day, as most services give.
pub const EMAIL_TOKEN_SECONDS: i64 = 24 * 3600;

/// What an email-verification link proves when it comes back: whoever holds it reads mail at
/// `email`, and `user_id` asked for that address. `jti` is recorded when the link is sent and
/// consumed when it is used, so a link works once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailClaims {
    /// Always `"verify_email"`: a token minted for another purpose never passes.
    pub purpose: String,
    pub user_id: UserId,
    pub email: String,
    pub jti: String,
}

pub const EMAIL_PURPOSE: &str = "verify_email";

pub struct TokenKeys {
    key: Hs256Key,
    /// HMAC(secret, "email-verification"): email tokens cannot be confused with sessions.
    email_key: Hs256Key,
    secret: Vec<u8>,
}

fn at(now_ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_default()
}

impl TokenKeys {
    /// Keys from `JWT_SECRET`; short secrets are refused so a misconfiguration cannot go live.
    pub fn new(secret: &str) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err("JWT_SECRET must be at least 32 bytes".into());
        }
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
        mac.update(b"email-verification");
        Ok(Self {
            key: Hs256Key::new(secret.as_bytes()),
            email_key: Hs256Key::new(mac.finalize().into_bytes()),
            secret: secret.as_bytes().to_vec(),
        })
    }

    /// An email-verification token for `user_id` and `email`, valid [`EMAIL_TOKEN_SECONDS`].
    pub fn issue_email(&self, user_id: &UserId, email: &str, jti: &str, now_ms: i64) -> String {
        let now = at(now_ms);
        let options = TimeOptions::new(Duration::seconds(0), move || now);
        let claims = Claims::new(EmailClaims {
            purpose: EMAIL_PURPOSE.into(),
            user_id: user_id.clone(),
            email: email.into(),
            jti: jti.into(),
        })
        .set_duration_and_issuance(&options, Duration::seconds(EMAIL_TOKEN_SECONDS));
        Hs256
            .token(
                &Header::empty().with_token_type("JWT"),
                &claims,
                &self.email_key,
            )
            .expect("HS256 signing of serializable claims cannot fail")
    }

    /// Checks an email-verification token's signature, purpose and expiry (not its single use,
    /// which D1 records). Every failure is one 400 E004 on the `token` field.
    pub fn verify_email(&self, token: &str, now_ms: i64) -> Result<EmailClaims, ApiError> {
        let bad = |why: &str| ApiError::field("token", why.to_string());
        if token.len() > 4096 {
            return Err(bad("is not a valid verification token"));
        }
        let untrusted =
            UntrustedToken::new(token).map_err(|_| bad("is not a valid verification token"))?;
        if untrusted.algorithm() != "HS256" {
            return Err(bad("is not a valid verification token"));
        }
        let verified = Hs256
            .validator::<EmailClaims>(&self.email_key)
            .validate(&untrusted)
            .map_err(|_| bad("is not a valid verification token"))?;
        let now = at(now_ms);
        let options = TimeOptions::new(Duration::seconds(0), move || now);
        let claims = verified.claims();
        claims
            .validate_expiration(&options)
            .map_err(|_| bad("has expired; ask for a new verification link"))?;
        if claims.custom.purpose != EMAIL_PURPOSE {
            return Err(bad("is not a valid verification token"));
        }
        Ok(claims.custom.clone())
    }

    pub fn issue(&self, claims: SessionClaims, now_ms: i64) -> String {
        let now = at(now_ms);
        let options = TimeOptions::new(Duration::seconds(0), move || now);
        let claims = Claims::new(claims)
            .set_duration_and_issuance(&options, Duration::seconds(TOKEN_SECONDS));
        Hs256
            .token(&Header::empty().with_token_type("JWT"), &claims, &self.key)
            .expect("HS256 signing of serializable claims cannot fail")
    }

    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Session, ApiError> {
        let bad =
            |why: &str| ApiError::unauthorized(format!("invalid authentication token: {why}"));
        if token.len() > 4096 {
            return Err(bad("too long"));
        }
        let untrusted = UntrustedToken::new(token).map_err(|_| bad("malformed"))?;
        if untrusted.algorithm() != "HS256" {
            return Err(bad("unsupported algorithm"));
        }
        let verified = Hs256
            .validator::<SessionClaims>(&self.key)
            .validate(&untrusted)
            .map_err(|_| bad("signature or claims invalid"))?;
        let now = at(now_ms);
        let options = TimeOptions::new(Duration::seconds(0), move || now);
        let claims = verified.claims();
        claims
            .validate_expiration(&options)
            .map_err(|_| bad("expired"))?;
        let (Some(iat), Some(exp)) = (claims.issued_at, claims.expiration) else {
            return Err(bad("missing iat/exp"));
        };
        if iat.timestamp_millis() > now_ms + 60_000 {
            return Err(bad("issued in the future"));
        }
        Ok(Session {
            claims: claims.custom.clone(),
            issued_at: iat.timestamp(),
            expires_at: exp.timestamp(),
        })
    }

    /// The CSRF token for a session: HMAC(secret, "csrf:" + sid), hex. Bound to the session, so it
    /// is useless to anyone without the session and dies with it.
    pub fn csrf_token(&self, sid: &SessionId) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        mac.update(b"csrf:");
        mac.update(sid.as_str().as_bytes());
        super::random::hex(&mac.finalize().into_bytes())
    }

    pub fn check_csrf(&self, sid: &SessionId, presented: &str) -> bool {
        self.csrf_token(sid)
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }

    /// A short-lived HMAC signature over arbitrary text (used for host-scoped preview tokens).
    pub fn sign(&self, purpose: &str, text: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(text.as_bytes());
        super::random::hex(&mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;

    const NOW: i64 = 1_760_000_000_000;

    fn keys() -> TokenKeys {
        TokenKeys::new("0123456789abcdef0123456789abcdef").unwrap()
    }

    fn claims() -> SessionClaims {
        SessionClaims {
            user_id: "usr_1".into(),
            email: "a@example.com".into(),
            display_name: "A".into(),
            provider: "email".into(),
            sid: "ses_1".into(),
        }
    }

    #[test]
    fn issue_and_verify() {
        let t = keys().issue(claims(), NOW);
        let s = keys().verify(&t, NOW + 1000).unwrap();
        assert_eq!(s.claims, claims());
        assert_eq!(s.expires_at - s.issued_at, TOKEN_SECONDS);
        let payload: serde_json::Value =
            serde_json::from_slice(&B64.decode(t.split('.').nth(1).unwrap()).unwrap()).unwrap();
        for k in ["userId", "email", "displayName", "provider", "iat", "exp"] {
            assert!(payload.get(k).is_some(), "payload lacks {k}");
        }
    }

    #[test]
    fn expired_is_rejected() {
        let t = keys().issue(claims(), NOW);
        assert!(keys().verify(&t, NOW + TOKEN_SECONDS * 1000 - 1000).is_ok());
        let e = keys()
            .verify(&t, NOW + TOKEN_SECONDS * 1000 + 1000)
            .unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (401, super::super::error::ErrorCode::E001)
        );
    }

    #[test]
    fn tampered_payload_or_signature_is_rejected() {
        let t = keys().issue(claims(), NOW);
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = claims();
        c.user_id = "usr_admin".into();
        let forged_payload = B64.encode(
            serde_json::to_vec(&serde_json::json!({
                "userId": c.user_id, "email": c.email, "displayName": c.display_name,
                "provider": c.provider, "sid": c.sid, "iat": NOW / 1000, "exp": NOW / 1000 + 99999
            }))
            .unwrap(),
        );
        assert!(keys()
            .verify(
                &format!("{}.{}.{}", parts[0], forged_payload, parts[2]),
                NOW
            )
            .is_err());
        let mut sig = parts[2].to_string();
        sig.replace_range(0..1, if sig.starts_with('A') { "B" } else { "A" });
        assert!(keys()
            .verify(&format!("{}.{}.{}", parts[0], parts[1], sig), NOW)
            .is_err());
        let other = TokenKeys::new("another-secret-another-secret-xx").unwrap();
        assert!(other.verify(&t, NOW).is_err());
    }

    #[test]
    fn none_and_rs256_algorithms_are_rejected() {
        let t = keys().issue(claims(), NOW);
        let payload = t.split('.').nth(1).unwrap();
        for alg in ["none", "RS256", "HS512"] {
            let header = B64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            assert!(
                keys().verify(&format!("{header}.{payload}."), NOW).is_err(),
                "{alg}"
            );
            let sig = t.split('.').nth(2).unwrap();
            assert!(
                keys()
                    .verify(&format!("{header}.{payload}.{sig}"), NOW)
                    .is_err(),
                "{alg} with sig"
            );
        }
    }

    #[test]
    fn garbage_is_rejected() {
        for t in ["", "a.b", "a.b.c", "....", &"x".repeat(5000)] {
            assert!(keys().verify(t, NOW).is_err());
        }
    }

    #[test]
    fn short_secret_refused() {
        assert!(TokenKeys::new("short").is_err());
    }

    #[test]
    fn email_tokens_verify_and_expire_on_the_injected_clock() {
        let k = keys();
        let t = k.issue_email(&"usr_1".into(), "a@example.com", "evt_1", NOW);
        let c = k.verify_email(&t, NOW + 1000).unwrap();
        assert_eq!(
            (c.user_id.as_str(), c.email.as_str(), c.jti.as_str()),
            ("usr_1", "a@example.com", "evt_1")
        );
        assert!(k
            .verify_email(&t, NOW + EMAIL_TOKEN_SECONDS * 1000 - 1000)
            .is_ok());
        let e = k
            .verify_email(&t, NOW + EMAIL_TOKEN_SECONDS * 1000 + 1000)
            .unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (400, super::super::error::ErrorCode::E004)
        );
        assert!(e.to_json().contains("expired"), "{}", e.to_json());
    }

    #[test]
    fn email_and_session_tokens_are_not_interchangeable() {
        let k = keys();
        let session = k.issue(claims(), NOW);
        assert!(k.verify_email(&session, NOW).is_err());
        let email = k.issue_email(&"usr_1".into(), "a@example.com", "evt_1", NOW);
        assert!(k.verify(&email, NOW).is_err());
        // Tampering with the address breaks the signature.
        let parts: Vec<&str> = email.split('.').collect();
        let forged = B64.encode(
            serde_json::to_vec(&serde_json::json!({
                "purpose": "verify_email", "user_id": "usr_1", "email": "root@admin.test",
                "jti": "evt_1", "iat": NOW / 1000, "exp": NOW / 1000 + 999
            }))
            .unwrap(),
        );
        assert!(k
            .verify_email(&format!("{}.{forged}.{}", parts[0], parts[2]), NOW)
            .is_err());
        let other = TokenKeys::new("another-secret-another-secret-xx").unwrap();
        assert!(other.verify_email(&email, NOW).is_err());
        for junk in ["", "a.b.c", &"x".repeat(5000)] {
            assert!(k.verify_email(junk, NOW).is_err());
        }
    }

    #[test]
    fn csrf_is_bound_to_session() {
        let k = keys();
        let t = k.csrf_token(&"ses_1".into());
        assert!(k.check_csrf(&"ses_1".into(), &t));
        assert!(!k.check_csrf(&"ses_2".into(), &t));
        assert!(!k.check_csrf(&"ses_1".into(), ""));
    }
}
