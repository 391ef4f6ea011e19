//! `/api/apps/:id/sandbox…`: the owner's sandbox — create from a template, status with a preview
//! URL, stop, and the agent's workspace API (files, exec, logs, errors) behind ownership checks.
//! Also `GET /api/templates`.
//!
//! Every request becomes one typed [`SandboxCall`] for the app's sandbox object, sent through
//! [`crate::services::sandbox`] (creation through its `start`, which claims the quota first).
//!
//! Invariant: what goes on to the agent is one of its own request types (`byte_protocol`),
//! parsed and checked here first ([`workspace_call`]: shared path rules, command and timeout
//! bounds, `since`), so an owner's mistakes come back as this API's per-field 400s; the agent's
//! replies pass through unchanged.

use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::ids::AppId;
use crate::domain::routes::WorkspaceCall;
use crate::domain::sandbox::State;
use crate::domain::sandbox_call::{takes_body, workspace_call, Owner, Refusal, SandboxCall};
use crate::domain::templates;
use crate::http::auth::Caller;
use crate::http::{header, internal, json, json_body, read_body, App};
use crate::services::sandbox::Sent;
use crate::services::{db, sandbox};
use serde_json::json;
use worker::{Request, Response};

pub fn catalog() -> ApiResult<Response> {
    json(200, &json!({ "templates": templates::CATALOG }))
}

/// The app, if the caller owns it; anything else is the same 404.
pub async fn owned(
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<crate::domain::apps::AppRecord> {
    let rec = match AppId::parse(id) {
        Some(id) => db::app_by_id(&app.db()?, &id).await?,
        None => None,
    };
    rec.filter(|r| r.user_id.as_ref() == Some(&caller.user_id))
        .ok_or_else(|| ApiError::not_found("app"))
}

/// The state, with a fresh URL that opens the app's preview (its short-lived token opens a
/// private one).
fn with_preview(req: &Request, app: &App, s: &State) -> ApiResult<serde_json::Value> {
    let mut v = serde_json::to_value(s).map_err(internal)?;
    let url = sandbox::preview_url(&app.keys, &app.cfg.preview_domain, &req.url()?, &s.app_id)?;
    v["previewUrl"] = json!(url);
    Ok(v)
}

pub async fn create(mut req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = owned(app, caller, id).await?;
    let has_body = req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .is_some_and(|l| l != "0");
    let template = if has_body {
        let mut body = json_body(&mut req).await?;
        let t = body.string("template", 64);
        body.finish()?;
        match t {
            crate::domain::input::Patch::Value(t) if !t.is_empty() => t,
            _ => templates::DEFAULT.to_string(),
        }
    } else {
        templates::DEFAULT.to_string()
    };
    if templates::find(&template).is_none() {
        let names: Vec<&str> = templates::CATALOG.iter().map(|t| t.name).collect();
        return Err(ApiError::field(
            "template",
            format!("must be one of: {}", names.join(", ")),
        ));
    }
    let by = Owner {
        app_id: rec.id,
        user_id: caller.user_id.clone(),
    };
    let max = app.cfg.max_sandboxes_per_user;
    let state = sandbox::start(&app.env, &app.db()?, max, &by, &template).await?;
    json(202, &with_preview(&req, app, &state)?)
}

pub async fn status(req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = owned(app, caller, id).await?;
    let state = sandbox::lifecycle(&app.env, &rec.id, &SandboxCall::Status)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    json(200, &with_preview(&req, app, &state)?)
}

pub async fn stop(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = owned(app, caller, id).await?;
    let state = sandbox::lifecycle(&app.env, &rec.id, &SandboxCall::Stop)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    json(200, &state)
}

/// Sends an owner's workspace request to the agent through the sandbox object, which admits
/// it itself (one round trip: the owner's sandbox, while active); agent errors (already in our
/// error shape) pass through. Every refusal (a bad request included) first goes through the
/// ownership check, so another user's app answers exactly as a missing one.
pub async fn workspace(
    mut req: Request,
    app: &App,
    caller: &Caller,
    id: &str,
    call: WorkspaceCall,
) -> ApiResult<Response> {
    let body = if takes_body(call) {
        read_body(&mut req).await
    } else {
        Ok(Vec::new())
    };
    let query = req.url()?.query().unwrap_or("").to_string();
    let wants_stream = header(&req, "Accept").is_some_and(|a| a.contains("text/event-stream"));
    let call = body.and_then(|body| workspace_call(call, &body, &query, wants_stream));
    let (call, app_id) = match (call, AppId::parse(id)) {
        (Ok(call), Some(app_id)) => (call, app_id),
        (Err(e), _) => {
            owned(app, caller, id).await?;
            return Err(e);
        }
        (Ok(_), None) => return Err(ApiError::not_found("app")),
    };
    match sandbox::send_for(&app.env, &app_id, &caller.user_id, &call).await? {
        Sent::Answered(resp) => Ok(resp),
        Sent::Refused(Refusal::NoSandbox) => {
            owned(app, caller, id).await?;
            Err(ApiError::not_found("sandbox"))
        }
        Sent::Refused(Refusal::Inactive(status)) => Err(ApiError::new(
            409,
            ErrorCode::E006,
            format!("the sandbox is {}; create it again first", status.as_str()),
        )),
    }
}

/// `GET /api/templates/:name`: the catalog entry plus every file, from the R2 bundle that
/// `make dev` (or the deploy pipeline) publishes.
pub async fn template(app: &App, name: &str) -> ApiResult<Response> {
    let t = templates::find(name).ok_or_else(|| ApiError::not_found("template"))?;
    let bucket = app.env.bucket("TEMPLATES")?;
    let bytes = crate::services::r2::get_bytes(&bucket, &format!("templates/{name}.json"))
        .await?
        .ok_or_else(|| {
            ApiError::unavailable(
                "template files are not published to R2 (run `make dev` or publish them)",
            )
        })?;
    let bundle: serde_json::Value = serde_json::from_slice(&bytes).map_err(internal)?;
    json(200, &json!({ "template": t, "files": bundle["files"] }))
}
