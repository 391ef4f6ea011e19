//! A deployment's manifest: which content-addressed blobs make up the deployed app, stored in R2
//! beside the blobs (`deployments/<app>/manifests/<n>.json`, blobs under
//! `deployments/<app>/blobs/<hash>`). A rollback republishes a manifest as it is; the loader host
//! reads the live manifest and its blobs on an isolate's first request.

use super::artifact::{asset_hash, Asset, Bundle, Module};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most a deployment may hold (the spec's `maxStoragePerApp`).
pub const MAX_ARTIFACT_BYTES: u64 = 100 * 1024 * 1024;
/// The most files a deployment may hold (each is a module of the loaded Worker).
pub const MAX_ARTIFACT_FILES: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestAsset {
    pub path: String,
    pub hash: String,
    pub size: u64,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestModule {
    pub name: String,
    pub hash: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub app_id: String,
    /// The deployment's number within the app (1, 2, …).
    pub number: u32,
    /// The app's saved version the build was made from (0 when none was saved yet).
    pub source_version: u32,
    /// Epoch milliseconds.
    pub created_at: i64,
    pub assets: Vec<ManifestAsset>,
    #[serde(default)]
    pub modules: Vec<ManifestModule>,
    #[serde(default)]
    pub main_module: Option<String>,
    /// Whether the deployed code may open outbound connections (the template declares it).
    #[serde(default)]
    pub outbound: bool,
}

impl Manifest {
    /// The manifest of `bundle`.
    pub fn of(
        app_id: &str,
        number: u32,
        source_version: u32,
        created_at: i64,
        bundle: &Bundle,
        outbound: bool,
    ) -> Self {
        Manifest {
            app_id: app_id.into(),
            number,
            source_version,
            created_at,
            assets: bundle
                .assets
                .iter()
                .map(|a| ManifestAsset {
                    path: a.path.clone(),
                    hash: asset_hash(&a.bytes),
                    size: a.bytes.len() as u64,
                    content_type: a.content_type.clone(),
                })
                .collect(),
            modules: bundle
                .modules
                .iter()
                .map(|m| ManifestModule {
                    name: m.name.clone(),
                    hash: asset_hash(m.content.as_bytes()),
                    size: m.content.len() as u64,
                })
                .collect(),
            main_module: bundle.main_module.clone(),
            outbound,
        }
    }

    /// Total bytes of the deployment's content.
    pub fn size(&self) -> u64 {
        self.assets.iter().map(|a| a.size).sum::<u64>()
            + self.modules.iter().map(|m| m.size).sum::<u64>()
    }

    /// Identifies the deployed content (not its number or date): two deployments of the same
    /// build share it, a changed file changes it. The loader keys isolates by it.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        for a in &self.assets {
            h.update(format!("a\0{}\0{}\0{}\n", a.path, a.hash, a.content_type));
        }
        for m in &self.modules {
            h.update(format!("m\0{}\0{}\n", m.name, m.hash));
        }
        h.update(format!(
            "main\0{}\0{}\n",
            self.main_module.as_deref().unwrap_or(""),
            self.outbound
        ));
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Every distinct blob hash the manifest names.
    pub fn blob_hashes(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .assets
            .iter()
            .map(|a| a.hash.clone())
            .chain(self.modules.iter().map(|m| m.hash.clone()))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Rebuilds the bundle from the manifest and a blob lookup; `Err` names a missing blob.
    pub fn bundle(&self, mut blob: impl FnMut(&str) -> Option<Vec<u8>>) -> Result<Bundle, String> {
        let mut assets = Vec::with_capacity(self.assets.len());
        for a in &self.assets {
            let bytes = blob(&a.hash).ok_or_else(|| format!("missing blob for {}", a.path))?;
            assets.push(Asset {
                path: a.path.clone(),
                content_type: a.content_type.clone(),
                bytes,
            });
        }
        let mut modules = Vec::with_capacity(self.modules.len());
        for m in &self.modules {
            let bytes = blob(&m.hash).ok_or_else(|| format!("missing blob for {}", m.name))?;
            let content =
                String::from_utf8(bytes).map_err(|_| format!("module {} is not UTF-8", m.name))?;
            modules.push(Module {
                name: m.name.clone(),
                content,
            });
        }
        Ok(Bundle {
            assets,
            modules,
            main_module: self.main_module.clone(),
        })
    }
}

/// R2 keys of an app's deployment storage (all under one prefix, so deletion is one sweep).
pub fn prefix(app_id: &str) -> String {
    format!("deployments/{app_id}/")
}

pub fn manifest_key(app_id: &str, number: u32) -> String {
    format!("deployments/{app_id}/manifests/{number:08}.json")
}

pub fn blob_key(app_id: &str, hash: &str) -> String {
    format!("deployments/{app_id}/blobs/{hash}")
}

/// The MIME type a file is served with, by extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Bundle {
        Bundle {
            assets: vec![
                Asset {
                    path: "/index.html".into(),
                    content_type: content_type("/index.html").into(),
                    bytes: b"<html></html>".to_vec(),
                },
                Asset {
                    path: "/assets/a.js".into(),
                    content_type: content_type("/assets/a.js").into(),
                    bytes: b"console.log(1)".to_vec(),
                },
            ],
            modules: vec![],
            main_module: None,
        }
    }

    #[test]
    fn the_manifest_names_hashes_sizes_and_rebuilds_the_bundle() {
        let b = bundle();
        let m = Manifest::of("app1", 3, 2, 1000, &b, false);
        assert_eq!(m.size(), 13 + 14);
        assert_eq!(m.assets[1].hash, asset_hash(b"console.log(1)"));
        let blobs: std::collections::HashMap<String, Vec<u8>> = b
            .assets
            .iter()
            .map(|a| (asset_hash(&a.bytes), a.bytes.clone()))
            .collect();
        assert_eq!(m.bundle(|h| blobs.get(h).cloned()).unwrap(), b);
        assert!(m.bundle(|_| None).unwrap_err().contains("/index.html"));
        let back: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn the_content_hash_follows_content_not_number_or_date() {
        let b = bundle();
        let one = Manifest::of("app1", 1, 1, 1, &b, false);
        let two = Manifest::of("app1", 2, 5, 99, &b, false);
        assert_eq!(one.content_hash(), two.content_hash());
        let mut changed = b.clone();
        changed.assets[1].bytes = b"console.log(2)".to_vec();
        assert_ne!(
            Manifest::of("app1", 1, 1, 1, &changed, false).content_hash(),
            one.content_hash()
        );
        assert_ne!(
            Manifest::of("app1", 1, 1, 1, &b, true).content_hash(),
            one.content_hash()
        );
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/assets/x.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("/a/b.woff2"), "font/woff2");
        assert_eq!(content_type("/noext"), "application/octet-stream");
        assert_eq!(content_type("/dir.v1/file"), "application/octet-stream");
    }

    #[test]
    fn keys_sort_by_number_under_one_prefix() {
        assert!(manifest_key("a", 9) < manifest_key("a", 10));
        assert!(manifest_key("a", 1).starts_with(&prefix("a")));
        assert!(blob_key("a", "ff").starts_with(&prefix("a")));
    }
}
