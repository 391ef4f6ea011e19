//! One-click deployment: deploy, history, rollback, undeploy (every one for the app's owner
//! only, through the app's `AppDeployer` object), and the deployed apps' own hostnames
//! (`<app label>.<CUSTOM_DOMAIN>`), served from the live deployment.
//!
//! A deployed app is on its own origin and gets what a preview gets of the browser's request
//! (the preview cookie policy, `routes/preview.rs`): never the platform's cookies or
//! `Authorization`, and its answers cannot set a platform cookie. An app with no live
//! deployment (unknown, deleted or undeployed) is a 404 page.

use crate::domain::deploy::call::{DeployCall, BINDING};
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::preview;
use crate::domain::sandbox_call::Owner;
use crate::http::auth::Caller;
use crate::http::{json, App};
use crate::services::{deployments, hosting, stub};
use worker::{Headers, Method, Request, RequestInit, Response};

fn origin(req: &Request) -> ApiResult<String> {
    Ok(req.url()?.origin().ascii_serialization())
}

/// Sends `call` to the app's deployer; its answer as it is (errors in the spec's shape).
async fn send(app: &App, call: &DeployCall) -> ApiResult<Response> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(call.to_json().into()));
    let req = Request::new_with_init("https://deployer/", &init)?;
    Ok(stub(&app.env, BINDING, call.owner().app_id.as_str())?
        .fetch_with_request(req)
        .await?)
}

async fn owner(app: &App, caller: &Caller, id: &str) -> ApiResult<Owner> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    Ok(Owner {
        app_id: rec.id,
        user_id: caller.user_id.clone(),
    })
}

/// `POST /api/apps/:id/deploy` → 202 with the deployment; progress on the app's event streams.
pub async fn deploy(req: &Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let by = owner(app, caller, id).await?;
    send(
        app,
        &DeployCall::Deploy {
            by,
            origin: origin(req)?,
        },
    )
    .await
}

/// `POST /api/apps/:id/deployments/:n/rollback` → 202 with the new deployment that republishes
/// deployment `n`'s artifact.
pub async fn rollback(
    req: &Request,
    app: &App,
    caller: &Caller,
    id: &str,
    n: &str,
) -> ApiResult<Response> {
    let by = owner(app, caller, id).await?;
    let number: u32 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::not_found("deployment"))?;
    send(
        app,
        &DeployCall::Rollback {
            by,
            origin: origin(req)?,
            number,
        },
    )
    .await
}

/// `DELETE /api/apps/:id/deploy`: the app is taken down (404 when it is not deployed).
pub async fn undeploy(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let by = owner(app, caller, id).await?;
    send(app, &DeployCall::Undeploy { by }).await
}

/// `GET /api/apps/:id/deployments`: the history, newest first.
pub async fn list(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let by = owner(app, caller, id).await?;
    let all = deployments::list(&app.db()?, by.app_id.as_str()).await?;
    json(200, &serde_json::json!({ "deployments": all }))
}

const NOT_DEPLOYED: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not deployed</title></head><body style=\"font-family:system-ui,sans-serif;margin:4rem auto;max-width:32rem\"><h1>Nothing is deployed here</h1><p>No app is deployed at this address. If it is yours, deploy it from its workspace.</p></body></html>";

fn page(status: u16, body: &str) -> Response {
    let resp = Response::from_html(body)
        .map(|r| r.with_status(status))
        .unwrap_or_else(|_| Response::empty().expect("empty response"));
    let _ = resp.headers().set("Cache-Control", "no-store");
    resp
}

/// A request on a deployed app's hostname.
pub async fn serve(req: Request, app: &App, app_id: &str) -> Response {
    match forward(req, app, app_id).await {
        Ok(Some(r)) => r,
        Ok(None) => page(404, NOT_DEPLOYED),
        Err(e) => {
            worker::console_error!("deployed app {app_id}: {}", e.message);
            page(
                e.status.max(500),
                "<!doctype html><title>Unavailable</title><h1>This app is unavailable</h1><p>Try again in a moment.</p>",
            )
        }
    }
}

async fn forward(req: Request, app: &App, app_id: &str) -> ApiResult<Option<Response>> {
    let headers = Headers::new();
    for (k, v) in preview::request_headers(req.headers().entries()) {
        headers.append(&k, &v)?;
    }
    let method = req.method();
    let body = if matches!(method, Method::Get | Method::Head) {
        None
    } else {
        req.inner().body().map(|b| b.into())
    };
    let mut init = RequestInit::new();
    init.with_method(method)
        .with_headers(headers)
        .with_body(body);
    let inner = Request::new_with_init(req.url()?.as_str(), &init)?;
    match hosting::fetch_deployed(app, app_id, inner).await? {
        Some(resp) => super::preview::without_platform_set_cookies(resp).map(Some),
        None => Ok(None),
    }
}
