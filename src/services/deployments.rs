//! The `deployments` table (migration 0007) and the app's deployed state (`apps.is_deployed`,
//! `apps.deploy_url`). Writes that change what is live are one batch each, with the owner in the
//! app's WHERE, so the table and the app row never disagree.

use super::db::{all, first, int, is_unique_violation, run, stmt, text};
use crate::domain::deploy::call::Deployment;
use crate::domain::deploy::manifest::Manifest;
use crate::domain::deploy::pipeline::{DeployFailure, DeployStatus};
use crate::domain::error::ApiResult;
use crate::http::internal;
use serde::Deserialize;
use worker::D1Database;

const COLUMNS: &str = "id, app_id, number, source_version, rollback_of, status, url, size, content_hash, error, created_at, updated_at";

#[derive(Deserialize)]
struct Row {
    id: String,
    app_id: String,
    number: f64,
    source_version: f64,
    rollback_of: Option<f64>,
    status: String,
    url: Option<String>,
    size: f64,
    content_hash: Option<String>,
    error: Option<String>,
    created_at: f64,
    updated_at: f64,
}

impl Row {
    fn into_deployment(self) -> Deployment {
        Deployment {
            id: self.id,
            app_id: self.app_id,
            number: self.number as u32,
            source_version: self.source_version as u32,
            rollback_of: self.rollback_of.map(|n| n as u32),
            status: DeployStatus::parse(&self.status).unwrap_or(DeployStatus::Failed),
            url: self.url,
            size: self.size as u64,
            content_hash: self.content_hash,
            error: self.error.and_then(|e| serde_json::from_str(&e).ok()),
            created_at: self.created_at as i64,
            updated_at: self.updated_at as i64,
        }
    }
}

/// Every deployment of the app, newest first.
pub async fn list(db: &D1Database, app_id: &str) -> ApiResult<Vec<Deployment>> {
    let rows: Vec<Row> = all(
        db,
        &format!("SELECT {COLUMNS} FROM deployments WHERE app_id = ?1 ORDER BY number DESC"),
        &[text(app_id)],
    )
    .await?;
    Ok(rows.into_iter().map(Row::into_deployment).collect())
}

pub async fn get(db: &D1Database, app_id: &str, number: u32) -> ApiResult<Option<Deployment>> {
    let row: Option<Row> = first(
        db,
        &format!("SELECT {COLUMNS} FROM deployments WHERE app_id = ?1 AND number = ?2"),
        &[text(app_id), int(number as i64)],
    )
    .await?;
    Ok(row.map(Row::into_deployment))
}

/// The live deployment of an app that still exists: its number and content hash.
pub async fn live(db: &D1Database, app_id: &str) -> ApiResult<Option<(u32, String)>> {
    #[derive(Deserialize)]
    struct Live {
        number: f64,
        content_hash: Option<String>,
    }
    let row: Option<Live> = first(
        db,
        "SELECT d.number, d.content_hash FROM deployments d JOIN apps a ON a.id = d.app_id \
         WHERE d.app_id = ?1 AND d.status = 'live'",
        &[text(app_id)],
    )
    .await?;
    Ok(row.and_then(|r| Some((r.number as u32, r.content_hash?))))
}

/// Records deployment `number` of the owner's app as building. `Ok(None)`: another one is
/// building (the partial unique index), or the number is taken.
pub async fn start(
    db: &D1Database,
    app_id: &str,
    user_id: &str,
    rollback_of: Option<u32>,
) -> ApiResult<Option<Deployment>> {
    let id = crate::domain::random::id("dep");
    let insert = stmt(
        db,
        "INSERT INTO deployments (id, app_id, user_id, number, rollback_of, status) \
         SELECT ?1, a.id, a.user_id, \
           (SELECT COALESCE(MAX(number), 0) + 1 FROM deployments WHERE app_id = a.id), ?4, 'building' \
         FROM apps a WHERE a.id = ?2 AND a.user_id = ?3",
        &[
            text(&id),
            text(app_id),
            text(user_id),
            rollback_of.map(|n| int(n as i64)).unwrap_or(worker::wasm_bindgen::JsValue::NULL),
        ],
    )?;
    match insert.run().await {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let row: Option<Row> = first(
        db,
        &format!("SELECT {COLUMNS} FROM deployments WHERE id = ?1"),
        &[text(&id)],
    )
    .await?;
    Ok(row.map(Row::into_deployment))
}

/// Deployment `number` is live (the previous live one superseded, the app deployed at `url`),
/// in one batch.
pub async fn mark_live(
    db: &D1Database,
    app_id: &str,
    number: u32,
    url: &str,
    m: &Manifest,
) -> ApiResult<()> {
    let retire = stmt(
        db,
        "UPDATE deployments SET status = 'superseded', updated_at = unixepoch() \
         WHERE app_id = ?1 AND status = 'live' AND number != ?2",
        &[text(app_id), int(number as i64)],
    )?;
    let live = stmt(
        db,
        "UPDATE deployments SET status = 'live', url = ?3, size = ?4, content_hash = ?5, \
         source_version = ?6, error = NULL, updated_at = unixepoch() WHERE app_id = ?1 AND number = ?2",
        &[
            text(app_id),
            int(number as i64),
            text(url),
            int(m.size() as i64),
            text(m.content_hash()),
            int(m.source_version as i64),
        ],
    )?;
    let app = stmt(
        db,
        "UPDATE apps SET is_deployed = 1, deploy_url = ?2, updated_at = unixepoch() WHERE id = ?1",
        &[text(app_id), text(url)],
    )?;
    db.batch(vec![retire, live, app]).await?;
    Ok(())
}

/// Deployment `number` failed (it never served).
pub async fn mark_failed(
    db: &D1Database,
    app_id: &str,
    number: u32,
    failure: &DeployFailure,
) -> ApiResult<()> {
    let error = serde_json::to_string(failure).map_err(internal)?;
    run(
        db,
        "UPDATE deployments SET status = 'failed', error = ?3, updated_at = unixepoch() \
         WHERE app_id = ?1 AND number = ?2 AND status = 'building'",
        &[text(app_id), int(number as i64), text(&error)],
    )
    .await?;
    Ok(())
}

/// A building row no object is working on (its object lost its job): failed, so the app can be
/// deployed again.
pub async fn fail_orphans(db: &D1Database, app_id: &str) -> ApiResult<u64> {
    let error = serde_json::to_string(&DeployFailure::new(
        "the deployment was interrupted; deploy again",
    ))
    .map_err(internal)?;
    run(
        db,
        "UPDATE deployments SET status = 'failed', error = ?2, updated_at = unixepoch() \
         WHERE app_id = ?1 AND status = 'building'",
        &[text(app_id), text(&error)],
    )
    .await
}

/// The app is taken down: its live deployment undeployed, the app no longer deployed.
/// `Ok(false)`: nothing was live.
pub async fn undeploy(db: &D1Database, app_id: &str) -> ApiResult<bool> {
    let down = stmt(
        db,
        "UPDATE deployments SET status = 'undeployed', updated_at = unixepoch() \
         WHERE app_id = ?1 AND status = 'live'",
        &[text(app_id)],
    )?;
    let app = stmt(
        db,
        "UPDATE apps SET is_deployed = 0, deploy_url = NULL, updated_at = unixepoch() WHERE id = ?1",
        &[text(app_id)],
    )?;
    let results = db.batch(vec![down, app]).await?;
    let changed = results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0);
    Ok(changed > 0)
}
