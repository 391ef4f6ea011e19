//! `/api/agent/…`: the code-generation agent of an app, owner only. `POST chat/:appId` starts a
//! generation and answers with its events as Server-Sent Events while it runs; `GET
//! :appId/state?since=` is the current state plus the stored events after `since`.

use crate::domain::codegen::events::parse_start_chat;
use crate::domain::error::ApiResult;
use crate::http::auth::Caller;
use crate::http::{internal, read_body, App};
use crate::objects::codegen_do::BINDING;
use worker::{Headers, Method, Request, RequestInit, Response, Stub};

fn stub(app: &App, app_id: &str) -> ApiResult<Stub> {
    crate::objects::stub(&app.env, BINDING, app_id).map_err(internal)
}

pub async fn chat(mut req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let body = read_body(&mut req).await?;
    parse_start_chat(&body)?;
    let preview = super::sandbox::preview_url(&req, app, &rec.id)?;
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(internal);
    set("Content-Type", "application/json")?;
    set("X-App-Id", &rec.id)?;
    set("X-User-Id", &caller.user_id)?;
    set("X-Preview-Url", &preview)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    let fwd = Request::new_with_init("https://codegen/chat", &init).map_err(internal)?;
    stub(app, &rec.id)?
        .fetch_with_request(fwd)
        .await
        .map_err(internal)
}

pub async fn state(req: Request, app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    let url = req.url().map_err(internal)?;
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    let headers = Headers::new();
    headers.set("X-App-Id", &rec.id).map_err(internal)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let fwd = Request::new_with_init(&format!("https://codegen/state{query}"), &init)
        .map_err(internal)?;
    stub(app, &rec.id)?
        .fetch_with_request(fwd)
        .await
        .map_err(internal)
}
