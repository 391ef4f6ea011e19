//! A fake GitHub on loopback speaking the real wire format of the REST calls the platform makes,
//! holding real git objects (blobs, nested trees, commits with their real SHA-1 ids) so tests
//! read back exactly what was pushed.
//!
//! - OAuth for the exporter app (`/login/oauth/authorize`, `/login/oauth/access_token`): the
//!   authorization-code flow with PKCE; the client is `exporter-client`/`exporter-secret`. A test
//!   plays the person at the consent screen by calling `/authorize` itself with `user=<login>`
//!   and, optionally, `grant=<scopes>` (what the person grants; default: the scopes asked for);
//!   a browser without `user` gets the consent screen, a form asking for the login.
//! - REST under `/api`: `GET /user`; `POST /user/repos` (`auto_init` gives one initial commit
//!   with a README; without it the repository is empty and git data calls answer 409; a name the
//!   account has is 422); `GET /repos/{o}/{r}`; `GET …/git/ref/heads/{b}`, `POST …/git/refs`
//!   (422 when it exists), `PATCH …/git/refs/heads/{b}` (422 "Update is not a fast forward"
//!   unless the new commit descends from the current one, or `force`); `POST|GET …/git/blobs`;
//!   `POST …/git/trees` (`base_tree`, nested paths, `sha: null` deletes, `content` entries) and
//!   `GET …/git/trees/{sha}?recursive=1`; `POST|GET …/git/commits`; `POST|GET …/pulls` (422 on a
//!   second open pull request for the same head and base).
//! - Authorization: no or an unknown token is 401 "Bad credentials"; a token without `repo` (or
//!   `public_repo` for public repositories) gets 403 with `X-Accepted-OAuth-Scopes`; another
//!   account's repository is 404. Every answer carries `X-OAuth-Scopes`.
//!
//! Blob contents are base64 with a line break every 60 characters, as GitHub sends them.
//! [`seed_repo`] makes a repository as if pushed on GitHub (for imports).
//!
//! Every API request is recorded (method, path, body) for tests to inspect ([`requests`]).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

pub const CLIENT_ID: &str = "exporter-client";
pub const CLIENT_SECRET: &str = "exporter-secret";

#[derive(Clone, Debug)]
enum Object {
    Blob(Vec<u8>),
    /// Entries sorted by name: (name, mode, sha).
    Tree(Vec<(String, String, String)>),
    Commit {
        tree: String,
        parents: Vec<String>,
        message: String,
    },
}

#[derive(Default)]
struct Repo {
    private: bool,
    description: Option<String>,
    default_branch: String,
    refs: BTreeMap<String, String>,
    pulls: Vec<Value>,
}

#[derive(Clone)]
struct Grant {
    login: String,
    scopes: String,
    redirect_uri: String,
    challenge: String,
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
struct Fake {
    base: String,
    /// token → (login, scopes)
    tokens: HashMap<String, (String, Vec<String>)>,
    codes: HashMap<String, Grant>,
    /// (owner, name) → repository
    repos: BTreeMap<(String, String), Repo>,
    /// Git objects by sha, shared by all repositories (content-addressed, as in git).
    objects: HashMap<String, Object>,
    requests: Vec<Recorded>,
    next: u64,
}

type Shared = Arc<Mutex<Fake>>;

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(Shared::default)
}

/// The fake's base URL (the REST API is `…/api`, OAuth `…/login/oauth/…`).
pub fn url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let base =
            crate::harness::serve(Router::new().fallback(handle).with_state(shared().clone()));
        shared().lock().unwrap().base = base.clone();
        base
    })
    .clone()
}

