//! The Worker a deployment runs as under the local Worker Loader: one module per distinct asset
//! (its bytes, imported as an `ArrayBuffer`), the app's own Worker modules, and a generated router
//! as the main module. The router serves the assets the way Workers static assets do with
//! `not_found_handling = "single-page-application"`: an exact path (or `dir/index.html`) is served
//! with its type, `/assets/*` (Vite's hashed files) as immutable, everything else revalidated by
//! its ETag; an unknown path falls back to `/index.html` for navigations. With the app's own
//! Worker, assets that exist are served first and everything else goes to the app, whose
//! `env.ASSETS.fetch` is this same asset server.

use super::manifest::Manifest;
use serde_json::json;

/// The name of the generated main module.
pub const ROUTER_MODULE: &str = "__byte_router.js";

/// A module of the loaded Worker: name and how the loader should take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoaderModule {
    /// An ES module (the router, the app's Worker code).
    Js { name: String, source: String },
    /// Raw bytes (`{data: ArrayBuffer}`), fetched by blob hash.
    Data { name: String, hash: String },
}

impl LoaderModule {
    pub fn name(&self) -> &str {
        match self {
            LoaderModule::Js { name, .. } | LoaderModule::Data { name, .. } => name,
        }
    }
}

/// The module name of an asset blob.
fn blob_module(hash: &str) -> String {
    format!("__byte_assets/{hash}.bin")
}

/// The modules of the loaded Worker for `manifest`, the router first (the main module). `Js`
/// modules of the app come from `app_module(name)` (their source, read from the blobs).
pub fn modules(
    manifest: &Manifest,
    mut app_module: impl FnMut(&str) -> Option<String>,
) -> Result<Vec<LoaderModule>, String> {
    let mut out = vec![LoaderModule::Js {
        name: ROUTER_MODULE.into(),
        source: router_source(manifest),
    }];
    let mut seen = std::collections::BTreeSet::new();
    for a in &manifest.assets {
        if seen.insert(a.hash.clone()) {
            out.push(LoaderModule::Data {
                name: blob_module(&a.hash),
                hash: a.hash.clone(),
            });
        }
    }
    for m in &manifest.modules {
        let source = app_module(&m.name).ok_or_else(|| format!("missing module {}", m.name))?;
        out.push(LoaderModule::Js {
            name: m.name.clone(),
            source,
        });
    }
    Ok(out)
}

/// The router's source.
pub fn router_source(manifest: &Manifest) -> String {
    let mut imports = String::new();
    let mut names = std::collections::BTreeMap::new();
    for a in &manifest.assets {
        if !names.contains_key(&a.hash) {
            let ident = format!("b{}", names.len());
            imports.push_str(&format!(
                "import {ident} from {};\n",
                json!(format!("./{}", blob_module(&a.hash)))
            ));
            names.insert(a.hash.clone(), ident);
        }
    }
    let mut table = String::from("const FILES = new Map([\n");
    for a in &manifest.assets {
        table.push_str(&format!(
            "  [{}, [{}, {}, {}]],\n",
            json!(a.path),
            names[&a.hash],
            json!(a.content_type),
            json!(a.hash)
        ));
    }
    table.push_str("]);\n");
    let app = match &manifest.main_module {
        Some(main) => {
            imports.push_str(&format!(
                "import APP from {};\n",
                json!(format!("./{main}"))
            ));
            "APP"
        }
        None => "null",
    };
    format!("{imports}{table}const APP_WORKER = {app};\n{ROUTER_BODY}")
}

const ROUTER_BODY: &str = r#"
function lookup(path) {
  let f = FILES.get(path);
  if (!f && path.endsWith("/")) f = FILES.get(path + "index.html");
  if (!f && !path.endsWith("/")) f = FILES.get(path + "/index.html");
  return f;
}

