//! Password hashing: PBKDF2-HMAC-SHA256, 100,000 iterations, 16-byte random salt, stored as
//! `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>` so the cost can rise without a migration.
//!
//! Invariant: comparisons are constant-time, and verifying against an unknown user costs the same
//! as against a known one ([`burn`]), so timing does not reveal which emails exist.
//!
//! The key derivation itself is a port ([`Kdf`]): the Worker derives with WebCrypto (native code,
//! about 30 ms per hash in workerd, against about 240 ms for PBKDF2 compiled to WebAssembly), so a
//! burst of sign-ins does not hold the isolate for seconds; [`RustKdf`] is the reference the host
//! tests use. Both produce the same bytes (RFC 8018), so stored hashes do not depend on which ran.

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// 100,000 is both OWASP's floor for PBKDF2-SHA256 at the time of the spec and the ceiling that
/// Workers' WebCrypto accepts, should the hash ever move there.
pub const ITERATIONS: u32 = 100_000;
const HASH_LEN: usize = 32;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

/// Checks a new password against the policy; the message is safe to show.
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!("must be at least {MIN_LEN} characters"));
    }
    if n > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    Ok(())
}

/// PBKDF2-HMAC-SHA256 with a 32-byte output. `None`: the derivation could not run (the caller
/// answers with a server error; a password never matches on `None`).
#[allow(async_fn_in_trait)]
pub trait Kdf {
    async fn derive(&self, password: &str, salt: &[u8], iterations: u32) -> Option<[u8; HASH_LEN]>;
}

/// PBKDF2 in Rust: the reference implementation (host tests, and any host without WebCrypto).
pub struct RustKdf;

impl Kdf for RustKdf {
    async fn derive(&self, password: &str, salt: &[u8], iterations: u32) -> Option<[u8; HASH_LEN]> {
        let mut out = [0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
        Some(out)
    }
}

/// The stored form of a new password; `None` when the derivation could not run.
pub async fn hash(kdf: &impl Kdf, password: &str, salt: [u8; 16]) -> Option<String> {
    hash_with(kdf, password, &salt, ITERATIONS).await
}

async fn hash_with(kdf: &impl Kdf, password: &str, salt: &[u8], iterations: u32) -> Option<String> {
    let h = kdf.derive(password, salt, iterations).await?;
    Some(format!(
        "pbkdf2-sha256${iterations}${}${}",
        B64.encode(salt),
        B64.encode(h)
    ))
}

/// True when `password` matches `stored`. A malformed stored value never matches.
pub async fn verify(kdf: &impl Kdf, password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(expected), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iterations), Ok(salt), Ok(expected)) =
        (iter.parse::<u32>(), B64.decode(salt), B64.decode(expected))
    else {
        return false;
    };
    if !(1_000..=10_000_000).contains(&iterations) || expected.len() != HASH_LEN {
        return false;
    }
    match kdf.derive(password, &salt, iterations).await {
        Some(actual) => actual.ct_eq(&expected).into(),
        None => false,
    }
}

/// Spends the same work as a real verification, for requests about accounts that do not exist.
pub async fn burn(kdf: &impl Kdf, password: &str) {
    let _ = kdf
        .derive(password, b"byte-platform-no-such-user", ITERATIONS)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::block_on;

    fn hash(p: &str, salt: [u8; 16]) -> String {
        block_on(super::hash(&RustKdf, p, salt)).unwrap()
    }
    fn verify(p: &str, stored: &str) -> bool {
        block_on(super::verify(&RustKdf, p, stored))
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let stored = hash("correct horse battery", [7; 16]);
        assert!(stored.starts_with("pbkdf2-sha256$100000$"));
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterY", &stored));
    }

    #[test]
    fn salt_changes_the_hash() {
        assert_ne!(hash("pw-pw-pw-pw", [1; 16]), hash("pw-pw-pw-pw", [2; 16]));
    }

    #[test]
    fn malformed_stored_values_never_match() {
        for bad in [
            "",
            "plain",
            "pbkdf2-sha256$1$x$y",
            "md5$100000$AAAA$AAAA",
            "pbkdf2-sha256$100000$!!$!!",
        ] {
            assert!(!verify("anything", bad), "{bad}");
        }
        let good = hash("pw-pw-pw-pw", [3; 16]);
        assert!(!verify("pw-pw-pw-pw", &format!("{good}$extra")));
    }

    #[test]
    fn matches_a_known_pbkdf2_vector() {
        // RFC 7914 §11 test vector for PBKDF2-HMAC-SHA256 ("passwd", "salt", c = 1).
        let h = block_on(RustKdf.derive("passwd", b"salt", 1)).unwrap();
        assert_eq!(super::super::random::hex(&h[..8]), "55ac046e56e3089f");
    }

    #[test]
    fn policy() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(257)).is_err());
        assert!(check_policy("long enough").is_ok());
    }
}