/// The platform's variables that point its exporter app at this fake (the sealing key and the
/// webhook secret of `tests/it/github.rs` included).
pub fn platform_vars() -> Vec<(&'static str, String)> {
    let fake = url();
    vec![
        ("GITHUB_EXPORTER_CLIENT_ID", CLIENT_ID.into()),
        ("GITHUB_EXPORTER_CLIENT_SECRET", CLIENT_SECRET.into()),
        (
            "GITHUB_EXPORTER_OAUTH_AUTHORIZE_URL",
            format!("{fake}/login/oauth/authorize"),
        ),
        (
            "GITHUB_EXPORTER_OAUTH_TOKEN_URL",
            format!("{fake}/login/oauth/access_token"),
        ),
        ("GITHUB_API_URL", format!("{fake}/api")),
        ("SECRETS_ENCRYPTION_KEY", crate::github::SEALING_KEY.into()),
        ("WEBHOOK_SECRET", crate::github::WEBHOOK_SECRET.into()),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_object(kind: &str, body: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("{kind} {}\0", body.len()).as_bytes());
    h.update(body);
    hex(&h.finalize())
}

impl Fake {
    fn put(&mut self, o: Object) -> String {
        let sha = match &o {
            Object::Blob(b) => hash_object("blob", b),
            Object::Tree(entries) => {
                let mut body = Vec::new();
                for (name, mode, sha) in entries {
                    let mode = mode.trim_start_matches('0');
                    body.extend_from_slice(format!("{mode} {name}\0").as_bytes());
                    let raw: Vec<u8> = (0..40)
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&sha[i..i + 2], 16).unwrap())
                        .collect();
                    body.extend_from_slice(&raw);
                }
                hash_object("tree", &body)
            }
            Object::Commit {
                tree,
                parents,
                message,
            } => {
                self.next += 1;
                let mut text = format!("tree {tree}\n");
                for p in parents {
                    text.push_str(&format!("parent {p}\n"));
                }
                // Distinct times keep identical commits distinct, as real clocks do.
                let when = 1_700_000_000 + self.next;
                text.push_str(&format!(
                    "author Fake <fake@github.test> {when} +0000\ncommitter Fake <fake@github.test> {when} +0000\n\n{message}"
                ));
                hash_object("commit", text.as_bytes())
            }
        };
        self.objects.insert(sha.clone(), o);
        sha
    }

    /// A tree of nested paths → (mode, blob sha), stored; its sha.
    fn build_tree(&mut self, files: &BTreeMap<String, (String, String)>) -> String {
        let mut here: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut dirs: BTreeMap<String, BTreeMap<String, (String, String)>> = BTreeMap::new();
        for (path, v) in files {
            match path.split_once('/') {
                Some((dir, rest)) => {
                    dirs.entry(dir.to_string())
                        .or_default()
                        .insert(rest.to_string(), v.clone());
                }
                None => {
                    here.insert(path.clone(), v.clone());
                }
            }
        }
        for (dir, sub) in dirs {
            let sha = self.build_tree(&sub);
            here.insert(dir, ("040000".into(), sha));
        }
        let entries = here
            .into_iter()
            .map(|(name, (mode, sha))| (name, mode, sha))
            .collect();
        self.put(Object::Tree(entries))
    }

    /// Every file of a tree: path → (mode, sha); with `dirs`, directories too (mode 040000).
    fn flatten(
        &self,
        tree: &str,
        prefix: &str,
        dirs: bool,
        out: &mut BTreeMap<String, (String, String)>,
    ) {
        if let Some(Object::Tree(entries)) = self.objects.get(tree) {
            for (name, mode, sha) in entries {
                let path = format!("{prefix}{name}");
                if mode == "040000" {
                    if dirs {
                        out.insert(path.clone(), (mode.clone(), sha.clone()));
                    }
                    self.flatten(sha, &format!("{path}/"), dirs, out);
                } else {
                    out.insert(path, (mode.clone(), sha.clone()));
                }
            }
        }
    }

    fn ancestors(&self, sha: &str) -> Vec<String> {
        let mut out = vec![];
        let mut todo = vec![sha.to_string()];
        while let Some(s) = todo.pop() {
            if out.contains(&s) {
                continue;
            }
            if let Some(Object::Commit { parents, .. }) = self.objects.get(&s) {
                todo.extend(parents.iter().cloned());
            }
            out.push(s);
        }
        out
    }

    fn commit_files(&self, commit: &str) -> BTreeMap<String, String> {
        let Some(Object::Commit { tree, .. }) = self.objects.get(commit) else {
            return BTreeMap::new();
        };
        let mut flat = BTreeMap::new();
        self.flatten(tree, "", false, &mut flat);
        flat.into_iter()
            .map(|(p, (_, sha))| {
                let content = match self.objects.get(&sha) {
                    Some(Object::Blob(b)) => String::from_utf8_lossy(b).into_owned(),
                    _ => String::new(),
                };
                (p, content)
            })
            .collect()
    }

    /// Adds a commit on `branch` changing `files` (content, or `None` to delete), as someone
    /// pushing from elsewhere.
    fn commit_on(
        &mut self,
        owner: &str,
        name: &str,
        branch: &str,
        files: &[(&str, Option<&str>)],
        message: &str,
    ) -> String {
        let key = (owner.to_string(), name.to_string());
        let parent = self.repos[&key].refs.get(branch).cloned();
        let mut flat = BTreeMap::new();
        if let Some(Object::Commit { tree, .. }) =
            parent.as_ref().and_then(|p| self.objects.get(p)).cloned()
        {
            self.flatten(&tree, "", false, &mut flat);
        }
        for (path, content) in files {
            match content {
                Some(c) => {
                    let sha = self.put(Object::Blob(c.as_bytes().to_vec()));
                    flat.insert(path.to_string(), ("100644".into(), sha));
                }
                None => {
                    flat.remove(*path);
                }
            }
        }
        let tree = self.build_tree(&flat);
        let sha = self.put(Object::Commit {
            tree,
            parents: parent.into_iter().collect(),
            message: message.into(),
        });
        self.repos
            .get_mut(&key)
            .unwrap()
            .refs
            .insert(branch.to_string(), sha.clone());
        sha
    }
}

