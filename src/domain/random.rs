//! Random identifiers and secrets. The only source of randomness in the crate: the OS CSPRNG on the
//! host, `crypto.getRandomValues` on Workers (getrandom's `js` backend).

/// `N` bytes from the platform's CSPRNG.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // getrandom only fails when the platform has no CSPRNG at all, which no supported target lacks.
    getrandom::getrandom(&mut b).expect("platform CSPRNG unavailable");
    b
}

/// Lower-case hex of the given bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A new identifier such as `app_3f9c…` (prefix, underscore, 128 random bits as hex).
pub fn id(prefix: &str) -> String {
    format!("{prefix}_{}", hex(&bytes::<16>()))
}

/// A URL-safe random token carrying `N` bytes of entropy.
pub fn token<const N: usize>() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes::<N>())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_prefixed_unique_hex() {
        let a = super::id("app");
        let b = super::id("app");
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 32);
        assert!(a[4..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(super::token::<32>().len(), 43);
    }
}
