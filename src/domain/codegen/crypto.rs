//! Sealing users' own provider keys (BYOK) for storage: AES-256-GCM under the deployment's
//! `SECRETS_ENCRYPTION_KEY`, and a masked hint that is safe to show. Other per-user secrets (the
//! GitHub exporter token) are sealed the same way under their own [`Purpose`].
//!
//! Invariants:
//! - the stored form is `v1:<base64 nonce>:<base64 ciphertext+tag>` and never contains the key;
//! - the ciphertext is bound to its owner and provider (they are the AEAD's associated data), so
//!   a sealed key copied to another user's row, or relabelled as another provider's, does not
//!   open;
//! - the 12-byte nonce comes from the caller's CSPRNG, fresh for every seal (with random 96-bit
//!   nonces one key seals far more secrets than a deployment will ever hold);
//! - nothing here logs or formats a plaintext key: [`SealingKey`]'s `Debug` is redacted.

use super::models::Provider;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use std::fmt;

const VERSION: &str = "v1";
/// Domain separation: these associated data mean "a BYOK key", in this format version.
const AAD_CONTEXT: &[u8] = b"byte-platform/byok/v1\0";

/// The deployment's key-encryption key.
pub struct SealingKey([u8; 32]);

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl SealingKey {
    /// Accepts 64 hex characters or the base64 (standard or URL-safe, padded or not) of 32
    /// bytes, and nothing else: a short or mistyped key must stop the deployment, not weaken it.
    pub fn parse(s: &str) -> Result<Self, String> {
        const HOW: &str =
            "SECRETS_ENCRYPTION_KEY must be 64 hex characters or the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)";
        let s = s.trim();
        if s.is_empty() {
            return Err(format!("{HOW}; it is empty"));
        }
        let b = s.as_bytes();
        if b.len() == 64 && b.iter().all(u8::is_ascii_hexdigit) {
            let mut key = [0u8; 32];
            for (i, pair) in b.chunks(2).enumerate() {
                key[i] = hex_value(pair[0]).unwrap_or(0) << 4 | hex_value(pair[1]).unwrap_or(0);
            }
            return Ok(Self(key));
        }
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(s).ok());
        match decoded {
            Some(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                Ok(Self(key))
            }
            Some(bytes) => Err(format!("{HOW}; it decodes to {} bytes", bytes.len())),
            None => Err(format!("{HOW}; it is neither")),
        }
    }

    /// For tests and tools: a key from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }
}

/// Why a stored key did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Not `v1:<nonce>:<ciphertext>`.
    Malformed,
    /// A format version this build does not know.
    UnsupportedVersion(String),
    /// Authentication failed: wrong deployment key, wrong user or provider, or tampering.
    Rejected,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Malformed => f.write_str("stored key is not in the v1:<nonce>:<ciphertext> form"),
            OpenError::UnsupportedVersion(v) => write!(f, "stored key has unknown format version {v:?}"),
            OpenError::Rejected => f.write_str(
                "stored key does not open (encryption key changed, or it belongs to another user or provider)",
            ),
        }
    }
}

impl std::error::Error for OpenError {}

/// `context || len(user) || user || provider`: the length prefix keeps (`ab`, `c`) and (`a`,
/// `bc`) apart.
fn aad(user_id: &str, provider: Provider) -> Vec<u8> {
    aad_for(AAD_CONTEXT, user_id, provider.as_str())
}

fn aad_for(context: &[u8], user_id: &str, label: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(context.len() + 4 + user_id.len() + label.len());
    v.extend_from_slice(context);
    v.extend_from_slice(&(user_id.len() as u32).to_be_bytes());
    v.extend_from_slice(user_id.as_bytes());
    v.extend_from_slice(label.as_bytes());
    v
}

/// Domain separation for other secrets sealed under the same key: a [`Purpose`]'s context goes
/// into the associated data, so a BYOK key and, say, a GitHub token never open as each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A user's own provider key (what [`seal`] and [`open`] handle).
    Byok,
    /// A user's GitHub exporter token.
    GitHubToken,
}

impl Purpose {
    fn context(self) -> &'static [u8] {
        match self {
            Purpose::Byok => AAD_CONTEXT,
            Purpose::GitHubToken => b"byte-platform/github-token/v1\0",
        }
    }
}

/// Seals `plaintext` for `user_id` under `purpose` and `label` (same format as [`seal`]).
pub fn seal_for(
    key: &SealingKey,
    purpose: Purpose,
    user_id: &str,
    label: &str,
    plaintext: &str,
    nonce: [u8; 12],
) -> String {
    seal_aad(
        key,
        &aad_for(purpose.context(), user_id, label),
        plaintext,
        nonce,
    )
}

/// Opens what [`seal_for`] produced for the same purpose, user and label.
pub fn open_for(
    key: &SealingKey,
    purpose: Purpose,
    user_id: &str,
    label: &str,
    stored: &str,
) -> Result<String, OpenError> {
    open_aad(key, &aad_for(purpose.context(), user_id, label), stored)
}