fn answer(status: StatusCode, scopes: &str, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut()
        .insert("X-OAuth-Scopes", scopes.parse().unwrap());
    r.headers_mut().insert(
        "X-GitHub-Media-Type",
        "github.v3; format=json".parse().unwrap(),
    );
    r
}

fn message(status: StatusCode, scopes: &str, msg: &str) -> Response {
    answer(
        status,
        scopes,
        json!({ "message": msg, "documentation_url": "https://docs.github.com/rest", "status": status.as_u16().to_string() }),
    )
}

fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

async fn handle(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if path == "/login/oauth/authorize" && method == Method::GET {
        return authorize(&s, &query(&uri));
    }
    if path == "/login/oauth/access_token" && method == Method::POST {
        let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        return access_token(&s, &form);
    }
    let Some(api) = path.strip_prefix("/api") else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return message(StatusCode::BAD_REQUEST, "", "Problems parsing JSON"),
        }
    };
    let mut st = s.lock().unwrap();
    st.requests.push(Recorded {
        method: method.to_string(),
        path: api.to_string(),
        body: body.clone(),
    });
    // GitHub insists on these; a client without them is a bug in the platform.
    let accept_ok = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/vnd.github+json"));
    let version_ok = headers
        .get("x-github-api-version")
        .and_then(|v| v.to_str().ok())
        == Some("2022-11-28");
    if headers.get("user-agent").is_none() {
        return message(
            StatusCode::FORBIDDEN,
            "",
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        );
    }
    if !accept_ok || !version_ok {
        return message(
            StatusCode::BAD_REQUEST,
            "",
            "missing Accept or X-GitHub-Api-Version header",
        );
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .map(str::to_string);
    let Some((login, scopes)) = token.and_then(|t| st.tokens.get(&t).cloned()) else {
        return message(StatusCode::UNAUTHORIZED, "", "Bad credentials");
    };
    let scope_header = scopes.join(", ");
    api_call(
        &mut st,
        &method,
        api,
        &query(&uri),
        &body,
        &login,
        &scopes,
        &scope_header,
    )
}

/// GitHub answers the consent screen with a 302.
fn found(to: &str) -> Response {
    (
        StatusCode::FOUND,
        [(axum::http::header::LOCATION, to.to_string())],
    )
        .into_response()
}