function isNavigation(request, path) {
  const mode = request.headers.get("sec-fetch-mode");
  if (mode) return mode === "navigate";
  const last = path.slice(path.lastIndexOf("/") + 1);
  return !last.includes(".") || (request.headers.get("accept") || "").includes("text/html");
}

function respond(request, f, status) {
  const [body, type, hash] = f;
  const etag = '"' + hash + '"';
  const path = new URL(request.url).pathname;
  const headers = new Headers({
    "content-type": type,
    "etag": etag,
    "cache-control": path.startsWith("/assets/") && status === 200
      ? "public, max-age=31536000, immutable"
      : "public, max-age=0, must-revalidate",
    "x-content-type-options": "nosniff",
  });
  if (request.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers });
  headers.set("content-length", String(body.byteLength));
  return new Response(request.method === "HEAD" ? null : body, { status, headers });
}

function serveAsset(request, fallback) {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("Method Not Allowed", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  let path;
  try { path = decodeURIComponent(new URL(request.url).pathname); } catch { path = "/"; }
  const f = lookup(path);
  if (f) return respond(request, f, 200);
  if (fallback && isNavigation(request, path) && FILES.has("/index.html")) {
    return respond(request, FILES.get("/index.html"), 200);
  }
  return null;
}

function notFound() {
  return new Response("Not Found", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } });
}

export default {
  async fetch(request, env, ctx) {
    if (APP_WORKER && typeof APP_WORKER.fetch === "function") {
      const own = serveAsset(request, false);
      if (own && own.status !== 405) return own;
      const assets = { fetch: async (input, init) => serveAsset(new Request(input, init), true) || notFound() };
      return APP_WORKER.fetch(request, { ...env, ASSETS: assets }, ctx);
    }
    return serveAsset(request, true) || notFound();
  },
};
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deploy::artifact::{Asset, Bundle, Module};

    fn manifest(with_worker: bool) -> Manifest {
        let mut b = Bundle {
            assets: vec![
                Asset {
                    path: "/index.html".into(),
                    content_type: "text/html; charset=utf-8".into(),
                    bytes: b"<h1>hi</h1>".to_vec(),
                },
                Asset {
                    path: "/copy.html".into(),
                    content_type: "text/html; charset=utf-8".into(),
                    bytes: b"<h1>hi</h1>".to_vec(),
                },
                Asset {
                    path: "/assets/it's \"quoted\".js".into(),
                    content_type: "text/javascript; charset=utf-8".into(),
                    bytes: b"1".to_vec(),
                },
            ],
            ..Bundle::default()
        };
        if with_worker {
            b.modules.push(Module {
                name: "_worker.js".into(),
                content: "export default {}".into(),
            });
            b.main_module = Some("_worker.js".into());
        }
        Manifest::of("app", 1, 1, 0, &b, false)
    }

    #[test]
    fn one_data_module_per_distinct_blob_and_the_router_first() {
        let m = manifest(false);
        let mods = modules(&m, |_| None).unwrap();
        assert_eq!(mods[0].name(), ROUTER_MODULE);
        // index.html and copy.html share one blob.
        assert_eq!(mods.len(), 1 + 2);
        let src = router_source(&m);
        assert_eq!(src.matches("import ").count(), 2);
        assert!(src.contains("const APP_WORKER = null;"));
        // Paths are JSON string literals: quotes cannot break out of the table.
        assert!(src.contains(r#""/assets/it's \"quoted\".js""#));
    }

    #[test]
    fn an_app_worker_is_imported_and_its_source_required() {
        let m = manifest(true);
        assert!(modules(&m, |_| None).unwrap_err().contains("_worker.js"));
        let mods = modules(&m, |n| {
            (n == "_worker.js").then(|| "export default {}".into())
        })
        .unwrap();
        assert!(matches!(mods.last(), Some(LoaderModule::Js { name, .. }) if name == "_worker.js"));
        assert!(router_source(&m).contains("import APP from \"./_worker.js\";"));
    }
}
