//! `/api/apps/:id/sandbox…`: the owner's sandbox — create from a template, status with a preview
//! URL, stop, and the agent's workspace API (files, exec, logs, errors) behind ownership checks.
//! Also `GET /api/templates`.

use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::sandbox::{preview_label, preview_token, Command, State};
use crate::domain::templates;
use crate::http::auth::Caller;
use crate::http::{internal, json, json_body, read_body, App};
use crate::objects::sandbox_do::BINDING;
use crate::services::{db, now_ms};
use serde_json::json;
use worker::{Headers, Method, Request, RequestInit, Response, Stub};

/// Lifetime of the token in a preview URL (it is exchanged for a cookie on first use).
pub const PREVIEW_URL_TTL_S: i64 = 600;

pub fn catalog() -> ApiResult<Response> {
    json(200, &json!({ "templates": templates::CATALOG }))
}

/// The app, if the caller owns it; anything else is the same 404.
pub async fn owned(
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<crate::domain::apps::AppRecord> {
    let rec = if super::apps::valid_id(id) {
        db::app_by_id(&app.db()?, id).await?
    } else {
        None
    };
    rec.filter(|r| r.user_id.as_deref() == Some(caller.user_id.as_str()))
        .ok_or_else(|| ApiError::not_found("app"))
}

pub fn stub(app: &App, app_id: &str) -> ApiResult<Stub> {
    crate::objects::stub(&app.env, BINDING, app_id).map_err(internal)
}

async fn command(app: &App, app_id: &str, cmd: &Command) -> ApiResult<Option<State>> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(serde_json::to_string(cmd).map_err(internal)?.into()));
    let req = Request::new_with_init("https://sandbox/command", &init).map_err(internal)?;
    let mut resp = stub(app, app_id)?
        .fetch_with_request(req)
        .await
        .map_err(internal)?;
    match resp.status_code() {
        200 => Ok(Some(resp.json().await.map_err(internal)?)),
        404 => Ok(None),
        s => Err(internal(format!("sandbox object answered {s}"))),
    }
}

/// A URL that opens the app's preview; private apps get a short-lived token in it.
pub fn preview_url(req: &Request, app: &App, app_id: &str) -> ApiResult<String> {
    let url = req.url().map_err(internal)?;
    preview_url_at(app, url.scheme(), url.port(), app_id)
}

/// A fresh signed preview URL for `app_id`, served on `scheme` and `port` (those the API was
/// reached on: the preview hostnames share the Worker's listener).
pub fn preview_url_at(
    app: &App,
    scheme: &str,
    port: Option<u16>,
    app_id: &str,
) -> ApiResult<String> {
    let label = preview_label(app_id).ok_or_else(ApiError::internal)?;
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    let exp = now_ms() / 1000 + PREVIEW_URL_TTL_S;
    let token = preview_token(label, exp, |text| app.keys.sign("preview", text));
    Ok(format!(
        "{scheme}://{label}.{}{port}/?__byte_preview={token}",
        app.cfg.preview_domain
    ))
}

fn with_preview(req: &Request, app: &App, s: &State) -> ApiResult<serde_json::Value> {
    let mut v = serde_json::to_value(s).map_err(internal)?;
    v["previewUrl"] = json!(preview_url(req, app, &s.app_id)?);
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
    let max = app.cfg.max_sandboxes_per_user;
    if !db::claim_sandbox(&app.db()?, &rec.id, &caller.user_id, &template, max).await? {
        let mut e = ApiError::new(
            403,
            ErrorCode::E006,
            format!("sandbox limit reached: at most {max} sandboxes may run at once; stop one to start another"),
        );
        e.fields
            .insert("maxSandboxInstances".into(), max.to_string());
        return Err(e);
    }
    let cmd = Command::Create {
        app_id: rec.id.clone(),
        user_id: caller.user_id.clone(),
        template,
    };
    let state = command(app, &rec.id, &cmd)
        .await?
        .ok_or_else(ApiError::internal)?;
    json(202, &with_preview(&req, app, &state)?)
}

pub async fn status(req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = owned(app, caller, id).await?;
    let state = command(app, &rec.id, &Command::Status)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    json(200, &with_preview(&req, app, &state)?)
}

pub async fn stop(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = owned(app, caller, id).await?;
    let state = command(app, &rec.id, &Command::Stop)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    json(200, &state)
}

/// Which workspace call a route maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceCall {
    WriteFiles,
    ReadFile,
    Tree,
    Exec,
    Logs,
    Errors,
}

/// Forwards an owner's request to the agent through the sandbox object; agent errors (already in
/// our error shape) pass through.
pub async fn workspace(
    mut req: Request,
    app: &App,
    caller: &Caller,
    id: &str,
    call: WorkspaceCall,
) -> ApiResult<Response> {
    let rec = owned(app, caller, id).await?;
    let state = command(app, &rec.id, &Command::Status)
        .await?
        .ok_or_else(|| ApiError::not_found("sandbox"))?;
    if !state.status.is_active() {
        return Err(ApiError::new(
            409,
            ErrorCode::E006,
            format!(
                "the sandbox is {}; create it again first",
                state.status.as_str()
            ),
        ));
    }
    let wants_stream = req
        .headers()
        .get("Accept")
        .ok()
        .flatten()
        .is_some_and(|a| a.contains("text/event-stream"));
    let (method, rest) = match call {
        WorkspaceCall::WriteFiles => (Method::Post, "files"),
        WorkspaceCall::ReadFile => (Method::Get, "files"),
        WorkspaceCall::Tree => (Method::Get, "tree"),
        WorkspaceCall::Exec => (Method::Post, "exec"),
        WorkspaceCall::Logs if wants_stream => (Method::Get, "logs/stream"),
        WorkspaceCall::Logs => (Method::Get, "logs"),
        WorkspaceCall::Errors => (Method::Get, "errors"),
    };
    let url = req.url().map_err(internal)?;
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    let headers = Headers::new();
    let mut init = RequestInit::new();
    if method == Method::Post {
        // Bounded like every other body, and checked to be JSON before it leaves the Worker.
        let body = read_body(&mut req).await?;
        crate::domain::input::parse_object(&body)?;
        headers
            .set("Content-Type", "application/json")
            .map_err(internal)?;
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    if wants_stream {
        headers
            .set("Accept", "text/event-stream")
            .map_err(internal)?;
    }
    init.with_method(method).with_headers(headers);
    let fwd = Request::new_with_init(&format!("https://sandbox/proxy/{rest}{query}"), &init)
        .map_err(internal)?;
    stub(app, &rec.id)?
        .fetch_with_request(fwd)
        .await
        .map_err(internal)
}

/// `GET /api/templates/:name`: the catalog entry plus every file, from the R2 bundle that
/// `make dev` (or the deploy pipeline) publishes.
pub async fn template(app: &App, name: &str) -> ApiResult<Response> {
    let t = templates::find(name).ok_or_else(|| ApiError::not_found("template"))?;
    let bytes = crate::services::r2::get_bytes(app, "TEMPLATES", &format!("templates/{name}.json"))
        .await?
        .ok_or_else(|| {
            ApiError::unavailable(
                "template files are not published to R2 (run `make dev` or publish them)",
            )
        })?;
    let bundle: serde_json::Value = serde_json::from_slice(&bytes).map_err(internal)?;
    json(200, &json!({ "template": t, "files": bundle["files"] }))
}