/// The consent screen a person sees in a browser (a request without the tests' `user`): the
/// request's parameters carried in a form that asks again with the login typed in (Authorize)
/// or with `deny=1` (Cancel).
fn consent(q: &HashMap<String, String>) -> Response {
    let esc = |v: &str| {
        v.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let hidden: String = q
        .iter()
        .filter(|(k, _)| *k != "user" && *k != "deny")
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                esc(k),
                esc(v)
            )
        })
        .collect();
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Authorize application</title></head>
<body><main><h1>Authorize Byte exporter</h1><p>It asks for: {scope}</p>
<form method="get" action="/login/oauth/authorize">{hidden}
<label>GitHub login <input name="user" required></label>
<button type="submit">Authorize</button>
<button type="submit" name="deny" value="1" formnovalidate>Cancel</button>
</form></main></body></html>"#,
        scope = esc(q.get("scope").map(String::as_str).unwrap_or(""))
    );
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

fn authorize(s: &Shared, q: &HashMap<String, String>) -> Response {
    let p = |k: &str| q.get(k).cloned().unwrap_or_default();
    if p("client_id") != CLIENT_ID {
        return (StatusCode::NOT_FOUND, "unknown client").into_response();
    }
    if p("response_type") != "code"
        || p("code_challenge_method") != "S256"
        || p("code_challenge").is_empty()
    {
        return (StatusCode::BAD_REQUEST, "bad authorize request").into_response();
    }
    let sep = if p("redirect_uri").contains('?') {
        '&'
    } else {
        '?'
    };
    if !q.contains_key("user") && p("deny") != "1" {
        return consent(q);
    }
    if p("deny") == "1" {
        return found(&format!(
            "{}{sep}error=access_denied&state={}",
            p("redirect_uri"),
            form_urlencoded::byte_serialize(p("state").as_bytes()).collect::<String>()
        ))
        .into_response();
    }
    let mut st = s.lock().unwrap();
    st.next += 1;
    let code = format!("ghcode-{}", st.next);
    let scopes = q.get("grant").cloned().unwrap_or_else(|| p("scope"));
    st.codes.insert(
        code.clone(),
        Grant {
            login: p("user"),
            scopes,
            redirect_uri: p("redirect_uri"),
            challenge: p("code_challenge"),
        },
    );
    found(&format!(
        "{}{sep}code={code}&state={}",
        p("redirect_uri"),
        form_urlencoded::byte_serialize(p("state").as_bytes()).collect::<String>()
    ))
}

fn access_token(s: &Shared, f: &HashMap<String, String>) -> Response {
    let p = |k: &str| f.get(k).cloned().unwrap_or_default();
    // GitHub answers token errors with 200 and an `error`.
    let fail = |e: &str| Json(json!({ "error": e })).into_response();
    if p("client_id") != CLIENT_ID || p("client_secret") != CLIENT_SECRET {
        return fail("incorrect_client_credentials");
    }
    let mut st = s.lock().unwrap();
    let Some(g) = st.codes.remove(&p("code")) else {
        return fail("bad_verification_code");
    };
    if g.redirect_uri != p("redirect_uri") {
        return fail("redirect_uri_mismatch");
    }
    if URL_SAFE_NO_PAD.encode(Sha256::digest(p("code_verifier").as_bytes())) != g.challenge {
        return fail("bad_verification_code");
    }
    st.next += 1;
    let token = format!("gho_fake{}", st.next);
    let scopes: Vec<String> = g
        .scopes
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    st.tokens.insert(token.clone(), (g.login, scopes.clone()));
    Json(json!({ "access_token": token, "token_type": "bearer", "scope": scopes.join(",") }))
        .into_response()
}

fn repo_json(base: &str, owner: &str, name: &str, r: &Repo) -> Value {
    json!({
        "id": 1, "name": name, "full_name": format!("{owner}/{name}"),
        "owner": { "login": owner, "type": "User" },
        "private": r.private, "description": r.description,
        "html_url": format!("{base}/{owner}/{name}"),
        "default_branch": r.default_branch,
    })
}

