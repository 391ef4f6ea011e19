//! GitHub on the platform: the HTTP port of `domain::github` over `Fetch`, the exporter app's
//! code-for-token exchange, the app's files as its latest saved version in R2, and the D1
//! repository of `migrations/0011_github.sql` (connections, connect states, app repositories,
//! webhook deliveries) and the GitHub columns of orchestration projects and tickets.
//!
//! Invariants:
//! - tokens are stored sealed (AES-256-GCM, bound to their user) and opened only to make a call;
//!   neither a token nor the client secret reaches a log, an error or a response;
//! - a request with no answer within [`REQUEST_TIMEOUT_MS`] is aborted and reported as GitHub
//!   being unavailable;
//! - every statement is scoped by `user_id` where a user owns the row, so one user's rows are
//!   unreachable from another's calls.

use super::db::{first, int, opt, run, text};
use super::orchestrator_access::visible;
use crate::domain::codegen::crypto::{self, Purpose, SealingKey};
use crate::domain::codegen::run::{blob_key, versions_prefix, VersionManifest};
use crate::domain::config::OAuthClient;
use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::github::client::{GitHubHttp, HttpMethod, HttpRequest, HttpResponse};
use crate::domain::github::push::with_template;
use crate::domain::ids::{AppId, ProjectId, TicketId, UserId};
use crate::domain::oauth;
use crate::domain::templates;
use crate::http::internal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{D1Database, Delay, Env, Method};

/// The longest one GitHub request may take.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// The R2 bucket of apps' versions.
const APP_FILES: &str = "APP_FILES";
/// The label tokens are sealed under (the AEAD's associated data, with the user).
const TOKEN_LABEL: &str = "github-exporter";

/// GitHub as reached from the Worker.
#[derive(Debug, Default, Clone, Copy)]
pub struct FetchGitHub;

