//! A GitHub REST client over a small HTTP port ([`GitHubHttp`]): the handful of calls the export
//! and the ticket workflow need (user, repositories, refs, blobs, trees, commits, pulls), the
//! mapping of GitHub's answers to our errors, and retries where GitHub says to retry.
//!
//! Invariants:
//! - every request carries `Accept: application/vnd.github+json`, `X-GitHub-Api-Version:
//!   2022-11-28`, `Authorization: Bearer <token>` and a `User-Agent` (GitHub refuses requests
//!   without one, and the Workers runtime sends none); the token never appears in `Debug`, an
//!   error or a log;
//! - a request is retried only when GitHub asks for it: a `Retry-After` header, or a secondary
//!   rate limit (403/429 saying so), at most [`MAX_ATTEMPTS`] times, never waiting longer than
//!   [`MAX_WAIT_MS`] at once; a primary rate limit (`x-ratelimit-remaining: 0`) is reported, not
//!   waited out;
//! - every non-2xx answer becomes a [`GitHubError`] whose [`GitHubErrorKind`] says what went wrong
//!   in our terms, and [`GitHubError::to_api_error`] gives the caller a clear E00x error.

use crate::domain::error::{ApiError, ErrorCode};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::fmt;

pub const ACCEPT: &str = "application/vnd.github+json";
pub const API_VERSION: &str = "2022-11-28";
pub const USER_AGENT: &str = "byte-platform";
/// Attempts per request when GitHub asks us to retry.
pub const MAX_ATTEMPTS: u32 = 3;
/// The longest single wait before a retry; a longer `Retry-After` is reported instead.
pub const MAX_WAIT_MS: u64 = 10_000;
/// The wait before retrying a secondary rate limit that names no `Retry-After`, doubled per try.
pub const SECONDARY_BACKOFF_MS: u64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Patch,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Patch => "PATCH",
        }
    }
}

/// One request to GitHub. Its `Debug` hides the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("authorization") {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_len", &self.body.as_ref().map_or(0, String::len))
            .finish()
    }
}

/// One answer from GitHub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// GitHub's `message`, plus the first of its `errors` entries' messages, if any.
    fn message(&self) -> String {
        let v = self.json();
        let main = v
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let detail = v
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| e.as_str().map(str::to_string))
            });
        let text = match detail {
            Some(d) if !main.is_empty() => format!("{main}: {d}"),
            Some(d) => d,
            None => main,
        };
        text.chars().take(300).collect()
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// HTTP as the client needs it. Futures need not be `Send` (the Worker is single-threaded).
#[allow(async_fn_in_trait)]
pub trait GitHubHttp {
    /// Sends one request. `Err` is a transport failure (no HTTP answer), in words for the log.
    async fn send(&self, req: &HttpRequest) -> Result<HttpResponse, String>;
    /// Waits `ms` milliseconds (between attempts).
    async fn sleep(&self, ms: u64);
}

/// What went wrong, in our terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitHubErrorKind {
    /// 401: the token was revoked or expired.
    BadToken,
    /// 403 (not a rate limit): the token lacks a scope, or the account may not do this.
    Forbidden,
    /// 404: no such repository or branch, or the token cannot see it.
    NotFound,
    /// 409 on git data: the repository is empty.
    EmptyRepository,
    /// 422 on repository creation: the name exists on the account.
    NameTaken,
    /// 422 on a pull request: one already exists for the branch.
    PullExists,
    /// 422 on a new ref: the branch exists.
    BranchExists,
    /// Our branch moved on since our last push (or a ref update was not a fast-forward).
    RemoteMoved,
    /// Another 422 (or 400): GitHub refused the input.
    Invalid,
    /// 429, or 403 with a rate limit: wait and try again.
    RateLimited,
    /// 5xx, a transport failure, or an answer we cannot read.
    Unavailable,
}

