//! A fake of the Cloudflare API's Workers for Platforms upload surface on loopback, speaking the
//! real wire format (envelopes `{success, errors: [{code, message}], messages, result}`,
//! multipart bodies parsed by a standard parser, Bearer credentials):
//! - `POST /client/v4/accounts/{a}/workers/dispatch/namespaces/{ns}/scripts/{name}/assets-upload-session`
//!   checks the API token, account and namespace and the manifest (`{"/path": {hash, size}}`,
//!   32 lowercase hex digits), and answers a session jwt with buckets of the hashes it does not
//!   hold yet (so republishing unchanged files uploads nothing);
//! - `POST /client/v4/accounts/{a}/workers/assets/upload?base64=true` takes the session jwt as
//!   Bearer and a multipart body whose parts are named by hashes of that session, each the base64
//!   of content whose hash (first 32 hex of SHA-256) and size match the manifest, with a content
//!   type; 202 while files are missing, 201 with the completion jwt once all are there;
//! - `PUT …/scripts/{name}` checks the multipart `metadata` (main module among the parts, a
//!   `YYYY-MM-DD` compatibility date, the assets jwt a completion jwt of this script, the assets
//!   config, bindings, Durable Object migrations: a class the script already has is error 10074)
//!   and the module parts' types, then "deploys" the script;
//! - `DELETE …/scripts/{name}` removes it (404 with 10007 when there is none).
//!
//! What was deployed can be read back ([`FakeCloudflare::script`]) or served over HTTP:
//! `GET /_fake/scripts/{name}` (metadata, modules, asset list) and
//! `GET /_fake/scripts/{name}/serve/{*path}` (an asset with its type, the single-page fallback to
//! `/index.html` for unknown paths), like the dispatcher would. Every call is recorded; failures
//! are injected per route, once or always, before the request has any effect.
//!
//! Tests below drive `domain::deploy::cloudflare::{publish, unpublish}` against it through a
//! reqwest implementation of the port ([`ReqwestApi`]); a `wrangler dev` test can point
//! `CLOUDFLARE_API_BASE_URL` at [`FakeCloudflare::api_base`] instead.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use byte_platform::domain::deploy::cloudflare::{ApiRequest, ApiResponse, CloudflareApi};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Cloudflare's limit on one asset file.
pub const MAX_ASSET_BYTES: u64 = 25 * 1024 * 1024;
/// Module part types Cloudflare takes in a script upload.
const MODULE_TYPES: &[&str] = &[
    "application/javascript+module",
    "text/javascript+module",
    "application/javascript",
    "text/javascript",
    "application/wasm",
    "text/plain",
    "application/octet-stream",
    "application/source-map",
];

/// The API surfaces a failure can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Session,
    Upload,
    Script,
    Delete,
}