#[allow(clippy::too_many_arguments)]
fn api_call(
    st: &mut Fake,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    body: &Value,
    login: &str,
    scopes: &[String],
    sh: &str,
) -> Response {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let no_scope = |accepted: &str| {
        let mut r = message(
            StatusCode::FORBIDDEN,
            sh,
            "Resource not accessible by integration",
        );
        r.headers_mut()
            .insert("X-Accepted-OAuth-Scopes", accepted.parse().unwrap());
        r
    };
    let base = st.base.clone();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.clone(), segs.as_slice()) {
        (Method::GET, ["user"]) => answer(
            StatusCode::OK,
            sh,
            json!({ "login": login, "id": 42, "type": "User" }),
        ),
        (Method::POST, ["user", "repos"]) => {
            let Some(name) = body["name"].as_str().filter(|n| !n.is_empty()) else {
                return answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    sh,
                    json!({"message": "Validation Failed", "errors": [{"resource": "Repository", "code": "missing_field", "field": "name"}]}),
                );
            };
            let private = body["private"].as_bool().unwrap_or(false);
            if !(has("repo") || (!private && has("public_repo"))) {
                return no_scope(if private { "repo" } else { "public_repo, repo" });
            }
            let key = (login.to_string(), name.to_string());
            if st.repos.contains_key(&key) {
                return answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    sh,
                    json!({
                        "message": "Repository creation failed.",
                        "errors": [{"resource": "Repository", "code": "custom", "field": "name", "message": "name already exists on this account"}],
                    }),
                );
            }
            st.repos.insert(
                key,
                Repo {
                    private,
                    description: body["description"].as_str().map(str::to_string),
                    default_branch: "main".into(),
                    ..Repo::default()
                },
            );
            if body["auto_init"].as_bool() == Some(true) {
                st.commit_on(
                    login,
                    name,
                    "main",
                    &[("README.md", Some(&format!("# {name}\n")))],
                    "Initial commit",
                );
            }
            let r = &st.repos[&(login.to_string(), name.to_string())];
            answer(StatusCode::CREATED, sh, repo_json(&base, login, name, r))
        }
        (m, ["repos", owner, name, rest @ ..]) => {
            let key = (owner.to_string(), name.to_string());
            let Some(repo) = st.repos.get(&key) else {
                return message(StatusCode::NOT_FOUND, sh, "Not Found");
            };
            // Only the owner's tokens see or change its repositories here.
            if *owner != login {
                return message(StatusCode::NOT_FOUND, sh, "Not Found");
            }
            let may_read = !repo.private || has("repo");
            let may_write = has("repo") || (!repo.private && has("public_repo"));
            if !may_read {
                return message(StatusCode::NOT_FOUND, sh, "Not Found");
            }
            if m != Method::GET && !may_write {
                return no_scope(if repo.private {
                    "repo"
                } else {
                    "public_repo, repo"
                });
            }
            let empty = repo.refs.is_empty();
            if rest.first() == Some(&"git") && empty {
                return message(StatusCode::CONFLICT, sh, "Git Repository is empty.");
            }
            repo_call(st, &m, owner, name, rest, q, body, sh)
        }
        _ => message(StatusCode::NOT_FOUND, sh, "Not Found"),
    }
}