/// A failed GitHub call: the kind, a message for the person (never the token), and the wait
/// GitHub asked for, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubError {
    pub kind: GitHubErrorKind,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl GitHubError {
    pub fn new(kind: GitHubErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// The error our API answers with.
    pub fn to_api_error(&self) -> ApiError {
        use GitHubErrorKind::*;
        let mut e = match self.kind {
            BadToken => ApiError::new(
                403,
                ErrorCode::E001,
                format!(
                    "GitHub refused the connected account's token ({}); connect GitHub again in Settings",
                    self.message
                ),
            ),
            Forbidden => ApiError::new(
                403,
                ErrorCode::E001,
                format!(
                    "GitHub refused the request: {}. The connection needs the `repo` scope (or `public_repo` for public repositories); connect GitHub again to grant it",
                    self.message
                ),
            ),
            NotFound => ApiError::new(404, ErrorCode::E002, format!("on GitHub: {}", self.message)),
            EmptyRepository | RemoteMoved | PullExists | BranchExists => {
                ApiError::new(409, ErrorCode::E004, self.message.clone())
            }
            NameTaken => ApiError::field("name", self.message.clone()),
            Invalid => ApiError::validation(format!("GitHub refused the request: {}", self.message)),
            RateLimited => ApiError::rate_limited(format!("GitHub: {}", self.message)),
            Unavailable => ApiError::new(
                502,
                ErrorCode::E000,
                format!("GitHub is unavailable: {}; try again", self.message),
            ),
        };
        if let Some(s) = self.retry_after_secs {
            e.fields.insert("retryAfter".into(), s.to_string());
        }
        e
    }
}

impl fmt::Display for GitHubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

fn is_secondary_limit(resp: &HttpResponse) -> bool {
    matches!(resp.status, 403 | 429)
        && resp
            .message()
            .to_ascii_lowercase()
            .contains("secondary rate limit")
}

fn is_primary_limit(resp: &HttpResponse) -> bool {
    matches!(resp.status, 403 | 429) && resp.header("x-ratelimit-remaining") == Some("0")
}

/// How long to wait before trying `resp`'s request again, if GitHub asks for a retry and the
/// wait is short enough; `attempt` counts from 1.
pub fn retry_delay_ms(resp: &HttpResponse, attempt: u32) -> Option<u64> {
    if attempt >= MAX_ATTEMPTS {
        return None;
    }
    let retry_after = resp
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s * 1000);
    let wait = match retry_after {
        Some(ms) if matches!(resp.status, 403 | 429 | 503) => ms,
        None if is_secondary_limit(resp) => SECONDARY_BACKOFF_MS << (attempt - 1),
        _ => return None,
    };
    (wait <= MAX_WAIT_MS).then_some(wait)
}

/// Maps a non-2xx answer to our error; `what` names the call for the message.
pub fn classify(resp: &HttpResponse, what: &str) -> GitHubError {
    use GitHubErrorKind::*;
    let msg = resp.message();
    let said = if msg.is_empty() {
        format!("HTTP {}", resp.status)
    } else {
        msg.clone()
    };
    let lower = msg.to_ascii_lowercase();
    let retry_after = resp
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok());
    // GitHub names the scopes a call accepts and the token's own; a token lacking them gets a
    // 403, or a 404 for what it may not even see.
    let missing_scope = resp
        .header("x-accepted-oauth-scopes")
        .map(|a| {
            a.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|accepted| !accepted.is_empty())
        .filter(|accepted| {
            let held: Vec<&str> = resp
                .header("x-oauth-scopes")
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .collect();
            !accepted.iter().any(|a| held.contains(a))
        })
        .map(|accepted| accepted.join(" or "));
    let (kind, message) = match resp.status {
        401 => (BadToken, said),
        403 | 404 if missing_scope.is_some() && !is_primary_limit(resp) && !is_secondary_limit(resp) => (
            Forbidden,
            format!(
                "{what}: the token lacks the {} scope",
                missing_scope.unwrap_or_default()
            ),
        ),
        403 | 429 if is_primary_limit(resp) || is_secondary_limit(resp) || resp.status == 429 => {
            let reset = resp
                .header("x-ratelimit-reset")
                .map(|r| format!(" (the limit resets at unix time {r})"))
                .unwrap_or_default();
            (RateLimited, format!("rate limit reached while trying to {what}{reset}"))
        }
        403 => (Forbidden, format!("{what}: {said}")),
        404 => (NotFound, format!("{what}: not found, or the connected account cannot see it")),
        409 if lower.contains("empty") => (
            EmptyRepository,
            format!("{what}: the repository is empty (it has no commit to build on)"),
        ),
        422 if lower.contains("name already exists") => (
            NameTaken,
            "a repository with this name already exists on the connected GitHub account".to_string(),
        ),
        422 if lower.contains("pull request already exists") => {
            (PullExists, format!("{what}: a pull request for this branch already exists"))
        }
        422 if lower.contains("reference already exists") => {
            (BranchExists, format!("{what}: the branch already exists"))
        }
        422 if lower.contains("fast forward") => (
            RemoteMoved,
            format!("{what}: the branch moved on meanwhile (not a fast-forward); nothing was overwritten"),
        ),
        400 | 409 | 422 => (Invalid, format!("{what}: {said}")),
        s => (Unavailable, format!("{what}: GitHub answered HTTP {s}")),
    };
    GitHubError {
        kind,
        message,
        retry_after_secs: retry_after.filter(|_| kind == RateLimited),
    }
}