/// An injected failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 400 with error 10074, naming the first class the upload's migrations create.
    DurableObjectExists,
    /// This status (a 5xx) with an internal error envelope.
    Status(u16),
    /// 429 with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// A refusal: status, Cloudflare code, message (e.g. 403, 10000, "Authentication error").
    Refuse {
        status: u16,
        code: u64,
        message: String,
    },
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub route: Option<Route>,
    pub status: u16,
    /// Answered by an injected failure.
    pub injected: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedAsset {
    pub hash: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedModule {
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A script as the last successful upload left it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployedScript {
    pub metadata: Value,
    pub modules: BTreeMap<String, DeployedModule>,
    pub assets: BTreeMap<String, DeployedAsset>,
    /// Durable Object classes created by migrations so far.
    pub durable_objects: BTreeSet<String>,
    pub etag: String,
}

/// An asset manifest: path → (hash, size).
type AssetManifest = BTreeMap<String, (String, u64)>;

struct Session {
    script: String,
    manifest: AssetManifest,
    pending: BTreeSet<String>,
}

#[derive(Default)]
struct Fake {
    /// Uploaded files by hash: content type and bytes.
    blobs: HashMap<String, (String, Vec<u8>)>,
    sessions: HashMap<String, Session>,
    /// Completion jwts: the script and manifest they stand for.
    completions: HashMap<String, (String, AssetManifest)>,
    scripts: BTreeMap<String, DeployedScript>,
    calls: Vec<Call>,
    once: Vec<(Route, Failure)>,
    always: Vec<(Route, Failure)>,
    bucket_size: usize,
    next: u64,
}

/// The fake's identity and state, shared by its handlers.
struct Inner {
    account_id: String,
    namespace: String,
    api_token: String,
    fake: Mutex<Fake>,
}

type Shared = Arc<Inner>;

/// A running fake (cheap to clone; all clones share it).
#[derive(Clone)]
pub struct FakeCloudflare {
    /// `http://127.0.0.1:port` (the fake's own endpoints hang off it).
    pub url: String,
    pub account_id: String,
    pub namespace: String,
    pub api_token: String,
    state: Shared,
}

impl FakeCloudflare {
    /// Starts a fresh fake with its own account, namespace and token; buckets of 3 files.
    pub fn start() -> FakeCloudflare {
        let n: u64 = rand_suffix();
        let state: Shared = Arc::new(Inner {
            account_id: format!("{n:032x}"),
            namespace: "byte-apps".into(),
            api_token: format!("fake-cf-token-{n:x}"),
            fake: Mutex::new(Fake {
                bucket_size: 3,
                ..Fake::default()
            }),
        });
        let ws = "/client/v4/accounts/{account}/workers";
        let app = Router::new()
            .route(
                &format!("{ws}/dispatch/namespaces/{{ns}}/scripts/{{name}}/assets-upload-session"),
                post(session),
            )
            .route(&format!("{ws}/assets/upload"), post(upload))
            .route(
                &format!("{ws}/dispatch/namespaces/{{ns}}/scripts/{{name}}"),
                axum::routing::put(put_script).delete(delete_script),
            )
            .route("/_fake/scripts/{name}", get(show_script))
            .route("/_fake/scripts/{name}/serve/{*path}", get(serve_asset))
            .route("/_fake/scripts/{name}/serve/", get(serve_root))
            .fallback(unknown)
            .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
            .with_state(state.clone());
        let url = crate::harness::serve(app);
        FakeCloudflare {
            url,
            account_id: state.account_id.clone(),
            namespace: state.namespace.clone(),
            api_token: state.api_token.clone(),
            state,
        }
    }

    /// The value for `CLOUDFLARE_API_BASE_URL`.
    pub fn api_base(&self) -> String {
        format!("{}/client/v4", self.url)
    }

    /// Answers the next request to `route` with `failure` (before it has any effect).
    pub fn fail_once(&self, route: Route, failure: Failure) {
        self.lock().once.push((route, failure));
    }

    /// Answers every request to `route` with `failure` until [`Self::heal`].
    pub fn fail_always(&self, route: Route, failure: Failure) {
        self.lock().always.push((route, failure));
    }

    /// Drops every injected failure.
    pub fn heal(&self) {
        let mut s = self.lock();
        s.once.clear();
        s.always.clear();
    }

    /// How many files an upload bucket holds at most.
    pub fn set_bucket_size(&self, n: usize) {
        self.lock().bucket_size = n.max(1);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Calls to `route` (injected failures included).
    pub fn calls_to(&self, route: Route) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.route == Some(route))
            .count()
    }

    pub fn script(&self, name: &str) -> Option<DeployedScript> {
        self.lock().scripts.get(name).cloned()
    }

    pub fn script_names(&self) -> Vec<String> {
        self.lock().scripts.keys().cloned().collect()
    }

    /// Distinct files uploaded so far.
    pub fn stored_files(&self) -> usize {
        self.lock().blobs.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.state.fake.lock().unwrap()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let pid = std::process::id() as u64;
    (pid << 32) | NEXT.fetch_add(1, Ordering::Relaxed)
}

fn hash_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_hash(h: &str) -> bool {
    h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn ok(status: StatusCode, result: Value) -> Response {
    (
        status,
        Json(json!({"success": true, "errors": [], "messages": [], "result": result})),
    )
        .into_response()
}

fn err(status: u16, code: u64, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(
            json!({"success": false, "errors": [{"code": code, "message": message}],
                    "messages": [], "result": null}),
        ),
    )
        .into_response()
}

fn bad(message: impl AsRef<str>) -> Response {
    err(400, 10021, message.as_ref())
}

fn unauthorized() -> Response {
    err(403, 10000, "Authentication error")
}

fn record(
    s: &mut Fake,
    method: &Method,
    uri: &Uri,
    route: Option<Route>,
    resp: &Response,
    injected: bool,
) {
    s.calls.push(Call {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        route,
        status: resp.status().as_u16(),
        injected,
    });
}

/// The injected failure for `route`, if any (a once-failure is used up). `classes`: the
/// classes the request's migrations create, for 10074.
fn injected(s: &mut Fake, route: Route, classes: &[String]) -> Option<Response> {
    let failure = match s.once.iter().position(|(r, _)| *r == route) {
        Some(i) => s.once.remove(i).1,
        None => s.always.iter().find(|(r, _)| *r == route)?.1.clone(),
    };
    Some(match failure {
        Failure::DurableObjectExists => err(
            400,
            10074,
            &format!(
                "Cannot apply new-sqlite-class migration to class '{}' that already exists",
                classes.first().map(String::as_str).unwrap_or("Unknown")
            ),
        ),
        Failure::Status(status) => err(status, 10013, "An unknown error has occurred"),
        Failure::RateLimited { retry_after_secs } => {
            let mut r = err(
                429,
                971,
                "Please wait and consider throttling your request speed",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                retry_after_secs.to_string().parse().unwrap(),
            );
            r
        }
        Failure::Refuse {
            status,
            code,
            message,
        } => err(status, code, &message),
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The checks every token-authenticated call shares: token, account, namespace.
fn check_api(
    fake: &Inner,
    headers: &HeaderMap,
    account: &str,
    ns: Option<&str>,
) -> Option<Response> {
    if bearer(headers) != Some(fake.api_token.as_str()) || account != fake.account_id {
        return Some(unauthorized());
    }
    if ns.is_some_and(|n| n != fake.namespace) {
        return Some(err(404, 100119, "Dispatch namespace not found"));
    }
    None
}

async fn session(
    State(state): State<Shared>,
    Path((account, ns, name)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.fake.lock().unwrap();
    let resp = session_answer(&state, &mut s, &account, &ns, &name, &headers, &body);
    let injected = resp.1;
    record(
        &mut s,
        &method,
        &uri,
        Some(Route::Session),
        &resp.0,
        injected,
    );
    resp.0
}

fn session_answer(
    fake: &Inner,
    s: &mut Fake,
    account: &str,
    ns: &str,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response, bool) {
    if let Some(r) = check_api(fake, headers, account, Some(ns)) {
        return (r, false);
    }
    if let Some(r) = injected(s, Route::Session, &[]) {
        return (r, true);
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (bad("the body is not JSON"), false);
    };
    let Some(entries) = v.get("manifest").and_then(Value::as_object) else {
        return (bad("manifest: an object of paths is required"), false);
    };
    let mut manifest = BTreeMap::new();
    for (path, e) in entries {
        let hash = e.get("hash").and_then(Value::as_str).unwrap_or("");
        let size = e.get("size").and_then(Value::as_u64);
        if !path.starts_with('/') || !is_hash(hash) {
            return (bad(format!("manifest: bad entry for {path}")), false);
        }
        let Some(size) = size.filter(|n| *n <= MAX_ASSET_BYTES) else {
            return (bad(format!("manifest: bad size for {path}")), false);
        };
        manifest.insert(path.clone(), (hash.to_string(), size));
    }
    let pending: BTreeSet<String> = manifest
        .values()
        .map(|(h, _)| h.clone())
        .filter(|h| !s.blobs.contains_key(h))
        .collect();
    s.next += 1;
    let jwt = format!("fake-upload-session-{}-{}", s.next, rand_suffix());
    let all: Vec<String> = pending.iter().cloned().collect();
    let buckets: Vec<Vec<String>> = all.chunks(s.bucket_size).map(|c| c.to_vec()).collect();
    if pending.is_empty() {
        s.completions
            .insert(jwt.clone(), (name.to_string(), manifest.clone()));
    }
    s.sessions.insert(
        jwt.clone(),
        Session {
            script: name.to_string(),
            manifest,
            pending,
        },
    );
    (
        ok(StatusCode::OK, json!({"jwt": jwt, "buckets": buckets})),
        false,
    )
}

async fn upload(
    State(state): State<Shared>,
    Path(account): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let parts = match multipart {
        Ok(m) => read_parts(m).await,
        Err(e) => Err(format!("not a multipart body: {e}")),
    };
    let mut s = state.fake.lock().unwrap();
    let (resp, injected) = upload_answer(&state, &mut s, &account, &q, &headers, parts);
    record(&mut s, &method, &uri, Some(Route::Upload), &resp, injected);
    resp
}

struct FormPart {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

async fn read_parts(mut m: Multipart) -> Result<Vec<FormPart>, String> {
    let mut out = Vec::new();
    loop {
        match m.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or("").to_string();
                let filename = f.file_name().map(str::to_string);
                let content_type = f.content_type().map(str::to_string);
                let bytes = f.bytes().await.map_err(|e| e.to_string())?.to_vec();
                out.push(FormPart {
                    name,
                    filename,
                    content_type,
                    bytes,
                });
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(format!("malformed multipart body: {e}")),
        }
    }
}

fn upload_answer(
    fake: &Inner,
    s: &mut Fake,
    account: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    parts: Result<Vec<FormPart>, String>,
) -> (Response, bool) {
    if account != fake.account_id {
        return (unauthorized(), false);
    }
    let Some(jwt) = bearer(headers).map(str::to_string) else {
        return (unauthorized(), false);
    };
    if !s.sessions.contains_key(&jwt) {
        return (
            err(401, 10000, "Authentication error: invalid upload token"),
            false,
        );
    }
    if let Some(r) = injected(s, Route::Upload, &[]) {
        return (r, true);
    }
    if q.get("base64").map(String::as_str) != Some("true") {
        return (bad("base64=true is required"), false);
    }
    let parts = match parts {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => return (bad("no files in the upload"), false),
        Err(e) => return (bad(e), false),
    };
    let session = &s.sessions[&jwt];
    let mut accepted = Vec::new();
    for p in parts {
        let size = session
            .manifest
            .values()
            .find(|(h, _)| *h == p.name)
            .map(|(_, n)| *n);
        let Some(size) = size else {
            return (
                bad(format!("{} is not in this upload session", p.name)),
                false,
            );
        };
        let Some(content_type) = p.content_type.filter(|t| !t.is_empty()) else {
            return (
                bad(format!("{}: the part has no content type", p.name)),
                false,
            );
        };
        if p.filename.as_deref().is_some_and(|f| f != p.name) {
            return (
                bad(format!("{}: the file name is not its hash", p.name)),
                false,
            );
        }
        let Ok(bytes) = B64.decode(&p.bytes) else {
            return (bad(format!("{}: the content is not base64", p.name)), false);
        };
        if bytes.len() as u64 != size || hash_of(&bytes) != p.name {
            return (
                bad(format!(
                    "{}: the content does not match the manifest's hash and size",
                    p.name
                )),
                false,
            );
        }
        accepted.push((p.name, content_type, bytes));
    }
    for (hash, content_type, bytes) in accepted {
        s.blobs.insert(hash.clone(), (content_type, bytes));
        s.sessions.get_mut(&jwt).unwrap().pending.remove(&hash);
    }
    let session = &s.sessions[&jwt];
    if !session.pending.is_empty() {
        return (ok(StatusCode::ACCEPTED, json!({})), false);
    }
    s.next += 1;
    let done = format!("fake-upload-complete-{}-{}", s.next, rand_suffix());
    let entry = (session.script.clone(), session.manifest.clone());
    s.completions.insert(done.clone(), entry);
    (ok(StatusCode::CREATED, json!({"jwt": done})), false)
}

async fn put_script(
    State(state): State<Shared>,
    Path((account, ns, name)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let parts = match multipart {
        Ok(m) => read_parts(m).await,
        Err(e) => Err(format!("not a multipart body: {e}")),
    };
    let mut s = state.fake.lock().unwrap();
    let (resp, injected) = script_answer(&state, &mut s, &account, &ns, &name, &headers, parts);
    record(&mut s, &method, &uri, Some(Route::Script), &resp, injected);
    resp
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect()
}

fn script_answer(
    fake: &Inner,
    s: &mut Fake,
    account: &str,
    ns: &str,
    name: &str,
    headers: &HeaderMap,
    parts: Result<Vec<FormPart>, String>,
) -> (Response, bool) {
    if let Some(r) = check_api(fake, headers, account, Some(ns)) {
        return (r, false);
    }
    let parts = match parts {
        Ok(p) => p,
        Err(e) => return (bad(e), false),
    };
    let Some(meta_part) = parts.iter().find(|p| p.name == "metadata") else {
        return (bad("the upload has no metadata part"), false);
    };
    let Ok(meta) = serde_json::from_slice::<Value>(&meta_part.bytes) else {
        return (bad("metadata is not JSON"), false);
    };
    let migrations = meta.get("migrations");
    let mut new_classes = strings(migrations.and_then(|m| m.get("new_sqlite_classes")));
    new_classes.extend(strings(migrations.and_then(|m| m.get("new_classes"))));
    if let Some(r) = injected(s, Route::Script, &new_classes) {
        return (r, true);
    }

    let Some(main) = meta.get("main_module").and_then(Value::as_str) else {
        return (bad("metadata.main_module is required"), false);
    };
    let date = meta
        .get("compatibility_date")
        .and_then(Value::as_str)
        .unwrap_or("");
    if chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err() {
        return (bad("metadata.compatibility_date must be YYYY-MM-DD"), false);
    }
    let mut modules = BTreeMap::new();
    for p in parts.iter().filter(|p| p.name != "metadata") {
        let ct = p.content_type.clone().unwrap_or_default();
        if !MODULE_TYPES.contains(&ct.as_str()) {
            return (
                bad(format!("{}: unsupported module type `{ct}`", p.name)),
                false,
            );
        }
        if modules.contains_key(&p.name) {
            return (bad(format!("{}: the module appears twice", p.name)), false);
        }
        modules.insert(
            p.name.clone(),
            DeployedModule {
                content_type: ct,
                content: p.bytes.clone(),
            },
        );
    }
    match modules.get(main) {
        Some(m) if m.content_type.ends_with("+module") => {}
        Some(_) => return (bad("the main module must be an ES module"), false),
        None => {
            return (
                err(
                    400,
                    10021,
                    &format!("No such module \"{main}\" (main_module is not among the parts)"),
                ),
                false,
            )
        }
    }

    // Assets: the completion jwt of this script's upload, a known config.
    let mut assets = BTreeMap::new();
    if let Some(a) = meta.get("assets") {
        let jwt = a.get("jwt").and_then(Value::as_str).unwrap_or("");
        let Some((script, manifest)) = s.completions.get(jwt) else {
            return (bad("assets.jwt is not a completion token"), false);
        };
        if script != name {
            return (bad("assets.jwt belongs to another script"), false);
        }
        let config = a.get("config").cloned().unwrap_or(json!({}));
        let nf = config.get("not_found_handling").and_then(Value::as_str);
        if !matches!(
            nf,
            None | Some("single-page-application" | "404-page" | "none")
        ) {
            return (bad("assets.config.not_found_handling is not known"), false);
        }
        if config
            .get("run_worker_first")
            .is_some_and(|v| !v.is_boolean() && !v.is_array())
        {
            return (
                bad("assets.config.run_worker_first must be a boolean or a list"),
                false,
            );
        }
        for (path, (hash, _)) in manifest {
            let (content_type, bytes) = s.blobs[hash].clone();
            assets.insert(
                path.clone(),
                DeployedAsset {
                    hash: hash.clone(),
                    content_type,
                    bytes,
                },
            );
        }
    }

    // Bindings and Durable Object migrations.
    let existing = s
        .scripts
        .get(name)
        .map(|d| d.durable_objects.clone())
        .unwrap_or_default();
    if let Some(class) = new_classes.iter().find(|c| existing.contains(*c)) {
        return (
            err(
                400,
                10074,
                &format!("Cannot apply new-sqlite-class migration to class '{class}' that already exists"),
            ),
            false,
        );
    }
    let mut classes = existing;
    classes.extend(new_classes);
    let Some(bindings) = meta.get("bindings").and_then(Value::as_array) else {
        return (bad("metadata.bindings must be a list"), false);
    };
    for b in bindings {
        match b.get("type").and_then(Value::as_str) {
            Some("assets") if meta.get("assets").is_none() => {
                return (bad("an assets binding needs metadata.assets"), false)
            }
            Some("assets") => {}
            Some("durable_object_namespace") => {
                let class = b.get("class_name").and_then(Value::as_str).unwrap_or("");
                if !classes.contains(class) {
                    return (
                        err(400, 10061, &format!("Cannot create binding for class '{class}' because it is not currently configured to implement Durable Objects.")),
                        false,
                    );
                }
            }
            other => return (bad(format!("unsupported binding type {other:?}")), false),
        }
        if b.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            return (bad("every binding needs a name"), false);
        }
    }

    s.next += 1;
    let etag = format!("{:x}", s.next);
    s.scripts.insert(
        name.to_string(),
        DeployedScript {
            metadata: meta,
            modules,
            assets,
            durable_objects: classes,
            etag: etag.clone(),
        },
    );
    (
        ok(
            StatusCode::OK,
            json!({"id": name, "etag": etag, "handlers": ["fetch"], "has_assets": true}),
        ),
        false,
    )
}

async fn delete_script(
    State(state): State<Shared>,
    Path((account, ns, name)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut s = state.fake.lock().unwrap();
    let (resp, injected) = match check_api(&state, &headers, &account, Some(&ns)) {
        Some(r) => (r, false),
        None => match injected(&mut s, Route::Delete, &[]) {
            Some(r) => (r, true),
            None if s.scripts.remove(&name).is_some() => (ok(StatusCode::OK, Value::Null), false),
            None => (
                err(404, 10007, "This Worker does not exist on your account."),
                false,
            ),
        },
    };
    record(&mut s, &method, &uri, Some(Route::Delete), &resp, injected);
    resp
}

async fn show_script(State(state): State<Shared>, Path(name): Path<String>) -> Response {
    let s = state.fake.lock().unwrap();
    match s.scripts.get(&name) {
        None => (StatusCode::NOT_FOUND, "no such script").into_response(),
        Some(d) => Json(json!({
            "metadata": d.metadata,
            "modules": d.modules.keys().collect::<Vec<_>>(),
            "assets": d.assets.iter().map(|(p, a)| json!({"path": p, "hash": a.hash, "contentType": a.content_type})).collect::<Vec<_>>(),
            "durableObjects": d.durable_objects,
        }))
        .into_response(),
    }
}

async fn serve_root(state: State<Shared>, Path(name): Path<String>) -> Response {
    serve(state, name, String::new())
}

async fn serve_asset(state: State<Shared>, Path((name, path)): Path<(String, String)>) -> Response {
    serve(state, name, path)
}

/// An asset of a deployed script as its assets binding would serve it: exact path, then
/// `path/index.html`, then (single-page application) `/index.html`.
fn serve(State(state): State<Shared>, name: String, path: String) -> Response {
    let s = state.fake.lock().unwrap();
    let Some(d) = s.scripts.get(&name) else {
        return (StatusCode::NOT_FOUND, "no such script").into_response();
    };
    let path = format!("/{path}");
    let index = format!("{}/index.html", path.trim_end_matches('/'));
    let spa = d
        .metadata
        .pointer("/assets/config/not_found_handling")
        .and_then(Value::as_str)
        == Some("single-page-application");
    let found = d
        .assets
        .get(&path)
        .or_else(|| d.assets.get(&index))
        .or_else(|| spa.then(|| d.assets.get("/index.html")).flatten());
    match found {
        Some(a) => (
            [(header::CONTENT_TYPE, a.content_type.clone())],
            a.bytes.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn unknown(State(state): State<Shared>, method: Method, uri: Uri) -> Response {
    let resp = err(404, 7003, "Could not route to the requested path");
    let mut s = state.fake.lock().unwrap();
    record(&mut s, &method, &uri, None, &resp, false);
    resp
}

/// The publisher's port over reqwest, for host-side tests: sleeps are recorded, not slept (a
/// test never waits on a timer).
pub struct ReqwestApi {
    client: reqwest::Client,
    pub sleeps: Mutex<Vec<u64>>,
}

impl ReqwestApi {
    pub fn new() -> Self {
        ReqwestApi {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            sleeps: Mutex::default(),
        }
    }
    pub fn sleeps(&self) -> Vec<u64> {
        self.sleeps.lock().unwrap().clone()
    }
}

impl CloudflareApi for ReqwestApi {
    async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, String> {
        let method = reqwest::Method::from_bytes(req.method.as_str().as_bytes()).unwrap();
        let mut r = self.client.request(method, &req.url);
        for (k, v) in &req.headers {
            r = r.header(k, v);
        }
        let resp = r
            .body(req.body.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
        Ok(ApiResponse {
            status,
            headers,
            body,
        })
    }
    async fn sleep(&self, ms: u64) {
        self.sleeps.lock().unwrap().push(ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use byte_platform::domain::deploy::artifact::{Asset, Bundle, Module};
    use byte_platform::domain::deploy::cloudflare::{
        publish, publish_with, script_name, unpublish, DispatchTarget, PublishOptions, PublishStep,
        ASSETS_MAIN_MODULE, MAX_ATTEMPTS,
    };

    fn target(cf: &FakeCloudflare) -> DispatchTarget {
        DispatchTarget::new(
            Some(&cf.api_base()),
            &cf.account_id,
            &cf.namespace,
            &cf.api_token,
            "2026-05-01",
        )
        .unwrap()
    }

    fn asset(path: &str, content_type: &str, bytes: &[u8]) -> Asset {
        Asset {
            path: path.into(),
            content_type: content_type.into(),
            bytes: bytes.to_vec(),
        }
    }

    /// What `npm run build` of the starter leaves, give or take.
    fn vite_build(heading: &str) -> Bundle {
        let png: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        Bundle {
            assets: vec![
                asset(
                    "/index.html",
                    "text/html; charset=utf-8",
                    b"<!doctype html><div id=root></div><script type=module src=/assets/index-a1.js></script>",
                ),
                asset(
                    "/assets/index-a1.js",
                    "text/javascript; charset=utf-8",
                    format!("document.getElementById('root').textContent = {heading:?};").as_bytes(),
                ),
                asset("/assets/index-b2.css", "text/css; charset=utf-8", b"body{margin:0}"),
                asset("/logo.png", "image/png", &png),
                asset("/favicon.ico", "image/x-icon", &png[..100]),
                // A copy: same content, same hash, uploaded once.
                asset("/404.html", "text/html; charset=utf-8",
                    b"<!doctype html><div id=root></div><script type=module src=/assets/index-a1.js></script>"),
            ],
            ..Bundle::default()
        }
    }

    async fn get(url: String) -> (u16, String, Vec<u8>) {
        let r = reqwest::get(url).await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ct, r.bytes().await.unwrap().to_vec())
    }

    #[tokio::test]
    async fn exactly_what_was_built_is_uploaded_and_served() {
        let cf = FakeCloudflare::start();
        let api = ReqwestApi::new();
        let name = script_name("app_0123456789abcdef0123456789abcdef");
        let bundle = vite_build("Hello");
        let published = publish(&api, &target(&cf), &name, &bundle).await.unwrap();
        // Five distinct files in buckets of three: two uploads.
        assert_eq!(published.uploaded, 5);
        let routes: Vec<_> = cf.calls().iter().map(|c| (c.route, c.status)).collect();
        assert_eq!(
            routes,
            [
                (Some(Route::Session), 200),
                (Some(Route::Upload), 202),
                (Some(Route::Upload), 201),
                (Some(Route::Script), 200),
            ]
        );
        assert!(api.sleeps().is_empty());

        let d = cf.script(&name).unwrap();
        for a in &bundle.assets {
            let got = &d.assets[&a.path];
            assert_eq!(
                (&got.content_type, &got.bytes),
                (&a.content_type, &a.bytes),
                "{}",
                a.path
            );
        }
        assert_eq!(d.assets.len(), bundle.assets.len());
        assert_eq!(d.metadata["main_module"], ASSETS_MAIN_MODULE);
        assert_eq!(d.metadata["compatibility_date"], "2026-05-01");
        assert_eq!(
            d.metadata["assets"]["config"],
            json!({"not_found_handling": "single-page-application"})
        );
        assert_eq!(
            d.metadata["bindings"],
            json!([{"type": "assets", "name": "ASSETS"}])
        );
        assert_eq!(d.modules.keys().collect::<Vec<_>>(), [ASSETS_MAIN_MODULE]);
        assert_eq!(
            d.modules[ASSETS_MAIN_MODULE].content_type,
            "application/javascript+module"
        );

        // Served as the dispatcher would: types, and the SPA fallback for a deep link.
        let base = format!("{}/_fake/scripts/{name}/serve", cf.url);
        let (status, ct, body) = get(format!("{base}/assets/index-a1.js")).await;
        assert_eq!(
            (status, ct.as_str()),
            (200, "text/javascript; charset=utf-8")
        );
        assert!(String::from_utf8(body).unwrap().contains("\"Hello\""));
        let (status, ct, body) = get(format!("{base}/todos/42")).await;
        assert_eq!((status, ct.as_str()), (200, "text/html; charset=utf-8"));
        assert_eq!(body, bundle.assets[0].bytes);
        let shown: Value = reqwest::get(format!("{}/_fake/scripts/{name}", cf.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(shown["modules"], json!([ASSETS_MAIN_MODULE]));
    }

    #[tokio::test]
    async fn a_republish_uploads_only_what_changed() {
        let cf = FakeCloudflare::start();
        let api = ReqwestApi::new();
        let t = target(&cf);
        let name = script_name("app_republish");
        publish(&api, &t, &name, &vite_build("One")).await.unwrap();
        let before = cf.calls().len();

        // Unchanged: the session asks for nothing; its jwt completes the assets.
        let again = publish(&api, &t, &name, &vite_build("One")).await.unwrap();
        assert_eq!(again.uploaded, 0);
        let routes: Vec<_> = cf.calls()[before..].iter().map(|c| c.route).collect();
        assert_eq!(routes, [Some(Route::Session), Some(Route::Script)]);

        // One file changed: only it goes up, and the new content is what is deployed.
        let before = cf.calls().len();
        let changed = publish(&api, &t, &name, &vite_build("Two")).await.unwrap();
        assert_eq!(changed.uploaded, 1);
        assert_eq!(cf.calls_to(Route::Upload), 2 + 1);
        assert_eq!(cf.calls().len() - before, 3);
        let js = &cf.script(&name).unwrap().assets["/assets/index-a1.js"].bytes;
        assert!(String::from_utf8_lossy(js).contains("\"Two\""));
        assert_eq!(cf.stored_files(), 6);
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_only_they() {
        let cf = FakeCloudflare::start();
        cf.set_bucket_size(10);
        let api = ReqwestApi::new();
        let name = script_name("app_retry");
        cf.fail_once(Route::Session, Failure::Status(503));
        cf.fail_once(
            Route::Upload,
            Failure::RateLimited {
                retry_after_secs: 2,
            },
        );
        cf.fail_once(Route::Script, Failure::Status(500));
        publish(&api, &target(&cf), &name, &vite_build("Hi"))
            .await
            .unwrap();
        let seen: Vec<_> = cf
            .calls()
            .iter()
            .map(|c| (c.route.unwrap(), c.status, c.injected))
            .collect();
        assert_eq!(
            seen,
            [
                (Route::Session, 503, true),
                (Route::Session, 200, false),
                (Route::Upload, 429, true),
                (Route::Upload, 201, false),
                (Route::Script, 500, true),
                (Route::Script, 200, false),
            ]
        );
        assert_eq!(api.sleeps(), [500, 2000, 500]);
        assert!(cf.script(&name).is_some());
    }

    fn with_counter() -> (Bundle, PublishOptions) {
        let mut bundle = vite_build("DO");
        bundle.modules = vec![Module {
            name: "_worker.js".into(),
            content: "export class Counter {}\nexport default { fetch(r, env) { return env.ASSETS.fetch(r) } }".into(),
        }];
        bundle.main_module = Some("_worker.js".into());
        let options = PublishOptions {
            durable_objects: vec!["Counter".into()],
            run_worker_first: Some(false),
        };
        (bundle, options)
    }

    #[tokio::test]
    async fn an_existing_durable_object_class_is_not_created_twice() {
        let cf = FakeCloudflare::start();
        let api = ReqwestApi::new();
        let t = target(&cf);
        let name = script_name("app_do");
        let (bundle, options) = with_counter();
        publish_with(&api, &t, &name, &bundle, &options)
            .await
            .unwrap();
        let d = cf.script(&name).unwrap();
        assert_eq!(
            d.metadata["migrations"],
            json!({"new_sqlite_classes": ["Counter"]})
        );
        assert_eq!(
            d.modules["_worker.js"].content,
            bundle.modules[0].content.as_bytes()
        );
        assert_eq!(d.metadata["assets"]["config"]["run_worker_first"], false);

        // The second publish meets the class: 10074, then the same upload without the migration.
        publish_with(&api, &t, &name, &bundle, &options)
            .await
            .unwrap();
        let scripts: Vec<_> = cf
            .calls()
            .iter()
            .filter(|c| c.route == Some(Route::Script))
            .map(|c| c.status)
            .collect();
        assert_eq!(scripts, [200, 400, 200]);
        let d = cf.script(&name).unwrap();
        assert!(d.metadata.get("migrations").is_none());
        assert_eq!(d.durable_objects, BTreeSet::from(["Counter".to_string()]));

        // An injected one is answered the same way; nothing is slept for either.
        cf.fail_once(Route::Script, Failure::DurableObjectExists);
        publish_with(&api, &t, &name, &bundle, &options)
            .await
            .unwrap();
        assert_eq!(cf.calls_to(Route::Script), 5);
        assert!(cf.calls().last().is_some_and(|c| c.status == 200));
        assert!(api.sleeps().is_empty());
    }

    #[tokio::test]
    async fn a_permanent_refusal_is_final_and_deploys_nothing() {
        let cf = FakeCloudflare::start();
        let api = ReqwestApi::new();
        let t = target(&cf);
        let name = script_name("app_refused");
        let refused = Failure::Refuse {
            status: 403,
            code: 10000,
            message: "Authentication error".into(),
        };
        cf.fail_always(Route::Session, refused.clone());
        let err = publish(&api, &t, &name, &vite_build("X"))
            .await
            .unwrap_err();
        assert_eq!(
            (err.step, err.permanent),
            (PublishStep::AssetsSession, true)
        );
        assert!(
            err.message.contains("Authentication error [code: 10000]"),
            "{err}"
        );
        assert_eq!(cf.calls().len(), 1);
        assert!(cf.script_names().is_empty() && cf.stored_files() == 0);

        // A refused script upload leaves the previous deployment serving as it was.
        cf.heal();
        publish(&api, &t, &name, &vite_build("Old")).await.unwrap();
        let live = cf.script(&name).unwrap();
        cf.fail_always(Route::Script, refused);
        let err = publish(&api, &t, &name, &vite_build("New"))
            .await
            .unwrap_err();
        assert_eq!(err.step, PublishStep::ScriptUpload);
        assert_eq!(cf.script(&name).unwrap(), live);
        assert!(api.sleeps().is_empty());

        // A wrong token is refused by the fake itself, and never quoted back.
        cf.heal();
        let wrong = DispatchTarget {
            api_token: "not-the-token".into(),
            ..t.clone()
        };
        let err = publish(&api, &wrong, &name, &vite_build("X"))
            .await
            .unwrap_err();
        assert_eq!(err.status, Some(403));
        assert!(!format!("{err:?}").contains("not-the-token"));
    }

    #[tokio::test]
    async fn an_outage_outlasting_the_retries_deploys_nothing() {
        let cf = FakeCloudflare::start();
        let api = ReqwestApi::new();
        let name = script_name("app_outage");
        cf.fail_always(Route::Upload, Failure::Status(502));
        let err = publish(&api, &target(&cf), &name, &vite_build("X"))
            .await
            .unwrap_err();
        assert_eq!(
            (err.step, err.permanent),
            (PublishStep::AssetsUpload, false)
        );
        assert_eq!(cf.calls_to(Route::Upload), MAX_ATTEMPTS as usize);
        assert_eq!(cf.calls_to(Route::Script), 0);
        assert!(cf.script(&name).is_none());
    }

    #[tokio::test]
    async fn unpublish_deletes_and_a_missing_script_is_done() {
        let cf = FakeCloudflare::start();
        let api = ReqwestApi::new();
        let t = target(&cf);
        let name = script_name("app_gone");
        publish(&api, &t, &name, &vite_build("X")).await.unwrap();
        cf.fail_once(Route::Delete, Failure::Status(503));
        unpublish(&api, &t, &name).await.unwrap();
        assert!(cf.script(&name).is_none());
        unpublish(&api, &t, &name).await.unwrap();
        let deletes: Vec<_> = cf
            .calls()
            .iter()
            .filter(|c| c.route == Some(Route::Delete))
            .map(|c| (c.method.clone(), c.path.ends_with("?force=true"), c.status))
            .collect();
        assert_eq!(
            deletes,
            [
                ("DELETE".to_string(), true, 503),
                ("DELETE".into(), true, 200),
                ("DELETE".into(), true, 404)
            ]
        );
        let (status, _, _) = get(format!("{}/_fake/scripts/{name}/serve/", cf.url)).await;
        assert_eq!(status, 404);
    }

    /// The fake refuses what the real API refuses: it is a check, not a mirror.
    #[tokio::test]
    async fn the_fake_checks_the_wire_format() {
        let cf = FakeCloudflare::start();
        let http = reqwest::Client::new();
        let api = cf.api_base();
        let a = &cf.account_id;
        let session_url = format!(
            "{api}/accounts/{a}/workers/dispatch/namespaces/{}/scripts/s1/assets-upload-session",
            cf.namespace
        );
        let bearer = format!("Bearer {}", cf.api_token);
        let post_json = |url: String, auth: String, body: Value| {
            http.post(url)
                .header("authorization", auth)
                .json(&body)
                .send()
        };
        let hash = hash_of(b"hello");

        // Manifest: hashes must be 32 hex, sizes present; the namespace and token must match.
        let r = post_json(
            session_url.clone(),
            bearer.clone(),
            json!({"manifest": {"/a": {"hash": "xyz", "size": 1}}}),
        );
        assert_eq!(r.await.unwrap().status(), 400);
        let r = post_json(
            session_url.replace("byte-apps", "other"),
            bearer.clone(),
            json!({"manifest": {}}),
        );
        assert_eq!(r.await.unwrap().status(), 404);
        let r = post_json(
            session_url.clone(),
            "Bearer nope".into(),
            json!({"manifest": {}}),
        );
        assert_eq!(r.await.unwrap().status(), 403);
        let r = post_json(
            session_url.clone(),
            bearer.clone(),
            json!({"manifest": {"/a.txt": {"hash": hash, "size": 5}}}),
        );
        let session: Value = r.await.unwrap().json().await.unwrap();
        let jwt = session["result"]["jwt"].as_str().unwrap().to_string();
        assert_eq!(session["result"]["buckets"], json!([[hash]]));

        // Bucket upload: the session jwt, base64 of content matching hash and size.
        let upload = |auth: &str, part_name: &str, content: &str| {
            let form = format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{part_name}\"; filename=\"{part_name}\"\r\nContent-Type: text/plain\r\n\r\n{content}\r\n--XyZ--\r\n"
            );
            http.post(format!(
                "{api}/accounts/{a}/workers/assets/upload?base64=true"
            ))
            .header("authorization", format!("Bearer {auth}"))
            .header("content-type", "multipart/form-data; boundary=XyZ")
            .body(form)
            .send()
        };
        assert_eq!(
            upload(&cf.api_token, &hash, &B64.encode("hello"))
                .await
                .unwrap()
                .status(),
            401
        );
        assert_eq!(
            upload(&jwt, &hash, &B64.encode("hellO"))
                .await
                .unwrap()
                .status(),
            400
        );
        assert_eq!(upload(&jwt, &hash, "hello").await.unwrap().status(), 400);
        assert_eq!(
            upload(&jwt, &hash_of(b"x"), &B64.encode("x"))
                .await
                .unwrap()
                .status(),
            400
        );
        let done: Value = upload(&jwt, &hash, &B64.encode("hello"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let completion = done["result"]["jwt"].as_str().unwrap().to_string();

        // Script: the metadata names a main module among the parts; the assets jwt completes.
        let put = |meta: Value, module: Option<(&str, &str)>| {
            let mut form = format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{meta}\r\n"
            );
            if let Some((name, ct)) = module {
                form.push_str(&format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\nexport default {{}}\r\n"
                ));
            }
            form.push_str("--XyZ--\r\n");
            http.put(session_url.trim_end_matches("/assets-upload-session"))
                .header("authorization", bearer.clone())
                .header("content-type", "multipart/form-data; boundary=XyZ")
                .body(form)
                .send()
        };
        let meta = |jwt: &str| {
            json!({"main_module": "w.js", "compatibility_date": "2026-05-01",
                   "bindings": [{"type": "assets", "name": "ASSETS"}],
                   "assets": {"jwt": jwt, "config": {"not_found_handling": "single-page-application"}}})
        };
        let js = Some(("w.js", "application/javascript+module"));
        assert_eq!(put(meta(&completion), None).await.unwrap().status(), 400);
        assert_eq!(
            put(meta(&completion), Some(("w.js", "text/html")))
                .await
                .unwrap()
                .status(),
            400
        );
        assert_eq!(put(meta(&jwt), js).await.unwrap().status(), 400);
        assert!(cf.script("s1").is_none());
        assert_eq!(put(meta(&completion), js).await.unwrap().status(), 200);
        assert_eq!(cf.script("s1").unwrap().assets["/a.txt"].bytes, b"hello");
    }
}