#[allow(clippy::too_many_arguments)]
fn repo_call(
    st: &mut Fake,
    m: &Method,
    owner: &str,
    name: &str,
    rest: &[&str],
    q: &HashMap<String, String>,
    body: &Value,
    sh: &str,
) -> Response {
    let key = (owner.to_string(), name.to_string());
    let base = st.base.clone();
    let unprocessable = |msg: &str| message(StatusCode::UNPROCESSABLE_ENTITY, sh, msg);
    let ref_json = |branch: &str, sha: &str| json!({ "ref": format!("refs/heads/{branch}"), "object": { "sha": sha, "type": "commit" } });
    match (m.clone(), rest) {
        (Method::GET, []) => answer(
            StatusCode::OK,
            sh,
            repo_json(&base, owner, name, &st.repos[&key]),
        ),
        (Method::GET, ["git", "ref", "heads", branch @ ..]) => {
            let b = branch.join("/");
            match st.repos[&key].refs.get(&b) {
                Some(sha) => answer(StatusCode::OK, sh, ref_json(&b, sha)),
                None => message(StatusCode::NOT_FOUND, sh, "Not Found"),
            }
        }
        (Method::POST, ["git", "refs"]) => {
            let (Some(r), Some(sha)) = (body["ref"].as_str(), body["sha"].as_str()) else {
                return unprocessable("Invalid request.");
            };
            let Some(b) = r.strip_prefix("refs/heads/") else {
                return unprocessable("Reference name must start with 'refs/'.");
            };
            if !matches!(st.objects.get(sha), Some(Object::Commit { .. })) {
                return unprocessable("Object does not exist");
            }
            if st.repos[&key].refs.contains_key(b) {
                return unprocessable("Reference already exists");
            }
            st.repos
                .get_mut(&key)
                .unwrap()
                .refs
                .insert(b.to_string(), sha.to_string());
            answer(StatusCode::CREATED, sh, ref_json(b, sha))
        }
        (Method::PATCH, ["git", "refs", "heads", branch @ ..]) => {
            let b = branch.join("/");
            let Some(sha) = body["sha"].as_str() else {
                return unprocessable("Invalid request.");
            };
            let Some(current) = st.repos[&key].refs.get(&b).cloned() else {
                return unprocessable("Reference does not exist");
            };
            if !matches!(st.objects.get(sha), Some(Object::Commit { .. })) {
                return unprocessable("Object does not exist");
            }
            let force = body["force"].as_bool().unwrap_or(false);
            if !force && !st.ancestors(sha).contains(&current) {
                return unprocessable("Update is not a fast forward");
            }
            st.repos
                .get_mut(&key)
                .unwrap()
                .refs
                .insert(b.clone(), sha.to_string());
            answer(StatusCode::OK, sh, ref_json(&b, sha))
        }
        (Method::POST, ["git", "blobs"]) => {
            let content = match (
                body["content"].as_str(),
                body["encoding"].as_str().unwrap_or("utf-8"),
            ) {
                (Some(c), "base64") => match B64.decode(c.replace('\n', "")) {
                    Ok(b) => b,
                    Err(_) => return unprocessable("Invalid base64 content"),
                },
                (Some(c), "utf-8") => c.as_bytes().to_vec(),
                _ => return unprocessable("Invalid request."),
            };
            let sha = st.put(Object::Blob(content));
            answer(
                StatusCode::CREATED,
                sh,
                json!({ "sha": sha, "url": format!("{base}/api/repos/{owner}/{name}/git/blobs/{sha}") }),
            )
        }
        (Method::GET, ["git", "blobs", sha]) => match st.objects.get(*sha) {
            Some(Object::Blob(b)) => answer(
                StatusCode::OK,
                sh,
                json!({ "sha": sha, "size": b.len(), "encoding": "base64", "content": wrapped(&B64.encode(b)) }),
            ),
            _ => message(StatusCode::NOT_FOUND, sh, "Not Found"),
        },
        (Method::POST, ["git", "trees"]) => {
            let mut flat = BTreeMap::new();
            if let Some(bt) = body["base_tree"].as_str() {
                if !matches!(st.objects.get(bt), Some(Object::Tree(_))) {
                    return unprocessable("base_tree is not a valid tree oid");
                }
                st.flatten(bt, "", false, &mut flat);
            }
            let Some(entries) = body["tree"].as_array() else {
                return unprocessable("Invalid tree info");
            };
            for e in entries {
                let Some(path) = e["path"]
                    .as_str()
                    .filter(|p| !p.is_empty() && !p.starts_with('/'))
                else {
                    return unprocessable("tree.path is invalid");
                };
                let mode = e["mode"].as_str().unwrap_or("100644").to_string();
                if let Some(c) = e["content"].as_str() {
                    let sha = st.put(Object::Blob(c.as_bytes().to_vec()));
                    flat.insert(path.to_string(), (mode, sha));
                } else if e.get("sha") == Some(&Value::Null) {
                    flat.remove(path);
                } else if let Some(sha) = e["sha"].as_str() {
                    if !matches!(st.objects.get(sha), Some(Object::Blob(_))) {
                        return unprocessable(&format!("tree.sha {sha} is not a valid blob"));
                    }
                    flat.insert(path.to_string(), (mode, sha.to_string()));
                } else {
                    return unprocessable("Must supply either tree.sha or tree.content");
                }
            }
            let sha = st.build_tree(&flat);
            answer(StatusCode::CREATED, sh, tree_json(st, &sha, false))
        }
        (Method::GET, ["git", "trees", sha]) => {
            if !matches!(st.objects.get(*sha), Some(Object::Tree(_))) {
                return message(StatusCode::NOT_FOUND, sh, "Not Found");
            }
            let recursive = q
                .get("recursive")
                .is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
            answer(StatusCode::OK, sh, tree_json(st, sha, recursive))
        }
        (Method::POST, ["git", "commits"]) => {
            let (Some(msg), Some(tree)) = (body["message"].as_str(), body["tree"].as_str()) else {
                return unprocessable("Invalid request.");
            };
            if !matches!(st.objects.get(tree), Some(Object::Tree(_))) {
                return unprocessable("Tree SHA does not exist");
            }
            let parents: Vec<String> = body["parents"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if parents
                .iter()
                .any(|p| !matches!(st.objects.get(p), Some(Object::Commit { .. })))
            {
                return unprocessable("Parent SHA does not exist or is not a commit object");
            }
            let sha = st.put(Object::Commit {
                tree: tree.to_string(),
                parents: parents.clone(),
                message: msg.to_string(),
            });
            answer(
                StatusCode::CREATED,
                sh,
                commit_json(&sha, tree, &parents, msg),
            )
        }
        (Method::GET, ["git", "commits", sha]) => match st.objects.get(*sha) {
            Some(Object::Commit {
                tree,
                parents,
                message: msg,
            }) => answer(StatusCode::OK, sh, commit_json(sha, tree, parents, msg)),
            _ => message(StatusCode::NOT_FOUND, sh, "Not Found"),
        },
        (Method::POST, ["pulls"]) => {
            let (Some(title), Some(head), Some(basebr)) = (
                body["title"].as_str(),
                body["head"].as_str(),
                body["base"].as_str(),
            ) else {
                return unprocessable("Validation Failed");
            };
            let head_branch = head.rsplit(':').next().unwrap_or(head);
            let repo = &st.repos[&key];
            let invalid = |field: &str| {
                answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    sh,
                    json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "field": field, "code": "invalid"}]}),
                )
            };
            if !repo.refs.contains_key(head_branch) {
                return invalid("head");
            }
            if !repo.refs.contains_key(basebr) {
                return invalid("base");
            }
            if repo.pulls.iter().any(|p| {
                p["state"] == "open"
                    && p["head"]["ref"] == head_branch
                    && p["base"]["ref"] == basebr
            }) {
                return answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    sh,
                    json!({
                        "message": "Validation Failed",
                        "errors": [{"resource": "PullRequest", "code": "custom", "message": format!("A pull request already exists for {owner}:{head_branch}.")}],
                    }),
                );
            }
            if repo.refs[head_branch] == repo.refs[basebr] {
                return answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    sh,
                    json!({
                        "message": "Validation Failed",
                        "errors": [{"resource": "PullRequest", "code": "custom", "message": format!("No commits between {basebr} and {head_branch}")}],
                    }),
                );
            }
            let number = repo.pulls.len() as u64 + 1;
            let pr = json!({
                "number": number, "state": "open", "title": title, "body": body["body"],
                "html_url": format!("{base}/{owner}/{name}/pull/{number}"),
                "head": { "ref": head_branch, "sha": repo.refs[head_branch] },
                "base": { "ref": basebr, "sha": repo.refs[basebr] },
                "merged": false,
            });
            st.repos.get_mut(&key).unwrap().pulls.push(pr.clone());
            answer(StatusCode::CREATED, sh, pr)
        }
        (Method::GET, ["pulls"]) => answer(
            StatusCode::OK,
            sh,
            Value::Array(st.repos[&key].pulls.clone()),
        ),
        _ => message(StatusCode::NOT_FOUND, sh, "Not Found"),
    }
}