/// Seals `plaintext` for `user_id` and `provider` with a fresh random `nonce`.
pub fn seal(
    key: &SealingKey,
    user_id: &str,
    provider: Provider,
    plaintext: &str,
    nonce: [u8; 12],
) -> String {
    seal_aad(key, &aad(user_id, provider), plaintext, nonce)
}

fn seal_aad(key: &SealingKey, aad: &[u8], plaintext: &str, nonce: [u8; 12]) -> String {
    let ct = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad,
            },
        )
        // AES-GCM encryption only fails for messages beyond 64 GiB.
        .expect("AES-GCM encryption of a short message cannot fail");
    format!(
        "{VERSION}:{}:{}",
        STANDARD.encode(nonce),
        STANDARD.encode(ct)
    )
}

/// Opens what [`seal`] produced for the same user and provider.
pub fn open(
    key: &SealingKey,
    user_id: &str,
    provider: Provider,
    stored: &str,
) -> Result<String, OpenError> {
    open_aad(key, &aad(user_id, provider), stored)
}

fn open_aad(key: &SealingKey, aad: &[u8], stored: &str) -> Result<String, OpenError> {
    let mut parts = stored.trim().split(':');
    let (Some(version), Some(nonce), Some(ct), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OpenError::Malformed);
    };
    if version != VERSION {
        return Err(OpenError::UnsupportedVersion(
            version.chars().take(16).collect(),
        ));
    }
    let nonce = STANDARD.decode(nonce).map_err(|_| OpenError::Malformed)?;
    let ct = STANDARD.decode(ct).map_err(|_| OpenError::Malformed)?;
    if nonce.len() != 12 || ct.len() < 16 {
        return Err(OpenError::Malformed);
    }
    let pt = key
        .cipher()
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad })
        .map_err(|_| OpenError::Rejected)?;
    String::from_utf8(pt).map_err(|_| OpenError::Malformed)
}