/// The signed-in GitHub account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubUser {
    pub login: String,
}

/// A repository as we keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub owner: String,
    pub name: String,
    pub full_name: String,
    pub html_url: String,
    pub default_branch: String,
    pub private: bool,
}

impl Repo {
    fn from_json(v: &Value) -> Result<Repo, GitHubError> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let owner = v
            .get("owner")
            .and_then(|o| o.get("login"))
            .and_then(Value::as_str)
            .map(str::to_string);
        match (owner, s("name"), s("full_name"), s("html_url")) {
            (Some(owner), Some(name), Some(full_name), Some(html_url)) => Ok(Repo {
                owner,
                name,
                full_name,
                html_url,
                default_branch: s("default_branch").unwrap_or_else(|| "main".into()),
                private: v.get("private").and_then(Value::as_bool).unwrap_or(true),
            }),
            _ => Err(unreadable("the repository")),
        }
    }
}

/// One entry of a recursive tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: String,
    pub mode: String,
    /// `blob`, `tree` or `commit` (a submodule).
    pub kind: String,
    pub sha: String,
    /// A blob's size in bytes (GitHub lists it for blobs).
    pub size: Option<u64>,
}

/// One change in a new tree: a file's new blob, or its deletion (`sha: null`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeChange {
    Put { path: String, sha: String },
    Delete { path: String },
}

/// A pull request as we keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    pub number: u64,
    pub html_url: String,
}

fn unreadable(what: &str) -> GitHubError {
    GitHubError::new(
        GitHubErrorKind::Unavailable,
        format!("GitHub's answer about {what} could not be read"),
    )
}

fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().map(str::to_string)
}

/// The client: an HTTP port, the API base URL and the connected account's token.
pub struct GitHub<'a, H: GitHubHttp> {
    http: &'a H,
    base: String,
    token: &'a str,
}