fn commit_json(sha: &str, tree: &str, parents: &[String], msg: &str) -> Value {
    json!({
        "sha": sha, "message": msg,
        "tree": { "sha": tree },
        "parents": parents.iter().map(|p| json!({ "sha": p })).collect::<Vec<_>>(),
    })
}

fn tree_json(st: &Fake, sha: &str, recursive: bool) -> Value {
    let entries: Vec<Value> = if recursive {
        let mut flat = BTreeMap::new();
        st.flatten(sha, "", true, &mut flat);
        flat.into_iter()
            .map(|(p, (mode, s))| entry_json(st, &p, &mode, &s))
            .collect()
    } else {
        match st.objects.get(sha) {
            Some(Object::Tree(e)) => e.iter().map(|(n, m, s)| entry_json(st, n, m, s)).collect(),
            _ => vec![],
        }
    };
    json!({ "sha": sha, "tree": entries, "truncated": false })
}

fn entry_json(st: &Fake, path: &str, mode: &str, sha: &str) -> Value {
    let kind = if mode == "040000" { "tree" } else { "blob" };
    let mut v = json!({ "path": path, "mode": mode, "type": kind, "sha": sha });
    if let Some(Object::Blob(b)) = st.objects.get(sha) {
        v["size"] = json!(b.len());
    }
    v
}

