//! `/api/apps`: the caller's apps (list, create, patch, delete) and public apps (list, get).
//!
//! Invariant: another user's private app answers 404 on every route, exactly like a missing one.

use crate::domain::apps::{AppPatch, AppRecord, ListQuery, NewApp, Scope};
use crate::domain::deletion::DeletionCall;
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::AppId;
use crate::domain::sandbox_call::Owner;
use crate::http::auth::Caller;
use crate::http::{json, json_body, no_content, App};
use crate::objects::deletion_do;
use crate::services::db;
use serde_json::json;
use worker::{Request, Response};

fn not_found() -> ApiError {
    ApiError::not_found("app")
}

async fn list_in(req: &Request, app: &App, scope: Scope) -> ApiResult<Response> {
    let url = req.url()?;
    let q = ListQuery::parse(url.query().unwrap_or(""))?;
    let (rows, total) = db::list_apps(&app.db()?, &q.to_sql(&scope)).await?;
    let apps: Vec<_> = rows.iter().map(AppRecord::summary).collect();
    json(
        200,
        &json!({ "apps": apps, "total": total, "page": q.page, "limit": q.limit, "totalPages": q.total_pages(total) }),
    )
}

pub async fn list(req: Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    list_in(&req, app, Scope::Owner(caller.user_id.clone())).await
}

pub async fn list_public(req: Request, app: &App) -> ApiResult<Response> {
    list_in(&req, app, Scope::Public).await
}

pub async fn create(mut req: Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    let new = NewApp::parse(json_body(&mut req).await?)?;
    let id = AppId::generate();
    let max = app.cfg.max_apps_per_user;
    if !db::create_app(&app.db()?, &id, &caller.user_id, &new, max).await? {
        let mut e = ApiError::new(
            403,
            crate::domain::error::ErrorCode::E004,
            format!("app limit reached: an account can hold at most {max} apps; delete one to create another"),
        );
        e.fields.insert("maxApps".into(), max.to_string());
        return Err(e);
    }
    let rec = db::app_by_id(&app.db()?, &id)
        .await?
        .ok_or_else(ApiError::internal)?;
    json(201, &rec.detail(Some(&caller.user_id)))
}

/// App ids are ours (`app_` + 32 hex); anything else cannot exist.
fn parse_id(id: &str) -> ApiResult<AppId> {
    AppId::parse(id).ok_or_else(not_found)
}

pub async fn get(app: &App, caller: Option<&Caller>, id: &str) -> ApiResult<Response> {
    let id = parse_id(id)?;
    let viewer = caller.map(|c| &c.user_id);
    match db::app_by_id(&app.db()?, &id).await? {
        Some(rec) if rec.visible_to(viewer) => json(200, &rec.detail(viewer)),
        _ => Err(not_found()),
    }
}

pub async fn patch(mut req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let id = parse_id(id)?;
    let patch = AppPatch::parse(json_body(&mut req).await?)?;
    if !db::patch_app(&app.db()?, &id, &caller.user_id, &patch).await? {
        return Err(not_found());
    }
    let rec = db::app_by_id(&app.db()?, &id)
        .await?
        .ok_or_else(not_found)?;
    json(200, &rec.detail(Some(&caller.user_id)))
}

/// `DELETE /api/apps/:id`: the app disappears at once (its row goes, a pending deletion is
/// recorded in the same batch) and its deletion object runs the clean-up plan
/// (`domain::deletion`): a first attempt before this answers, retries from its alarm. A second
/// DELETE is a 404, and resumes a deletion that is still pending.
pub async fn delete(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let id = parse_id(id)?;
    let by = Owner {
        app_id: id.clone(),
        user_id: caller.user_id.clone(),
    };
    let db = app.db()?;
    let owned = db::app_by_id(&db, &id)
        .await?
        .is_some_and(|r| r.user_id.as_ref() == Some(&caller.user_id));
    if !owned {
        if db::app_deletion(&db, &id, &caller.user_id).await?.is_some() {
            deletion_do::send(&app.env, &DeletionCall::Resume { by }).await?;
        }
        return Err(not_found());
    }
    let resp = deletion_do::send(&app.env, &DeletionCall::DeleteApp { by }).await?;
    match resp.status_code() {
        200 => no_content(),
        404 => Err(not_found()),
        s => {
            worker::console_error!("deleting app {id}: the deletion object answered {s}");
            Err(ApiError::unavailable(
                "the deletion could not be started; try again",
            ))
        }
    }
}