/// A hint such as `sk-ant-…9xQz` that identifies a key without revealing it: the vendor prefix
/// (lower-case letters up to the last `-`/`_` among the first 8 characters) and the last four
/// characters, and only for keys long enough that 4 characters are a small share of them.
pub fn mask(key: &str) -> String {
    let key = key.trim();
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 16 {
        return "…".into();
    }
    let head: String = chars[..8].iter().collect();
    let prefix = match head.rfind(['-', '_']) {
        // Vendor prefixes are lower-case words (`sk-`, `sk-ant-`, `gsk_`); anything else with a
        // digit or capital in it is part of the secret.
        Some(i)
            if head[..i]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_') =>
        {
            &head[..=i]
        }
        _ => "",
    };
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key() -> SealingKey {
        SealingKey::parse(HEX).unwrap()
    }

    const N1: [u8; 12] = [7; 12];
    const SECRET: &str = "sk-ant-api03-SuperSecretValue1234567890abcd";

    #[test]
    fn key_formats() {
        let raw: Vec<u8> = (0u8..32).collect();
        let k = key();
        assert_eq!(k.0.to_vec(), raw);
        assert_eq!(
            SealingKey::parse(&HEX.to_uppercase()).unwrap().0.to_vec(),
            raw
        );
        for e in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let s = format!("  {}\n", e.encode(&raw));
            assert_eq!(SealingKey::parse(&s).unwrap().0.to_vec(), raw);
        }
        // Wrong sizes and junk are refused, saying why.
        let e = SealingKey::parse(&HEX[..32]).unwrap_err();
        assert!(e.contains("decodes to 24 bytes"), "{e}");
        let e = SealingKey::parse(&STANDARD.encode([1u8; 16])).unwrap_err();
        assert!(e.contains("16 bytes"), "{e}");
        assert!(SealingKey::parse("").unwrap_err().contains("empty"));
        assert!(SealingKey::parse("not a key!")
            .unwrap_err()
            .contains("neither"));
        let mut bad_hex = HEX.to_string();
        bad_hex.replace_range(0..1, "g");
        assert!(SealingKey::parse(&bad_hex).is_err());
        assert_eq!(format!("{k:?}"), "SealingKey(<redacted>)");
    }

    #[test]
    fn round_trip_and_stored_form() {
        let k = key();
        let stored = seal(&k, "user_1", Provider::Anthropic, SECRET, N1);
        assert!(stored.starts_with("v1:"));
        assert_eq!(stored.split(':').count(), 3);
        assert!(!stored.contains(SECRET));
        assert!(!stored.contains("SuperSecret"));
        assert_eq!(
            open(&k, "user_1", Provider::Anthropic, &stored).unwrap(),
            SECRET
        );
        // Fresh nonces give different ciphertexts of the same key.
        let again = seal(&k, "user_1", Provider::Anthropic, SECRET, [8; 12]);
        assert_ne!(stored, again);
        assert_eq!(
            open(&k, "user_1", Provider::Anthropic, &again).unwrap(),
            SECRET
        );
        // Empty and non-ASCII plaintexts.
        for pt in ["", "ключ-🔑"] {
            let s = seal(&k, "u", Provider::Custom, pt, N1);
            assert_eq!(open(&k, "u", Provider::Custom, &s).unwrap(), pt);
        }
    }

    #[test]
    fn bound_to_user_provider_and_key() {
        let k = key();
        let stored = seal(&k, "user_1", Provider::OpenAi, SECRET, N1);
        assert_eq!(
            open(&k, "user_2", Provider::OpenAi, &stored),
            Err(OpenError::Rejected)
        );
        assert_eq!(
            open(&k, "user_1", Provider::Anthropic, &stored),
            Err(OpenError::Rejected)
        );
        let other = SealingKey::from_bytes([9; 32]);
        assert_eq!(
            open(&other, "user_1", Provider::OpenAi, &stored),
            Err(OpenError::Rejected)
        );
        // The length prefix separates user/provider boundaries.
        assert_ne!(aad("ab", Provider::OpenAi), aad("a", Provider::OpenAi));
        assert_ne!(
            aad("u", Provider::OpenAi)[..],
            aad("uo", Provider::Custom)[..]
        );
    }

    #[test]
    fn tampering_is_detected() {
        let k = key();
        let stored = seal(&k, "u", Provider::Cerebras, SECRET, N1);
        let parts: Vec<&str> = stored.split(':').collect();
        let mut ct = STANDARD.decode(parts[2]).unwrap();
        for i in [0, ct.len() / 2, ct.len() - 1] {
            ct[i] ^= 1;
            let t = format!("v1:{}:{}", parts[1], STANDARD.encode(&ct));
            assert_eq!(
                open(&k, "u", Provider::Cerebras, &t),
                Err(OpenError::Rejected),
                "byte {i}"
            );
            ct[i] ^= 1;
        }
        let mut nonce = STANDARD.decode(parts[1]).unwrap();
        nonce[0] ^= 1;
        let t = format!("v1:{}:{}", STANDARD.encode(&nonce), parts[2]);
        assert_eq!(
            open(&k, "u", Provider::Cerebras, &t),
            Err(OpenError::Rejected)
        );
        // Truncation and malformed forms.
        let short = format!("v1:{}:{}", parts[1], STANDARD.encode(&ct[..15]));
        assert_eq!(
            open(&k, "u", Provider::Cerebras, &short),
            Err(OpenError::Malformed)
        );
        for bad in [
            "",
            "v1",
            "v1:a",
            "v1:!!:!!",
            "v1:a:b:c",
            &format!("v1:{}:{}", STANDARD.encode([0u8; 8]), parts[2]),
        ] {
            assert_eq!(
                open(&k, "u", Provider::Cerebras, bad),
                Err(OpenError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            open(&k, "u", Provider::Cerebras, &stored.replacen("v1", "v2", 1)),
            Err(OpenError::UnsupportedVersion("v2".into()))
        );
        assert!(!OpenError::Rejected.to_string().contains(SECRET));
    }

    #[test]
    fn purposes_are_kept_apart() {
        let k = key();
        let t = seal_for(&k, Purpose::GitHubToken, "u", "github", "gho_token", N1);
        assert_eq!(
            open_for(&k, Purpose::GitHubToken, "u", "github", &t).unwrap(),
            "gho_token"
        );
        assert_eq!(
            open_for(&k, Purpose::GitHubToken, "v", "github", &t),
            Err(OpenError::Rejected)
        );
        assert_eq!(
            open_for(&k, Purpose::Byok, "u", "github", &t),
            Err(OpenError::Rejected)
        );
        // The BYOK form is unchanged: `seal_for(Byok, provider)` is `seal(provider)`.
        let b = seal(&k, "u", Provider::OpenAi, SECRET, N1);
        assert_eq!(
            b,
            seal_for(
                &k,
                Purpose::Byok,
                "u",
                Provider::OpenAi.as_str(),
                SECRET,
                N1
            )
        );
    }

    #[test]
    fn masks_reveal_little() {
        assert_eq!(mask(SECRET), "sk-ant-…abcd");
        assert_eq!(
            mask("sk-proj-abcdefghijklmnopqrstuvwxyz0123"),
            "sk-proj-…0123"
        );
        assert_eq!(mask("AIzaSyA1234567890abcdefghijklmnop"), "…mnop");
        assert_eq!(mask("csk-1234567890abcdefghij"), "csk-…ghij");
        assert_eq!(mask("gsk_aaaaaaaaaaaaaaaaaaaaWXYZ"), "gsk_…WXYZ");
        assert_eq!(mask("short-key"), "…");
        assert_eq!(mask(""), "…");
        assert_eq!(mask("ключключключключключ"), "…ключ");
        // A dash inside the secret part is not a vendor prefix: nothing of the head is shown.
        assert_eq!(mask("a1b2c3d-e5f6g7h8i9j0"), "…i9j0");
    }
}
