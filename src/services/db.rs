//! D1 repositories: every SQL statement the Worker and its Durable Objects run against `DB`, with
//! bound parameters only (no object prepares SQL of its own).
//!
//! Invariant: ownership is part of every write's WHERE clause (`id = ? AND user_id = ?`), so a
//! handler cannot forget it; "no row changed" means "not yours or not there", which is one 404.

use crate::domain::apps::{AppPatch, AppRecord, ListSql, NewApp, SqlArg};
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::{AppId, SessionId, UserId};
use crate::domain::input::Patch;
use crate::domain::sandbox::Status;
use crate::http::internal;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

pub use crate::http::DB_BINDING as BINDING;

pub(super) fn text(s: impl AsRef<str>) -> JsValue {
    JsValue::from_str(s.as_ref())
}

pub(super) fn int(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

pub(super) fn opt(s: Option<&str>) -> JsValue {
    s.map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

fn args(a: &[SqlArg]) -> Vec<JsValue> {
    a.iter()
        .map(|a| match a {
            SqlArg::Text(s) => text(s),
            SqlArg::Int(n) => int(*n),
        })
        .collect()
}

pub(super) fn stmt(
    db: &D1Database,
    sql: &str,
    binds: &[JsValue],
) -> ApiResult<D1PreparedStatement> {
    Ok(db.prepare(sql).bind(binds)?)
}

pub(super) async fn first<T: DeserializeOwned>(
    db: &D1Database,
    sql: &str,
    binds: &[JsValue],
) -> ApiResult<Option<T>> {
    Ok(stmt(db, sql, binds)?.first::<T>(None).await?)
}

pub(super) async fn all<T: DeserializeOwned>(
    db: &D1Database,
    sql: &str,
    binds: &[JsValue],
) -> ApiResult<Vec<T>> {
    Ok(stmt(db, sql, binds)?.all().await?.results::<T>()?)
}

/// Runs a write and returns how many rows it changed.
pub(super) async fn run(db: &D1Database, sql: &str, binds: &[JsValue]) -> ApiResult<u64> {
    let r = stmt(db, sql, binds)?.run().await?;
    Ok(r.meta()?.and_then(|m| m.changes).unwrap_or(0) as u64)
}

pub(super) fn is_unique_violation(e: &worker::Error) -> bool {
    e.to_string().contains("UNIQUE constraint failed")
}

// ---------------------------------------------------------------- users

#[derive(Debug, Clone, Deserialize)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub provider: Option<String>,
    pub role: String,
    pub created_at: Option<f64>,
    pub last_login: Option<f64>,
    /// When the address was proved (see `services::identity`); `None`: not yet.
    pub email_verified_at: Option<f64>,
    /// An address change waiting for its verification link.
    pub pending_email: Option<String>,
}

pub(super) const USER_COLUMNS: &str =
    "id, email, display_name, avatar_url, provider, role, created_at, last_login, email_verified_at, pending_email";

impl UserRow {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "email": self.email,
            "displayName": self.display_name.clone().unwrap_or_default(),
            "avatarUrl": self.avatar_url,
            "provider": self.provider,
            "role": self.role,
            "createdAt": crate::domain::apps::iso(self.created_at),
            "lastLogin": crate::domain::apps::iso(self.last_login),
            "emailVerified": self.email_verified(),
            "pendingEmail": self.pending_email,
        })
    }

    pub fn email_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }
}

pub async fn user_by_id(db: &D1Database, id: &UserId) -> ApiResult<Option<UserRow>> {
    first(
        db,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        &[text(id)],
    )
    .await
}

pub async fn user_by_email(db: &D1Database, email: &str) -> ApiResult<Option<UserRow>> {
    first(
        db,
        &format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1"),
        &[text(email)],
    )
    .await
}

#[derive(Deserialize)]
pub struct Credential {
    pub password_hash: String,
}

pub async fn password_hash(db: &D1Database, user_id: &UserId) -> ApiResult<Option<String>> {
    let c: Option<Credential> = first(
        db,
        "SELECT password_hash FROM password_credentials WHERE user_id = ?1",
        &[text(user_id)],
    )
    .await?;
    Ok(c.map(|c| c.password_hash))
}