impl GitHubHttp for FetchGitHub {
    async fn send(&self, req: &HttpRequest) -> Result<HttpResponse, String> {
        let method = match req.method {
            HttpMethod::Get => Method::Get,
            HttpMethod::Post => Method::Post,
            HttpMethod::Patch => Method::Patch,
        };
        let body = req.body.as_deref().map(JsValue::from);
        let request = super::bounded_fetch::request(
            method,
            &req.url,
            req.headers.iter().map(|(k, v)| (k, v)),
            body,
            "GitHub API",
        )?;
        let a = super::bounded_fetch::send(request, REQUEST_TIMEOUT_MS).await?;
        Ok(HttpResponse {
            status: a.status,
            headers: a.headers,
            body: a.body,
        })
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}

fn exchange_error(what: &str) -> ApiError {
    worker::console_error!("github connect: {what}");
    ApiError::new(
        502,
        ErrorCode::E001,
        format!("GitHub did not complete the connection: {what}"),
    )
}

/// A granted token and its scopes (GitHub's `scope`, comma-separated).
pub struct Grant {
    pub token: String,
    pub scopes: String,
}

/// Exchanges the connect flow's code (with its PKCE verifier) for a token.
pub async fn exchange_code(
    client: &OAuthClient,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> ApiResult<Grant> {
    let req = HttpRequest {
        method: HttpMethod::Post,
        url: client.endpoints.token.clone(),
        headers: vec![
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("Accept".into(), "application/json".into()),
            (
                "User-Agent".into(),
                crate::domain::github::client::USER_AGENT.into(),
            ),
        ],
        body: Some(oauth::token_request_body(
            code,
            redirect_uri,
            &client.client_id,
            &client.client_secret,
            verifier,
        )),
    };
    let resp = FetchGitHub
        .send(&req)
        .await
        .map_err(|_| exchange_error("GitHub could not be reached"))?;
    let body: serde_json::Value = serde_json::from_slice(&resp.body)
        .map_err(|_| exchange_error(&format!("HTTP {} without JSON", resp.status)))?;
    if !(200..300).contains(&resp.status) {
        return Err(exchange_error(&format!("HTTP {}", resp.status)));
    }
    let token = oauth::access_token(&body).map_err(|e| exchange_error(&e))?;
    let scopes = body
        .get("scope")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok(Grant { token, scopes })
}

// ---------------------------------------------------------------- the app's files

/// Whether the app has a saved version (without reading it).
pub async fn has_saved_version(env: &Env, app_id: &AppId) -> ApiResult<bool> {
    let page = env
        .bucket(APP_FILES)?
        .list()
        .prefix(versions_prefix(app_id.as_str()))
        .limit(1)
        .execute()
        .await?;
    Ok(!page.objects().is_empty())
}

#[derive(Deserialize)]
struct TemplateRow {
    template: String,
}

/// The app's files as its repository holds them: its latest saved version over the template it
/// was made from (its sandbox's, else the default; [`with_template`]): `(version, path →
/// content)`; `None` before the first version.
pub async fn app_files(
    env: &Env,
    db: &D1Database,
    app_id: &AppId,
) -> ApiResult<Option<(u32, BTreeMap<String, Vec<u8>>)>> {
    let Some((version, saved)) = saved_files(env, app_id).await? else {
        return Ok(None);
    };
    let row: Option<TemplateRow> = first(
        db,
        "SELECT template FROM sandboxes WHERE app_id = ?1",
        &[text(app_id.as_str())],
    )
    .await?;
    let template = row
        .and_then(|r| templates::find(&r.template))
        .or_else(|| templates::find(templates::DEFAULT))
        .expect("the default template exists");
    let base = template.sources.iter().chain(template.extra.iter());
    Ok(Some((version, with_template(base, saved))))
}

/// The app's files as its latest saved version has them: `(version, path → content)`; `None`
/// before the first version.
pub async fn saved_files(
    env: &Env,
    app_id: &AppId,
) -> ApiResult<Option<(u32, BTreeMap<String, Vec<u8>>)>> {
    let bucket = env.bucket(APP_FILES)?;
    let prefix = versions_prefix(app_id.as_str());
    // Keys are zero-padded: the last listed is the newest.
    let mut last: Option<String> = None;
    let mut cursor: Option<String> = None;
    loop {
        let mut list = bucket.list().prefix(prefix.clone()).limit(1000);
        if let Some(c) = cursor.take() {
            list = list.cursor(c);
        }
        let page = list.execute().await?;
        if let Some(o) = page.objects().last() {
            last = Some(o.key());
        }
        match (page.truncated(), page.cursor()) {
            (true, Some(c)) => cursor = Some(c),
            _ => break,
        }
    }
    let Some(key) = last else {
        return Ok(None);
    };
    version_files_at(&bucket, app_id, &key).await
}

/// The app's files as its saved version `version` has them (`None`: no such version).
pub async fn version_files(
    env: &Env,
    app_id: &AppId,
    version: u32,
) -> ApiResult<Option<(u32, BTreeMap<String, Vec<u8>>)>> {
    let bucket = env.bucket(APP_FILES)?;
    let key = crate::domain::codegen::run::version_key(app_id.as_str(), version);
    if super::r2::get_bytes(&bucket, &key).await?.is_none() {
        return Ok(None);
    }
    version_files_at(&bucket, app_id, &key).await
}

async fn version_files_at(
    bucket: &worker::Bucket,
    app_id: &AppId,
    key: &str,
) -> ApiResult<Option<(u32, BTreeMap<String, Vec<u8>>)>> {
    let bytes = super::r2::get_bytes(bucket, key)
        .await?
        .ok_or_else(ApiError::internal)?;
    let manifest = VersionManifest::parse(&bytes).map_err(internal)?;
    let mut files = BTreeMap::new();
    for f in &manifest.files {
        let content = super::r2::get_bytes(bucket, &blob_key(app_id.as_str(), &f.hash))
            .await?
            .ok_or_else(|| {
                worker::console_error!("app {app_id}: blob of {} is missing", f.path);
                ApiError::internal()
            })?;
        files.insert(f.path.clone(), content);
    }
    Ok(Some((manifest.version, files)))
}

/// Saves `files` as the app's version `version` in R2 (content-addressed blobs, then the
/// manifest, the way the code generator saves its versions), so the app's files, its export and
/// its project's analysis read them like any other app's.
pub async fn save_version(
    env: &Env,
    app_id: &AppId,
    version: u32,
    label: &str,
    files: &BTreeMap<String, String>,
) -> ApiResult<()> {
    use crate::domain::codegen::run::{content_hash, version_key, WrittenFile};
    let bucket = env.bucket(APP_FILES)?;
    let mut written = BTreeMap::new();
    for (path, content) in files {
        let hash = content_hash(content);
        bucket
            .put(blob_key(app_id.as_str(), &hash), content.clone())
            .execute()
            .await?;
        written.insert(
            path.clone(),
            WrittenFile {
                hash,
                bytes: content.len() as u64,
            },
        );
    }
    let manifest = VersionManifest::new(app_id.as_str(), version, label, super::now_ms(), &written);
    bucket
        .put(version_key(app_id.as_str(), version), manifest.to_json())
        .custom_metadata(manifest.metadata())
        .execute()
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- connections

/// A user's connection as shown: never the token.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectionRow {
    pub login: String,
    pub scopes: String,
    pub updated_at: f64,
}

pub async fn connection(db: &D1Database, user: &UserId) -> ApiResult<Option<ConnectionRow>> {
    first(
        db,
        "SELECT login, scopes, updated_at FROM github_connections WHERE user_id = ?1",
        &[text(user)],
    )
    .await
}

/// The connected account's login and token, opened; `None` when not connected.
pub async fn token(
    db: &D1Database,
    key: &SealingKey,
    user: &UserId,
) -> ApiResult<Option<(String, String)>> {
    #[derive(Deserialize)]
    struct Row {
        login: String,
        sealed_token: String,
    }
    let Some(row) = first::<Row>(
        db,
        "SELECT login, sealed_token FROM github_connections WHERE user_id = ?1",
        &[text(user)],
    )
    .await?
    else {
        return Ok(None);
    };
    match crypto::open_for(
        key,
        Purpose::GitHubToken,
        user.as_str(),
        TOKEN_LABEL,
        &row.sealed_token,
    ) {
        Ok(t) => Ok(Some((row.login, t))),
        Err(e) => {
            // A changed SECRETS_ENCRYPTION_KEY: the connection is unusable, and says so.
            worker::console_error!("github token of {user} does not open: {e}");
            Err(ApiError::new(
                409,
                ErrorCode::E004,
                "the stored GitHub connection can no longer be read; connect GitHub again",
            ))
        }
    }
}

pub async fn put_connection(
    db: &D1Database,
    key: &SealingKey,
    user: &UserId,
    login: &str,
    grant: &Grant,
) -> ApiResult<()> {
    let sealed = crypto::seal_for(
        key,
        Purpose::GitHubToken,
        user.as_str(),
        TOKEN_LABEL,
        &grant.token,
        crate::domain::random::bytes::<12>(),
    );
    run(
        db,
        "INSERT INTO github_connections (user_id, login, scopes, sealed_token) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (user_id) DO UPDATE SET login = excluded.login, scopes = excluded.scopes, \
         sealed_token = excluded.sealed_token, updated_at = unixepoch()",
        &[text(user), text(login), text(&grant.scopes), text(&sealed)],
    )
    .await
    .map(|_| ())
}

pub async fn delete_connection(db: &D1Database, user: &UserId) -> ApiResult<bool> {
    Ok(run(
        db,
        "DELETE FROM github_connections WHERE user_id = ?1",
        &[text(user)],
    )
    .await?
        > 0)
}

// ---------------------------------------------------------------- connect states

pub async fn save_state(
    db: &D1Database,
    state: &str,
    user: &UserId,
    verifier: &str,
    redirect: &str,
    expires_at: i64,
) -> ApiResult<()> {
    run(
        db,
        "DELETE FROM github_oauth_states WHERE expires_at < unixepoch()",
        &[],
    )
    .await?;
    run(
        db,
        "INSERT INTO github_oauth_states (state, user_id, code_verifier, redirect_to, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            text(state),
            text(user),
            text(verifier),
            text(redirect),
            int(expires_at),
        ],
    )
    .await
    .map(|_| ())
}

#[derive(Deserialize)]
pub struct StateRow {
    pub user_id: UserId,
    pub code_verifier: String,
    pub redirect_to: String,
    pub expires_at: f64,
}

/// Takes a state out: a second use finds nothing.
pub async fn take_state(db: &D1Database, state: &str) -> ApiResult<Option<StateRow>> {
    first(
        db,
        "DELETE FROM github_oauth_states WHERE state = ?1 \
         RETURNING user_id, code_verifier, redirect_to, expires_at",
        &[text(state)],
    )
    .await
}

// ---------------------------------------------------------------- app repositories

#[derive(Debug, Clone, Deserialize)]
pub struct AppRepoRow {
    pub owner: String,
    pub name: String,
    pub html_url: String,
    pub branch: String,
    pub private: f64,
    pub last_commit_sha: Option<String>,
    pub last_pushed_at: Option<f64>,
    pub created_at: f64,
}

impl AppRepoRow {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "owner": self.owner,
            "name": self.name,
            "fullName": format!("{}/{}", self.owner, self.name),
            "url": self.html_url,
            "branch": self.branch,
            "private": self.private != 0.0,
            "lastCommitSha": self.last_commit_sha,
            "lastCommitUrl": self.last_commit_sha.as_ref().map(|s| format!("{}/commit/{s}", self.html_url)),
            "lastPushedAt": self.last_pushed_at.map(|t| t as i64),
            "linkedAt": self.created_at as i64,
        })
    }
}