// ---------------------------------------------------------------- for tests

/// The files on `branch` of `owner/name`: path → content.
pub fn files(owner: &str, name: &str, branch: &str) -> BTreeMap<String, String> {
    let st = shared().lock().unwrap();
    let Some(head) = st
        .repos
        .get(&(owner.into(), name.into()))
        .and_then(|r| r.refs.get(branch))
    else {
        return BTreeMap::new();
    };
    st.commit_files(head)
}

/// The files of commit `sha`.
pub fn files_at(sha: &str) -> BTreeMap<String, String> {
    shared().lock().unwrap().commit_files(sha)
}

/// Where `branch` points.
pub fn head(owner: &str, name: &str, branch: &str) -> Option<String> {
    let st = shared().lock().unwrap();
    st.repos
        .get(&(owner.into(), name.into()))
        .and_then(|r| r.refs.get(branch).cloned())
}

/// A commit's parents.
pub fn parents(sha: &str) -> Vec<String> {
    match shared().lock().unwrap().objects.get(sha) {
        Some(Object::Commit { parents, .. }) => parents.clone(),
        _ => vec![],
    }
}

/// Base64 as GitHub sends a blob's content: a line break after every 60 characters.
fn wrapped(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + b64.len() / 60 + 1);
    for (i, c) in b64.chars().enumerate() {
        if i > 0 && i % 60 == 0 {
            out.push('\n');
        }
        out.push(c);
    }
    out.push('\n');
    out
}

/// A repository of `owner` made on GitHub (not through the platform) with one commit holding
/// `files` on `branch`, its default branch.
pub fn seed_repo(owner: &str, name: &str, branch: &str, private: bool, files: &[(&str, &str)]) {
    let mut st = shared().lock().unwrap();
    st.repos.insert(
        (owner.to_string(), name.to_string()),
        Repo {
            private,
            default_branch: branch.into(),
            ..Repo::default()
        },
    );
    let files: Vec<(&str, Option<&str>)> = files.iter().map(|(p, c)| (*p, Some(*c))).collect();
    st.commit_on(owner, name, branch, &files, "Initial commit");
}

/// Someone else pushes a commit changing `files` on `branch`; its sha.
pub fn push_from_elsewhere(
    owner: &str,
    name: &str,
    branch: &str,
    files: &[(&str, Option<&str>)],
) -> String {
    shared()
        .lock()
        .unwrap()
        .commit_on(owner, name, branch, files, "A commit made elsewhere")
}

/// Whether `owner/name` exists, and whether it is private.
pub fn repo_private(owner: &str, name: &str) -> Option<bool> {
    shared()
        .lock()
        .unwrap()
        .repos
        .get(&(owner.into(), name.into()))
        .map(|r| r.private)
}

/// The pull requests of `owner/name`.
pub fn pulls(owner: &str, name: &str) -> Vec<Value> {
    shared()
        .lock()
        .unwrap()
        .repos
        .get(&(owner.into(), name.into()))
        .map(|r| r.pulls.clone())
        .unwrap_or_default()
}

/// The API requests made about `owner/name` (paths under `/repos/{owner}/{name}`).
pub fn requests_for(owner: &str, name: &str) -> Vec<Recorded> {
    let prefix = format!("/repos/{owner}/{name}/");
    shared()
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|r| r.path.starts_with(&prefix))
        .cloned()
        .collect()
}

/// Revokes every token of `login` (as the person revoking the app on GitHub would).
pub fn revoke_tokens_of(login: &str) {
    shared()
        .lock()
        .unwrap()
        .tokens
        .retain(|_, (l, _)| l != login);
}