pub struct NewUser<'a> {
    pub id: &'a UserId,
    pub email: &'a str,
    pub display_name: &'a str,
    pub avatar_url: Option<&'a str>,
    pub provider: &'a str,
    pub provider_user_id: Option<&'a str>,
    pub role: &'a str,
}

pub(super) fn insert_user(db: &D1Database, u: &NewUser<'_>) -> ApiResult<D1PreparedStatement> {
    stmt(
        db,
        "INSERT INTO users (id, email, display_name, avatar_url, provider, provider_user_id, role, last_login) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, unixepoch())",
        &[text(u.id), text(u.email), text(u.display_name), opt(u.avatar_url), text(u.provider), opt(u.provider_user_id), text(u.role)],
    )
}

/// Creates a password user atomically (user row and credential together). `Ok(false)`: the email
/// is taken.
pub async fn create_password_user(db: &D1Database, u: &NewUser<'_>, hash: &str) -> ApiResult<bool> {
    let cred = stmt(
        db,
        "INSERT INTO password_credentials (user_id, password_hash) VALUES (?1, ?2)",
        &[text(u.id), text(hash)],
    )?;
    match db.batch(vec![insert_user(db, u)?, cred]).await {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Records a sign-in and sets the role the configuration gives the account now (promoting or
/// demoting).
pub async fn touch_login(db: &D1Database, user_id: &UserId, role: &str) -> ApiResult<()> {
    run(
        db,
        "UPDATE users SET last_login = unixepoch(), role = ?2 WHERE id = ?1",
        &[text(user_id), text(role)],
    )
    .await?;
    Ok(())
}

pub async fn list_users(
    db: &D1Database,
    limit: u32,
    offset: u64,
) -> ApiResult<(Vec<UserRow>, u64)> {
    let rows = all(
        db,
        &format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_at DESC, id DESC LIMIT ?1 OFFSET ?2"
        ),
        &[int(limit as i64), int(offset as i64)],
    )
    .await?;
    Ok((
        rows,
        count(db, "SELECT COUNT(*) AS total FROM users", &[]).await?,
    ))
}

#[derive(Deserialize)]
struct Total {
    total: f64,
}

async fn count(db: &D1Database, sql: &str, binds: &[JsValue]) -> ApiResult<u64> {
    Ok(first::<Total>(db, sql, binds)
        .await?
        .map(|t| t.total as u64)
        .unwrap_or(0))
}

// ---------------------------------------------------------------- sessions

pub async fn create_session(
    db: &D1Database,
    id: &SessionId,
    user_id: &UserId,
    provider: &str,
    expires_at: i64,
) -> ApiResult<()> {
    run(
        db,
        "INSERT INTO sessions (id, user_id, provider, expires_at) VALUES (?1, ?2, ?3, ?4)",
        &[text(id), text(user_id), text(provider), int(expires_at)],
    )
    .await?;
    Ok(())
}

/// True when the session exists, belongs to the user, and is neither revoked nor expired.
pub async fn session_is_live(db: &D1Database, id: &SessionId, user_id: &UserId) -> ApiResult<bool> {
    Ok(count(
        db,
        "SELECT COUNT(*) AS total FROM sessions WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL AND expires_at > unixepoch()",
        &[text(id), text(user_id)],
    )
    .await?
        > 0)
}

/// The ids of a user's sessions that are neither revoked nor expired.
pub async fn live_sessions(db: &D1Database, user_id: &UserId) -> ApiResult<Vec<SessionId>> {
    #[derive(Deserialize)]
    struct Sid {
        id: SessionId,
    }
    let rows: Vec<Sid> = all(
        db,
        "SELECT id FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > unixepoch()",
        &[text(user_id)],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

pub async fn revoke_session(db: &D1Database, id: &SessionId, user_id: &UserId) -> ApiResult<()> {
    run(
        db,
        "UPDATE sessions SET revoked_at = unixepoch() WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        &[text(id), text(user_id)],
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- oauth state

pub async fn save_oauth_state(
    db: &D1Database,
    state: &str,
    provider: &str,
    verifier: &str,
    redirect: &str,
    expires_at: i64,
) -> ApiResult<()> {
    // Opportunistic clean-up keeps the table small without a cron.
    run(
        db,
        "DELETE FROM oauth_states WHERE expires_at < unixepoch()",
        &[],
    )
    .await?;
    run(
        db,
        "INSERT INTO oauth_states (state, provider, code_verifier, redirect_to, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[text(state), text(provider), text(verifier), text(redirect), int(expires_at)],
    )
    .await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct OAuthState {
    pub provider: String,
    pub code_verifier: String,
    pub redirect_to: String,
    pub expires_at: f64,
}

/// Takes a state out of the table: a second use of the same state finds nothing.
pub async fn take_oauth_state(db: &D1Database, state: &str) -> ApiResult<Option<OAuthState>> {
    first(
        db,
        "DELETE FROM oauth_states WHERE state = ?1 RETURNING provider, code_verifier, redirect_to, expires_at",
        &[text(state)],
    )
    .await
}

// ---------------------------------------------------------------- apps

const APP_COLUMNS: &str =
    "id, user_id, title, description, visibility, config, tags, files, container_state, is_deployed, deploy_url, created_at, updated_at";

pub async fn app_by_id(db: &D1Database, id: &AppId) -> ApiResult<Option<AppRecord>> {
    first(
        db,
        &format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?1"),
        &[text(id)],
    )
    .await
}

/// One page of apps and the total, in one round trip.
pub async fn list_apps(db: &D1Database, sql: &ListSql) -> ApiResult<(Vec<AppRecord>, u64)> {
    let rows = stmt(db, &sql.rows, &args(&sql.rows_args))?;
    let count = stmt(db, &sql.count, &args(&sql.count_args))?;
    let mut results = db.batch(vec![rows, count]).await?.into_iter();
    let (Some(rows), Some(totals)) = (results.next(), results.next()) else {
        return Err(ApiError::internal());
    };
    let rows: Vec<AppRecord> = rows.results()?;
    let totals: Vec<Total> = totals.results()?;
    Ok((rows, totals.first().map(|t| t.total as u64).unwrap_or(0)))
}

/// Inserts an app unless the owner already has `max_apps`; the check and the insert are one
/// statement, so concurrent creates cannot overshoot. `Ok(false)`: the limit is reached.
pub async fn create_app(
    db: &D1Database,
    id: &AppId,
    user_id: &UserId,
    app: &NewApp,
    max_apps: u64,
) -> ApiResult<bool> {
    let tags = serde_json::to_string(&app.tags).map_err(internal)?;
    let config = serde_json::to_string(&app.config).map_err(internal)?;
    let changed = run(
        db,
        "INSERT INTO apps (id, user_id, title, description, visibility, config, tags, files) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, '{}' WHERE (SELECT COUNT(*) FROM apps WHERE user_id = ?2) < ?8",
        &[
            text(id),
            text(user_id),
            text(&app.title),
            opt(app.description.as_deref()),
            text(app.visibility.as_str()),
            text(&config),
            text(&tags),
            int(max_apps as i64),
        ],
    )
    .await?;
    Ok(changed > 0)
}

/// Applies a patch to the caller's own app. `Ok(false)`: no such app of theirs.
pub async fn patch_app(
    db: &D1Database,
    id: &AppId,
    user_id: &UserId,
    p: &AppPatch,
) -> ApiResult<bool> {
    let mut sets = vec!["updated_at = unixepoch()".to_string()];
    let mut binds = vec![text(id), text(user_id)];
    let mut set = |col: &str, v: JsValue| {
        binds.push(v);
        sets.push(format!("{col} = ?{}", binds.len()));
    };
    if let Some(t) = &p.title {
        set("title", text(t));
    }
    match &p.description {
        Patch::Value(d) => set("description", text(d)),
        Patch::Null => set("description", JsValue::NULL),
        Patch::Absent => {}
    }
    if let Some(v) = p.visibility {
        set("visibility", text(v.as_str()));
    }
    if let Some(t) = &p.tags {
        set("tags", text(&serde_json::to_string(t).map_err(internal)?));
    }
    if let Some(c) = &p.config {
        set("config", text(&serde_json::to_string(c).map_err(internal)?));
    }
    let sql = format!(
        "UPDATE apps SET {} WHERE id = ?1 AND user_id = ?2",
        sets.join(", ")
    );
    Ok(run(db, &sql, &binds).await? > 0)
}

// ---------------------------------------------------------------- deletions

/// The sandbox statuses that hold a place in the owner's quota.
const ACTIVE_SANDBOX: &str = "('creating', 'writing_files', 'installing', 'starting', 'ready')";

/// Records the pending deletion of each app the statement's `FROM apps a WHERE …` selects:
/// `first_step` is the plan's first step; the sandbox keeps its quota place if it is active.
fn record_deletions(where_apps: &str) -> String {
    format!(
        "INSERT OR IGNORE INTO app_deletions (app_id, user_id, next_step, holds_sandbox) \
         SELECT a.id, a.user_id, ?3, EXISTS (SELECT 1 FROM sandboxes s WHERE s.app_id = a.id AND s.status IN {ACTIVE_SANDBOX}) \
         FROM apps a WHERE {where_apps} RETURNING app_id"
    )
}

/// Removes the owner's app row (hiding the app everywhere at once; its usage rows are detached
/// by the foreign key) and records its pending deletion, in one batch. `Ok(false)`: no such app
/// of theirs.
pub async fn schedule_app_deletion(
    db: &D1Database,
    app_id: &AppId,
    user_id: &UserId,
    first_step: &str,
) -> ApiResult<bool> {
    let binds = [text(app_id), text(user_id), text(first_step)];
    let record = stmt(
        db,
        &record_deletions("a.id = ?1 AND a.user_id = ?2"),
        &binds,
    )?;
    let delete = stmt(
        db,
        "DELETE FROM apps WHERE id = ?1 AND user_id = ?2",
        &binds[..2],
    )?;
    let results = db.batch(vec![record, delete]).await?;
    let changed = results
        .get(1)
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0);
    Ok(changed > 0)
}

/// Deletes an account in one batch: every app of it (each recorded as a pending deletion), then
/// the user row, whose foreign keys take its sessions, OAuth links, password, provider keys and
/// model settings with it and detach its usage rows. Returns the apps whose deletion it recorded.
pub async fn delete_account(
    db: &D1Database,
    user_id: &UserId,
    first_step: &str,
) -> ApiResult<Vec<AppId>> {
    let record = stmt(
        db,
        &record_deletions("a.user_id = ?2"),
        &[JsValue::NULL, text(user_id), text(first_step)],
    )?;
    let apps = stmt(db, "DELETE FROM apps WHERE user_id = ?1", &[text(user_id)])?;
    let user = stmt(db, "DELETE FROM users WHERE id = ?1", &[text(user_id)])?;
    let results = db.batch(vec![record, apps, user]).await?;
    #[derive(Deserialize)]
    struct Row {
        app_id: AppId,
    }
    let rows: Vec<Row> = match results.first() {
        Some(r) => r.results()?,
        None => Vec::new(),
    };
    Ok(rows.into_iter().map(|r| r.app_id).collect())
}

/// The ids of the user's apps.
pub async fn app_ids_of(db: &D1Database, user_id: &UserId) -> ApiResult<Vec<AppId>> {
    #[derive(Deserialize)]
    struct Row {
        id: AppId,
    }
    let rows: Vec<Row> = all(
        db,
        "SELECT id FROM apps WHERE user_id = ?1",
        &[text(user_id)],
    )
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// When the user's session was opened (epoch seconds), if it is theirs.
pub async fn session_created_at(
    db: &D1Database,
    id: &SessionId,
    user_id: &UserId,
) -> ApiResult<Option<i64>> {
    #[derive(Deserialize)]
    struct Row {
        created_at: f64,
    }
    let row: Option<Row> = first(
        db,
        "SELECT created_at FROM sessions WHERE id = ?1 AND user_id = ?2",
        &[text(id), text(user_id)],
    )
    .await?;
    Ok(row.map(|r| r.created_at as i64))
}

/// A pending app deletion, as journalled.
#[derive(Debug, Clone, Deserialize)]
pub struct DeletionRow {
    pub next_step: String,
    pub holds_sandbox: f64,
    pub attempts: f64,
    pub last_error: Option<String>,
}

pub async fn app_deletion(
    db: &D1Database,
    app_id: &AppId,
    user_id: &UserId,
) -> ApiResult<Option<DeletionRow>> {
    first(
        db,
        "SELECT next_step, holds_sandbox, attempts, last_error FROM app_deletions WHERE app_id = ?1 AND user_id = ?2",
        &[text(app_id), text(user_id)],
    )
    .await
}

/// Journals a deletion's progress.
pub async fn record_app_deletion(
    db: &D1Database,
    app_id: &AppId,
    user_id: &UserId,
    next_step: &str,
    holds_sandbox: bool,
    attempts: u32,
    last_error: Option<&str>,
) -> ApiResult<()> {
    run(
        db,
        "UPDATE app_deletions SET next_step = ?3, holds_sandbox = ?4, attempts = ?5, last_error = ?6, \
         updated_at = unixepoch() WHERE app_id = ?1 AND user_id = ?2",
        &[
            text(app_id),
            text(user_id),
            text(next_step),
            int(holds_sandbox as i64),
            int(attempts as i64),
            opt(last_error),
        ],
    )
    .await?;
    Ok(())
}

/// Removes a finished deletion's row.
pub async fn finish_app_deletion(
    db: &D1Database,
    app_id: &AppId,
    user_id: &UserId,
) -> ApiResult<()> {
    run(
        db,
        "DELETE FROM app_deletions WHERE app_id = ?1 AND user_id = ?2",
        &[text(app_id), text(user_id)],
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- sandboxes

/// Claims a sandbox slot for the app unless the owner already has `max` active sandboxes, a
/// deleted app's sandbox counting until its deletion has seen it stopped (the check and the write
/// are one statement). An app whose sandbox is already active keeps its slot.
/// `Ok(false)`: the quota is reached.
pub async fn claim_sandbox(
    db: &D1Database,
    app_id: &AppId,
    user_id: &UserId,
    template: &str,
    max: u64,
) -> ApiResult<bool> {
    let active = ACTIVE_SANDBOX;
    let changed = run(
        db,
        &format!(
            "INSERT INTO sandboxes (app_id, user_id, template, status) \
             SELECT ?1, ?2, ?3, 'creating' \
             WHERE EXISTS (SELECT 1 FROM sandboxes WHERE app_id = ?1 AND status IN {active}) \
                OR (SELECT COUNT(*) FROM sandboxes WHERE user_id = ?2 AND status IN {active}) \
                 + (SELECT COUNT(*) FROM app_deletions WHERE user_id = ?2 AND holds_sandbox = 1) < ?4 \
             ON CONFLICT (app_id) DO UPDATE SET template = excluded.template, \
                status = CASE WHEN sandboxes.status IN {active} THEN sandboxes.status ELSE 'creating' END, \
                updated_at = unixepoch()"
        ),
        &[text(app_id), text(user_id), text(template), int(max as i64)],
    )
    .await?;
    Ok(changed > 0)
}

/// Mirrors a sandbox object's lifecycle step into the owner's row (the quota counts active rows).
/// `Ok(false)`: no such sandbox of theirs.
pub async fn set_sandbox_status(
    db: &D1Database,
    app_id: &AppId,
    user_id: &UserId,
    status: Status,
) -> ApiResult<bool> {
    Ok(run(
        db,
        "UPDATE sandboxes SET status = ?1, updated_at = unixepoch() WHERE app_id = ?2 AND user_id = ?3",
        &[text(status.as_str()), text(app_id), text(user_id)],
    )
    .await?
        > 0)
}

/// Mirrors the code generator's file list and state (JSON) into the owner's app row.
pub async fn mirror_generation(
    db: &D1Database,
    app_id: &AppId,
    user_id: &UserId,
    files_json: &str,
    state_json: &str,
) -> ApiResult<()> {
    run(
        db,
        "UPDATE apps SET files = ?1, container_state = ?2, updated_at = unixepoch() WHERE id = ?3 AND user_id = ?4",
        &[text(files_json), text(state_json), text(app_id), text(user_id)],
    )
    .await?;
    Ok(())
}
