//! A deployment's content: the static assets a build produced and, for a template with its own
//! server code, the Worker modules. Stored content-addressed in R2 and published as it is.

use sha2::{Digest, Sha256};

/// A static file served at `path` (always starting with `/`, e.g. `/assets/index-3f2a.js`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub path: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// An ES module of the app's own Worker code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    pub content: String,
}

/// What is published: assets, plus the app's Worker modules when its template has server code
/// (`main_module` names one of `modules`); an assets-only app has neither.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    pub assets: Vec<Asset>,
    pub modules: Vec<Module>,
    pub main_module: Option<String>,
}

/// The content hash of an asset as the Cloudflare asset manifest takes it: 32 lowercase hex
/// digits (the first half of the SHA-256 of the bytes).
pub fn asset_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_hash_is_32_hex_digits_of_the_content() {
        let h = asset_hash(b"hello");
        assert_eq!(h, "2cf24dba5fb0a30e26e83b2ac5b9e29e");
        assert_ne!(asset_hash(b"hello!"), h);
    }
}