impl<'a, H: GitHubHttp> GitHub<'a, H> {
    pub fn new(http: &'a H, base: &str, token: &'a str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    fn request(&self, method: HttpMethod, path: &str, body: Option<&Value>) -> HttpRequest {
        let mut headers = vec![
            ("Accept".to_string(), ACCEPT.to_string()),
            ("X-GitHub-Api-Version".to_string(), API_VERSION.to_string()),
            (
                "Authorization".to_string(),
                format!("Bearer {}", self.token),
            ),
            ("User-Agent".to_string(), USER_AGENT.to_string()),
        ];
        if body.is_some() {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        HttpRequest {
            method,
            url: format!("{}{path}", self.base),
            headers,
            body: body.map(Value::to_string),
        }
    }

    /// Sends a call, retrying where GitHub says to; the 2xx answer's JSON, or our error.
    async fn call(
        &self,
        method: HttpMethod,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, GitHubError> {
        let req = self.request(method, path, body);
        let mut attempt = 1;
        loop {
            let resp = self.http.send(&req).await.map_err(|e| {
                GitHubError::new(
                    GitHubErrorKind::Unavailable,
                    format!("{what}: GitHub could not be reached ({e})"),
                )
            })?;
            if (200..300).contains(&resp.status) {
                return Ok(if resp.body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&resp.body).map_err(|_| unreadable(what))?
                });
            }
            match retry_delay_ms(&resp, attempt) {
                Some(ms) => {
                    self.http.sleep(ms).await;
                    attempt += 1;
                }
                None => return Err(classify(&resp, what)),
            }
        }
    }

    /// `GET /user`.
    pub async fn user(&self) -> Result<GitHubUser, GitHubError> {
        let v = self
            .call(HttpMethod::Get, "/user", None, "read your GitHub account")
            .await?;
        Ok(GitHubUser {
            login: str_at(&v, &["login"]).ok_or_else(|| unreadable("your account"))?,
        })
    }

    /// `POST /user/repos` with `auto_init` (git data calls answer 409 on an empty repository).
    pub async fn create_repo(
        &self,
        name: &str,
        description: Option<&str>,
        private: bool,
    ) -> Result<Repo, GitHubError> {
        let body = json!({ "name": name, "description": description, "private": private, "auto_init": true });
        let v = self
            .call(
                HttpMethod::Post,
                "/user/repos",
                Some(&body),
                "create the repository",
            )
            .await?;
        Repo::from_json(&v)
    }

    /// `GET /repos/{owner}/{repo}`.
    pub async fn repo(&self, owner: &str, repo: &str) -> Result<Repo, GitHubError> {
        let v = self
            .call(
                HttpMethod::Get,
                &format!("/repos/{owner}/{repo}"),
                None,
                "read the repository",
            )
            .await?;
        Repo::from_json(&v)
    }

    /// The commit `branch` points at; `None` when the branch does not exist.
    pub async fn branch_head(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
    ) -> Result<Option<String>, GitHubError> {
        let path = format!("/repos/{owner}/{repo}/git/ref/heads/{branch}");
        match self
            .call(HttpMethod::Get, &path, None, "read the branch")
            .await
        {
            Ok(v) => Ok(Some(
                str_at(&v, &["object", "sha"]).ok_or_else(|| unreadable("the branch"))?,
            )),
            Err(e) if e.kind == GitHubErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The tree of commit `sha`.
    pub async fn commit_tree(
        &self,
        owner: &str,
        repo: &str,
        sha: &str,
    ) -> Result<String, GitHubError> {
        let v = self
            .call(
                HttpMethod::Get,
                &format!("/repos/{owner}/{repo}/git/commits/{sha}"),
                None,
                "read the branch's commit",
            )
            .await?;
        str_at(&v, &["tree", "sha"]).ok_or_else(|| unreadable("the commit"))
    }

    /// Every entry of tree `sha`, recursively (files with their full paths).
    pub async fn tree(
        &self,
        owner: &str,
        repo: &str,
        sha: &str,
    ) -> Result<Vec<TreeEntry>, GitHubError> {
        let v = self
            .call(
                HttpMethod::Get,
                &format!("/repos/{owner}/{repo}/git/trees/{sha}?recursive=1"),
                None,
                "read the repository's files",
            )
            .await?;
        if v.get("truncated").and_then(Value::as_bool) == Some(true) {
            return Err(GitHubError::new(
                GitHubErrorKind::Invalid,
                "the repository has too many files for GitHub to list in one tree",
            ));
        }
        let entries = v
            .get("tree")
            .and_then(Value::as_array)
            .ok_or_else(|| unreadable("the tree"))?;
        entries
            .iter()
            .map(|e| {
                Some(TreeEntry {
                    path: str_at(e, &["path"])?,
                    mode: str_at(e, &["mode"]).unwrap_or_default(),
                    kind: str_at(e, &["type"])?,
                    sha: str_at(e, &["sha"])?,
                    size: e.get("size").and_then(Value::as_u64),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| unreadable("the tree"))
    }

    /// `GET …/git/blobs/{sha}`: the blob's bytes (GitHub sends base64 with line breaks, or
    /// `utf-8` text).
    pub async fn blob(&self, owner: &str, repo: &str, sha: &str) -> Result<Vec<u8>, GitHubError> {
        let v = self
            .call(
                HttpMethod::Get,
                &format!("/repos/{owner}/{repo}/git/blobs/{sha}"),
                None,
                "read a file",
            )
            .await?;
        let content = str_at(&v, &["content"]).ok_or_else(|| unreadable("a file"))?;
        match v.get("encoding").and_then(Value::as_str) {
            Some("utf-8") => Ok(content.into_bytes()),
            _ => {
                let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
                B64.decode(compact).map_err(|_| unreadable("a file"))
            }
        }
    }

    /// `POST …/git/blobs` (base64, so any bytes go through); the blob's sha.
    pub async fn create_blob(
        &self,
        owner: &str,
        repo: &str,
        content: &[u8],
    ) -> Result<String, GitHubError> {
        let body = json!({ "content": B64.encode(content), "encoding": "base64" });
        let v = self
            .call(
                HttpMethod::Post,
                &format!("/repos/{owner}/{repo}/git/blobs"),
                Some(&body),
                "upload a file",
            )
            .await?;
        str_at(&v, &["sha"]).ok_or_else(|| unreadable("the blob"))
    }

    /// `POST …/git/trees` on top of `base_tree`; the new tree's sha.
    pub async fn create_tree(
        &self,
        owner: &str,
        repo: &str,
        base_tree: &str,
        changes: &[TreeChange],
    ) -> Result<String, GitHubError> {
        let tree: Vec<Value> = changes
            .iter()
            .map(|c| match c {
                TreeChange::Put { path, sha } => {
                    json!({ "path": path, "mode": "100644", "type": "blob", "sha": sha })
                }
                TreeChange::Delete { path } => {
                    json!({ "path": path, "mode": "100644", "type": "blob", "sha": Value::Null })
                }
            })
            .collect();
        let body = json!({ "base_tree": base_tree, "tree": tree });
        let v = self
            .call(
                HttpMethod::Post,
                &format!("/repos/{owner}/{repo}/git/trees"),
                Some(&body),
                "write the new tree",
            )
            .await?;
        str_at(&v, &["sha"]).ok_or_else(|| unreadable("the tree"))
    }

    /// `POST …/git/commits`; the commit's sha.
    pub async fn create_commit(
        &self,
        owner: &str,
        repo: &str,
        message: &str,
        tree: &str,
        parents: &[&str],
    ) -> Result<String, GitHubError> {
        let body = json!({ "message": message, "tree": tree, "parents": parents });
        let v = self
            .call(
                HttpMethod::Post,
                &format!("/repos/{owner}/{repo}/git/commits"),
                Some(&body),
                "write the commit",
            )
            .await?;
        str_at(&v, &["sha"]).ok_or_else(|| unreadable("the commit"))
    }

    /// `POST …/git/refs`: a new branch at `sha`.
    pub async fn create_branch(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        sha: &str,
    ) -> Result<(), GitHubError> {
        let body = json!({ "ref": format!("refs/heads/{branch}"), "sha": sha });
        self.call(
            HttpMethod::Post,
            &format!("/repos/{owner}/{repo}/git/refs"),
            Some(&body),
            "create the branch",
        )
        .await
        .map(|_| ())
    }

    /// `PATCH …/git/refs/heads/{branch}` without force: only a fast-forward moves it.
    pub async fn move_branch(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
        sha: &str,
    ) -> Result<(), GitHubError> {
        let body = json!({ "sha": sha, "force": false });
        self.call(
            HttpMethod::Patch,
            &format!("/repos/{owner}/{repo}/git/refs/heads/{branch}"),
            Some(&body),
            "move the branch",
        )
        .await
        .map(|_| ())
    }

    /// `POST …/pulls`.
    pub async fn create_pull(
        &self,
        owner: &str,
        repo: &str,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
    ) -> Result<Pull, GitHubError> {
        let req = json!({ "title": title, "head": head, "base": base, "body": body });
        let v = self
            .call(
                HttpMethod::Post,
                &format!("/repos/{owner}/{repo}/pulls"),
                Some(&req),
                "open the pull request",
            )
            .await?;
        Ok(Pull {
            number: v
                .get("number")
                .and_then(Value::as_u64)
                .ok_or_else(|| unreadable("the pull request"))?,
            html_url: str_at(&v, &["html_url"]).ok_or_else(|| unreadable("the pull request"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Answers from a script, in order; records requests and sleeps.
    #[derive(Default)]
    struct Scripted {
        answers: RefCell<Vec<HttpResponse>>,
        sent: RefCell<Vec<HttpRequest>>,
        slept: RefCell<Vec<u64>>,
    }

    impl GitHubHttp for Scripted {
        async fn send(&self, req: &HttpRequest) -> Result<HttpResponse, String> {
            self.sent.borrow_mut().push(req.clone());
            let mut a = self.answers.borrow_mut();
            if a.is_empty() {
                return Err("no answer scripted".into());
            }
            Ok(a.remove(0))
        }
        async fn sleep(&self, ms: u64) {
            self.slept.borrow_mut().push(ms);
        }
    }

    fn resp(status: u16, headers: &[(&str, &str)], body: Value) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_string().into_bytes(),
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures_executor::block_on(f)
    }

    #[test]
    fn requests_carry_githubs_headers_and_hide_the_token() {
        let http = Scripted::default();
        http.answers
            .borrow_mut()
            .push(resp(200, &[], json!({"login": "octo"})));
        let gh = GitHub::new(&http, "http://gh.test/api/", "tok-secret");
        assert_eq!(run(gh.user()).unwrap().login, "octo");
        let sent = http.sent.borrow();
        let r = &sent[0];
        assert_eq!(r.url, "http://gh.test/api/user");
        assert_eq!(r.header("accept"), Some(ACCEPT));
        assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
        assert_eq!(r.header("authorization"), Some("Bearer tok-secret"));
        assert_eq!(r.header("user-agent"), Some(USER_AGENT));
        assert!(!format!("{r:?}").contains("tok-secret"));
    }

    #[test]
    fn errors_map_to_our_codes() {
        let cases = [
            (
                resp(401, &[], json!({"message": "Bad credentials"})),
                GitHubErrorKind::BadToken,
                403,
                "E001",
            ),
            (
                resp(
                    403,
                    &[("X-Accepted-OAuth-Scopes", "repo")],
                    json!({"message": "Resource not accessible by integration"}),
                ),
                GitHubErrorKind::Forbidden,
                403,
                "E001",
            ),
            (
                resp(404, &[], json!({"message": "Not Found"})),
                GitHubErrorKind::NotFound,
                404,
                "E002",
            ),
            (
                resp(409, &[], json!({"message": "Git Repository is empty."})),
                GitHubErrorKind::EmptyRepository,
                409,
                "E004",
            ),
            (
                resp(
                    422,
                    &[],
                    json!({"message": "Repository creation failed.", "errors": [{"message": "name already exists on this account"}]}),
                ),
                GitHubErrorKind::NameTaken,
                400,
                "E004",
            ),
            (
                resp(422, &[], json!({"message": "Update is not a fast forward"})),
                GitHubErrorKind::RemoteMoved,
                409,
                "E004",
            ),
            (
                resp(
                    422,
                    &[],
                    json!({"message": "Validation Failed", "errors": [{"message": "A pull request already exists for o:b."}]}),
                ),
                GitHubErrorKind::PullExists,
                409,
                "E004",
            ),
            (
                resp(422, &[], json!({"message": "Reference already exists"})),
                GitHubErrorKind::BranchExists,
                409,
                "E004",
            ),
            (
                resp(422, &[], json!({"message": "Invalid request"})),
                GitHubErrorKind::Invalid,
                400,
                "E004",
            ),
            (
                resp(
                    403,
                    &[
                        ("x-ratelimit-remaining", "0"),
                        ("x-ratelimit-reset", "1700000000"),
                    ],
                    json!({"message": "API rate limit exceeded"}),
                ),
                GitHubErrorKind::RateLimited,
                429,
                "E003",
            ),
            (
                resp(502, &[], json!({})),
                GitHubErrorKind::Unavailable,
                502,
                "E000",
            ),
        ];
        for (r, kind, status, code) in cases {
            let e = classify(&r, "do it");
            assert_eq!(e.kind, kind, "{r:?}");
            let api = e.to_api_error();
            assert_eq!(api.status, status, "{e:?}");
            assert_eq!(format!("{:?}", api.code), code, "{e:?}");
            assert!(!api.message.is_empty());
        }
        let scope = classify(
            &resp(403, &[], json!({"message": "nope"})),
            "create the repository",
        )
        .to_api_error();
        assert!(scope.message.contains("`repo` scope"), "{}", scope.message);
        // A 404 for a token without the accepted scope is a scope problem, not a missing thing.
        let hidden = classify(
            &resp(
                404,
                &[
                    ("X-Accepted-OAuth-Scopes", "repo"),
                    ("X-OAuth-Scopes", "read:user"),
                ],
                json!({"message": "Not Found"}),
            ),
            "create the repository",
        );
        assert_eq!(hidden.kind, GitHubErrorKind::Forbidden);
        assert!(
            hidden.message.contains("lacks the repo scope"),
            "{}",
            hidden.message
        );
        let held = classify(
            &resp(
                404,
                &[
                    ("X-Accepted-OAuth-Scopes", "repo"),
                    ("X-OAuth-Scopes", "repo, user"),
                ],
                json!({"message": "Not Found"}),
            ),
            "read the branch",
        );
        assert_eq!(held.kind, GitHubErrorKind::NotFound);
    }

    #[test]
    fn retries_only_where_github_says_to() {
        // Retry-After on a 403 secondary limit: waited out, then the call succeeds.
        let http = Scripted::default();
        http.answers.borrow_mut().extend([
            resp(
                403,
                &[("Retry-After", "2")],
                json!({"message": "You have exceeded a secondary rate limit"}),
            ),
            resp(
                429,
                &[],
                json!({"message": "You have exceeded a secondary rate limit."}),
            ),
            resp(200, &[], json!({"login": "octo"})),
        ]);
        let gh = GitHub::new(&http, "http://gh.test", "t");
        assert_eq!(run(gh.user()).unwrap().login, "octo");
        assert_eq!(*http.slept.borrow(), vec![2000, 2 * SECONDARY_BACKOFF_MS]);

        // A plain 500, a 404, a primary limit: no retry.
        for r in [
            resp(500, &[], json!({})),
            resp(404, &[], json!({"message": "Not Found"})),
            resp(
                403,
                &[("x-ratelimit-remaining", "0")],
                json!({"message": "API rate limit exceeded"}),
            ),
        ] {
            let http = Scripted::default();
            http.answers.borrow_mut().push(r);
            let gh = GitHub::new(&http, "http://gh.test", "t");
            assert!(run(gh.user()).is_err());
            assert_eq!(http.sent.borrow().len(), 1);
            assert!(http.slept.borrow().is_empty());
        }

        // A wait longer than MAX_WAIT_MS is reported with its Retry-After, not waited.
        let http = Scripted::default();
        http.answers.borrow_mut().push(resp(
            429,
            &[("Retry-After", "120")],
            json!({"message": "slow down"}),
        ));
        let gh = GitHub::new(&http, "http://gh.test", "t");
        let e = run(gh.user()).unwrap_err();
        assert_eq!(
            (e.kind, e.retry_after_secs),
            (GitHubErrorKind::RateLimited, Some(120))
        );
        assert_eq!(
            e.to_api_error()
                .fields
                .get("retryAfter")
                .map(String::as_str),
            Some("120")
        );

        // Retries stop after MAX_ATTEMPTS.
        let http = Scripted::default();
        for _ in 0..5 {
            http.answers.borrow_mut().push(resp(
                429,
                &[("Retry-After", "1")],
                json!({"message": "slow down"}),
            ));
        }
        let gh = GitHub::new(&http, "http://gh.test", "t");
        assert_eq!(
            run(gh.user()).unwrap_err().kind,
            GitHubErrorKind::RateLimited
        );
        assert_eq!(http.sent.borrow().len() as u32, MAX_ATTEMPTS);
    }

    #[test]
    fn a_missing_branch_is_none_and_transport_failures_are_unavailable() {
        let http = Scripted::default();
        http.answers
            .borrow_mut()
            .push(resp(404, &[], json!({"message": "Not Found"})));
        let gh = GitHub::new(&http, "http://gh.test", "t");
        assert_eq!(run(gh.branch_head("o", "r", "main")).unwrap(), None);
        let e = run(gh.user()).unwrap_err();
        assert_eq!(e.kind, GitHubErrorKind::Unavailable);
    }
}
