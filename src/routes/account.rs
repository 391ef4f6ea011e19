//! `DELETE /api/auth/me`: deletes the caller's account and everything it owns.
//!
//! Ownership is proven first ([`account_deletion_allowed`]): the current password (`password` in
//! a JSON body) for a password account, a sign-in within the last ten minutes for an account
//! without one; otherwise 403 E001, naming what is missing in `fields`. Then, in this order:
//! each app's deletion object is prepared (a safety alarm, nothing erased yet); every live
//! session is revoked in D1 and in the KV cache, so no isolate trusts it once its row is gone;
//! one D1 batch deletes the apps (recording each app's pending deletion) and the user row, whose
//! foreign keys take the sessions, OAuth links, password, provider keys and model settings and
//! detach the usage rows (kept without user or app, for accounting); each app's deletion plan is
//! resumed (`domain::deletion`: generator, sandbox, workspace, files). 204, cookies cleared.
//!
//! Invariant: nothing is deleted before the proof is checked, and everything in D1 goes in one
//! batch (all or nothing); what lives outside D1 is erased by the apps' deletion objects, which
//! retry until done.

use crate::domain::deletion::{account_deletion_allowed, DeletionCall, APP_PLAN};
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::AppId;
use crate::domain::input::parse_object;
use crate::domain::sandbox_call::Owner;
use crate::domain::{password, web};
use crate::http::auth::{session_cookie, Caller};
use crate::http::crypto::WebCryptoKdf;
use crate::http::{header, no_content, read_body, App};
use crate::objects::deletion_do;
use crate::services::{db, now_ms, sessions};
use futures_util::future::join_all;
use worker::{Request, Response};

/// The optional `{"password": "…"}` body (an empty body is no password).
async fn password_field(req: &mut Request) -> ApiResult<Option<String>> {
    let body = read_body(req).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let ct = header(req, "Content-Type").unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(ApiError::field("Content-Type", "must be application/json"));
    }
    let mut obj = parse_object(&body)?;
    let pw = obj.optional_secret("password", 1024);
    obj.finish()?;
    Ok(pw)
}

fn owner(app_id: &AppId, caller: &Caller) -> Owner {
    Owner {
        app_id: app_id.clone(),
        user_id: caller.user_id.clone(),
    }
}

/// Sends `call` to its app's deletion object; whether it said yes.
async fn tell(app: &App, call: DeletionCall) -> bool {
    deletion_do::send(&app.env, &call)
        .await
        .is_ok_and(|r| r.status_code() == 200)
}

pub async fn delete(mut req: Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    let given = password_field(&mut req).await?;
    let db = app.db()?;
    if db::user_by_id(&db, &caller.user_id).await?.is_none() {
        return Err(ApiError::unauthorized(
            "invalid authentication token: user no longer exists",
        ));
    }
    let hash = db::password_hash(&db, &caller.user_id).await?;
    let matches = match (&hash, &given) {
        (Some(h), Some(p)) => password::verify(&WebCryptoKdf, p, h).await,
        _ => false,
    };
    let opened = db::session_created_at(&db, &caller.sid, &caller.user_id)
        .await?
        .unwrap_or(0);
    if let Err(why) = account_deletion_allowed(hash.is_some(), matches, opened, now_ms() / 1000) {
        let mut e = ApiError::forbidden(why);
        let (field, what) = match (&hash, &given) {
            (Some(_), None) => ("password", "is required"),
            (Some(_), Some(_)) => ("password", "does not match"),
            (None, _) => ("signIn", "is older than 10 minutes; sign in again"),
        };
        e.fields.insert(field.into(), what.into());
        return Err(e);
    }

    let apps = db::app_ids_of(&db, &caller.user_id).await?;
    let prepared = join_all(apps.iter().map(|id| {
        tell(
            app,
            DeletionCall::Prepare {
                by: owner(id, caller),
            },
        )
    }))
    .await;
    if !prepared.iter().all(|ok| *ok) {
        return Err(ApiError::unavailable(
            "the account could not be deleted now; nothing was deleted, try again",
        ));
    }
    let kv = app.kv()?;
    sessions::revoke_all(&kv, &db, &caller.user_id).await?;
    let recorded = db::delete_account(&db, &caller.user_id, APP_PLAN[0].name()).await?;
    let resumed = join_all(recorded.iter().map(|id| {
        tell(
            app,
            DeletionCall::Resume {
                by: owner(id, caller),
            },
        )
    }))
    .await;
    for (id, ok) in recorded.iter().zip(resumed) {
        if !ok {
            // A prepared object's safety alarm runs the plan anyway.
            worker::console_error!("account deletion: app {id} not resumed; its alarm will");
        }
    }
    let resp = no_content()?;
    resp.headers().append(
        "Set-Cookie",
        &web::set_cookie(session_cookie(&req, app), "", 0, true, "/"),
    )?;
    resp.headers().append(
        "Set-Cookie",
        &web::set_cookie(web::CSRF_COOKIE, "", 0, false, "/"),
    )?;
    Ok(resp)
}
