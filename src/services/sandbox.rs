//! Client of the `UserAppSandboxService` objects (one per app): every call is a typed
//! [`SandboxCall`] (the contract is declared in [`crate::domain::sandbox_call`]), sent by the
//! sandbox and preview routes and by the code generator's sandbox port alike; plus the two
//! things they share: [`start`] (claim the owner's quota in D1, then create) and the signed
//! [`preview_url`].
//!
//! Invariants: a sandbox is created only after its slot was claimed in D1 (so the per-user
//! quota holds whoever starts it); a preview request goes on as the browser's own request
//! (method, headers after the cookie policy, streamed body, WebSocket upgrade) with the call
//! beside it in [`CALL_HEADER`]; a lifecycle answer that is neither a state nor "none" is a
//! 503, never a made-up state.

use super::{db, now_ms};
use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::ids::AppId;
use crate::domain::ids::UserId;
use crate::domain::preview::signed_url;
use crate::domain::sandbox::{quota_reached, State};
use crate::domain::sandbox_call::{
    Owner, PreviewCall, Refusal, SandboxCall, BINDING, CALLER_HEADER, CALL_HEADER, REFUSED_HEADER,
};
use crate::domain::token::TokenKeys;
use byte_protocol::parse_reply;
use serde::de::DeserializeOwned;
use std::fmt::Display;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env, Headers, Method, Request, RequestInit, Response, Url};

/// The URL requests to a sandbox object are made on (the object reads the call, not the URL).
const OBJECT_URL: &str = "https://sandbox/";

/// Logs why the sandbox object could not be used and answers the caller with a 503.
fn unreachable(why: impl Display) -> ApiError {
    worker::console_error!("sandbox object: {why}");
    ApiError::new(
        503,
        ErrorCode::E006,
        "the sandbox service is unreachable, try again",
    )
}

async fn fetch(env: &Env, app_id: &AppId, init: &RequestInit) -> worker::Result<Response> {
    let req = Request::new_with_init(OBJECT_URL, init)?;
    super::stub(env, BINDING, app_id.as_str())?
        .fetch_with_request(req)
        .await
}

/// Sends `call` to `app_id`'s object: in the body when it may be large, else in the header of
/// a bodyless GET. The object's answer as it is (for a workspace call, the agent's).
pub async fn send(env: &Env, app_id: &AppId, call: &SandboxCall) -> worker::Result<Response> {
    send_with(env, app_id, call, Headers::new()).await
}

async fn send_with(
    env: &Env,
    app_id: &AppId,
    call: &SandboxCall,
    headers: Headers,
) -> worker::Result<Response> {
    let mut init = RequestInit::new();
    if call.in_body() {
        headers.set("Content-Type", "application/json")?;
        init.with_method(Method::Post)
            .with_body(Some(call.to_json().into()));
    } else {
        headers.set(CALL_HEADER, &call.to_header())?;
        init.with_method(Method::Get);
    }
    init.with_headers(headers);
    fetch(env, app_id, &init).await
}

/// What came of an owner's workspace call ([`send_for`]).
pub enum Sent {
    /// The agent's answer, as it is.
    Answered(Response),
    /// The object did not pass it on.
    Refused(Refusal),
}

/// Sends an owner's workspace `call` for `caller`: the object admits it itself (the sandbox's
/// owner, while active), so the call takes one round trip; a refusal says why.
pub async fn send_for(
    env: &Env,
    app_id: &AppId,
    caller: &UserId,
    call: &SandboxCall,
) -> ApiResult<Sent> {
    let headers = Headers::new();
    headers
        .set(CALLER_HEADER, caller.as_str())
        .map_err(unreachable)?;
    let resp = send_with(env, app_id, call, headers)
        .await
        .map_err(unreachable)?;
    let refused = resp
        .headers()
        .get(REFUSED_HEADER)
        .ok()
        .flatten()
        .and_then(|v| Refusal::from_header(&v));
    Ok(match refused {
        Some(r) => Sent::Refused(r),
        None => Sent::Answered(resp),
    })
}

/// Forwards a browser's preview request (`method`, `headers` already filtered by the preview
/// cookie policy, `body` as a stream) to `app_id`'s object, the call beside it.
pub async fn forward_preview(
    env: &Env,
    app_id: &AppId,
    call: PreviewCall,
    method: Method,
    headers: Headers,
    body: Option<JsValue>,
) -> worker::Result<Response> {
    // `set` replaces whatever a browser sent under the same name; a preview is nobody's
    // workspace call.
    headers.set(CALL_HEADER, &SandboxCall::Preview(call).to_header())?;
    headers.delete(CALLER_HEADER)?;
    let mut init = RequestInit::new();
    init.with_method(method)
        .with_headers(headers)
        .with_body(body);
    fetch(env, app_id, &init).await
}

/// A lifecycle call (create, status, stop): the sandbox's state, `None` when it has none.
pub async fn lifecycle(env: &Env, app_id: &AppId, call: &SandboxCall) -> ApiResult<Option<State>> {
    let mut resp = send(env, app_id, call).await.map_err(unreachable)?;
    match resp.status_code() {
        200 => Ok(Some(resp.json().await.map_err(unreachable)?)),
        404 => Ok(None),
        s => Err(unreachable(format!(
            "it answered {s} to {}",
            call.to_json()
        ))),
    }
}

/// A workspace call whose reply is read as `T`; `Err` says why not (the agent's message, or
/// that the sandbox could not be reached), in words the model can act on.
pub async fn reply<T: DeserializeOwned>(
    env: &Env,
    app_id: &AppId,
    call: &SandboxCall,
) -> Result<T, String> {
    let mut r = send(env, app_id, call)
        .await
        .map_err(|e| format!("sandbox unreachable: {e}"))?;
    let bytes = r.bytes().await.map_err(|e| e.to_string())?;
    parse_reply(r.status_code(), &bytes).map_err(|e| e.message)
}

/// Starts `by.app_id`'s sandbox from `template`: claims a slot of the owner's quota of `max`
/// sandboxes in D1 (403 E006 when every slot is taken; an app whose sandbox is active keeps its
/// own), then asks the object to create it (an active sandbox is left as it is). The state it
/// starts from.
pub async fn start(
    env: &Env,
    d1: &D1Database,
    max: u64,
    by: &Owner,
    template: &str,
) -> ApiResult<State> {
    if !db::claim_sandbox(d1, &by.app_id, &by.user_id, template, max).await? {
        return Err(quota_reached(max));
    }
    let create = SandboxCall::Create {
        by: by.clone(),
        template: template.to_string(),
    };
    lifecycle(env, &by.app_id, &create)
        .await?
        .ok_or_else(|| unreachable("no state after create"))
}

/// A fresh signed URL that opens `app_id`'s preview at `<label>.<preview_domain>`, on the scheme
/// and port of `api` (the URL the API was reached on: the preview hostnames share the Worker's
/// listener), signed with `keys`.
pub fn preview_url(
    keys: &TokenKeys,
    preview_domain: &str,
    api: &Url,
    app_id: &AppId,
) -> ApiResult<String> {
    signed_url(
        api.scheme(),
        preview_domain,
        api.port(),
        app_id.as_str(),
        now_ms() / 1000,
        |text| keys.sign("preview", text),
    )
    .ok_or_else(ApiError::internal)
}