pub async fn app_repo(
    db: &D1Database,
    app: &AppId,
    user: &UserId,
) -> ApiResult<Option<AppRepoRow>> {
    first(
        db,
        "SELECT owner, name, html_url, branch, private, last_commit_sha, last_pushed_at, created_at \
         FROM app_github_repos WHERE app_id = ?1 AND user_id = ?2",
        &[text(app), text(user)],
    )
    .await
}

/// Links the app to a repository; `false` when it already has one.
#[allow(clippy::too_many_arguments)]
pub async fn link_app_repo(
    db: &D1Database,
    app: &AppId,
    user: &UserId,
    owner: &str,
    name: &str,
    html_url: &str,
    branch: &str,
    private: bool,
    head: Option<&str>,
) -> ApiResult<bool> {
    let r = super::db::stmt(
        db,
        "INSERT INTO app_github_repos (app_id, user_id, owner, name, html_url, branch, private, last_commit_sha) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            text(app),
            text(user),
            text(owner),
            text(name),
            text(html_url),
            text(branch),
            int(private as i64),
            opt(head),
        ],
    )?
    .run()
    .await;
    match r {
        Ok(_) => Ok(true),
        Err(e) if super::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Records a push: the branch is now at `head`, if it was still at `expected` in our records
/// (a concurrent push of the same app that finished first wins); whether it was recorded.
pub async fn record_push(
    db: &D1Database,
    app: &AppId,
    user: &UserId,
    expected: Option<&str>,
    head: &str,
) -> ApiResult<bool> {
    Ok(run(
        db,
        "UPDATE app_github_repos SET last_commit_sha = ?3, last_pushed_at = unixepoch() \
         WHERE app_id = ?1 AND user_id = ?2 AND last_commit_sha IS ?4",
        &[text(app), text(user), text(head), opt(expected)],
    )
    .await?
        > 0)
}

pub async fn unlink_app_repo(db: &D1Database, app: &AppId, user: &UserId) -> ApiResult<bool> {
    Ok(run(
        db,
        "DELETE FROM app_github_repos WHERE app_id = ?1 AND user_id = ?2",
        &[text(app), text(user)],
    )
    .await?
        > 0)
}

// ---------------------------------------------------------------- projects and tickets

/// Links an orchestration project `user` may see to its repository, unless it has one;
/// whether it was linked.
pub async fn link_project_repo(
    db: &D1Database,
    user: &UserId,
    project: &ProjectId,
    url: &str,
    full_name: &str,
    branch: &str,
) -> ApiResult<bool> {
    Ok(run(
        db,
        &format!(
            "UPDATE orchestration_projects SET github_repo_url = ?3, github_repo_name = ?4, \
             github_default_branch = ?5, updated_at = unixepoch() \
             WHERE id = ?2 AND github_repo_url IS NULL AND {}",
            visible("orchestration_projects", 1)
        ),
        &[
            text(user),
            text(project),
            text(url),
            text(full_name),
            text(branch),
        ],
    )
    .await?
        > 0)
}

/// A ticket on branch `branch` of a project linked to repository `repo` (`owner/name`, as
/// GitHub spells it, compared without case), with the project's stakeholder.
#[derive(Debug, Clone, Deserialize)]
pub struct BranchTicket {
    pub id: TicketId,
    pub stakeholder_user_id: UserId,
}

pub async fn tickets_on_branch(
    db: &D1Database,
    repo: &str,
    branch: &str,
) -> ApiResult<Vec<BranchTicket>> {
    super::db::all(
        db,
        "SELECT t.id, p.stakeholder_user_id FROM orchestration_tickets t \
         JOIN orchestration_projects p ON p.id = t.project_id \
         WHERE lower(p.github_repo_name) = lower(?1) AND t.branch_name = ?2 LIMIT 100",
        &[text(repo), text(branch)],
    )
    .await
}

// ---------------------------------------------------------------- webhook deliveries

/// Claims a delivery id; `false` when it was handled before (a redelivery or a replay).
pub async fn claim_delivery(db: &D1Database, id: &str, event: &str) -> ApiResult<bool> {
    Ok(run(
        db,
        "INSERT INTO github_webhook_deliveries (delivery_id, event) VALUES (?1, ?2) \
         ON CONFLICT (delivery_id) DO NOTHING",
        &[text(id), text(event)],
    )
    .await?
        > 0)
}

/// Gives a claimed delivery id back (its handling failed; a redelivery may try again).
pub async fn release_delivery(db: &D1Database, id: &str) -> ApiResult<()> {
    run(
        db,
        "DELETE FROM github_webhook_deliveries WHERE delivery_id = ?1",
        &[text(id)],
    )
    .await
    .map(|_| ())
}
