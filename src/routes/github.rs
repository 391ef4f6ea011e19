//! GitHub for export (issue 14), separate from signing in with GitHub:
//! - `GET /api/github`: whether export is configured and the caller's connection (login, scopes);
//! - `GET /api/github/connect?redirect=/path` → 302 to the exporter app's consent page (state +
//!   PKCE, scope `repo`); `GET /api/github/callback` exchanges the code, seals the token and
//!   302s back; `DELETE /api/github` forgets the connection;
//! - `GET|POST|DELETE /api/apps/:id/github`: the app's repository (create one and push the
//!   app's files into it, or unlink it); `POST /api/apps/:id/github/push`: push the app's
//!   current files as one incremental commit.
//!
//! Invariants:
//! - the connect state is single-use, expires, and is bound to the user who started it (the
//!   callback links the token to that user and nobody else);
//! - an app's repository link is the owner's only: others get the app's 404;
//! - a push never overwrites GitHub: it builds on the commit our last push left the branch at,
//!   and refuses with 409 E004 when the branch moved on (`domain::github::push`);
//! - without `GITHUB_EXPORTER_CLIENT_ID` every route but the status answers 404 E002 (the
//!   feature is not there), like an unconfigured sign-in provider.

use crate::domain::codegen::crypto::SealingKey;
use crate::domain::config::OAuthClient;
use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::github::names::{check_repo_name, repo_name_from_title};
use crate::domain::github::push::{push, PushRequest, Pushed};
use crate::domain::github::GitHub;
use crate::domain::input::Patch;
use crate::domain::oauth::{self, STATE_TTL_SECONDS};
use crate::domain::random;
use crate::http::auth::Caller;
use crate::http::{json, json_body, no_content, App};
use crate::services::github::{self as store, FetchGitHub};
use crate::services::now_ms;
use serde_json::{json, Value};
use worker::{Request, Response};

/// The scope the exporter asks for: repositories, public and private.
pub const SCOPE: &str = "repo";
/// GitHub's limit on a repository description.
pub const MAX_DESCRIPTION: usize = 350;

fn exporter(app: &App) -> ApiResult<(&OAuthClient, &SealingKey)> {
    let client = app.cfg.github_export.as_ref().ok_or_else(|| {
        ApiError::new(
            404,
            ErrorCode::E002,
            "GitHub export is not configured on this deployment (GITHUB_EXPORTER_CLIENT_ID)",
        )
    })?;
    // The configuration refuses an exporter without a sealing key.
    let key = app
        .cfg
        .sealing_key
        .as_ref()
        .ok_or_else(ApiError::internal)?;
    Ok((client, key))
}

fn origin_of(req: &Request, app: &App) -> ApiResult<String> {
    if let Some(u) = &app.cfg.public_url {
        return Ok(u.clone());
    }
    Ok(req.url()?.origin().ascii_serialization())
}

fn redirect(to: &str) -> ApiResult<Response> {
    let resp = Response::empty()?.with_status(302);
    resp.headers().set("Location", to)?;
    resp.headers().set("Cache-Control", "no-store")?;
    Ok(resp)
}

/// `GET /api/github`.
pub async fn status(app: &App, caller: &Caller) -> ApiResult<Response> {
    let configured = app.cfg.github_export.is_some();
    let conn = if configured {
        store::connection(&app.db()?, &caller.user_id).await?
    } else {
        None
    };
    let body = match conn {
        Some(c) => json!({
            "configured": true,
            "connected": true,
            "login": c.login,
            "scopes": c.scopes.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>(),
            "connectedAt": c.updated_at as i64,
        }),
        None => json!({ "configured": configured, "connected": false }),
    };
    json(200, &body)
}

/// `GET /api/github/connect?redirect=/path` → 302 to GitHub's consent page.
pub async fn connect(req: Request, app: &App, caller: &Caller) -> ApiResult<Response> {
    let (client, _) = exporter(app)?;
    let url = req.url()?;
    let after = url
        .query_pairs()
        .find(|(k, _)| k == "redirect")
        .map(|(_, v)| v.into_owned());
    let state = random::token::<32>();
    let verifier = random::token::<48>();
    store::save_state(
        &app.db()?,
        &state,
        &caller.user_id,
        &verifier,
        &oauth::safe_redirect(after.as_deref()),
        now_ms() / 1000 + STATE_TTL_SECONDS,
    )
    .await?;
    let to = oauth::scoped_authorize_url(
        &client.endpoints,
        &client.client_id,
        &format!("{}/api/github/callback", origin_of(&req, app)?),
        SCOPE,
        &state,
        &verifier,
    );
    redirect(&to)
}

/// `GET /api/github/callback?code&state` → exchange, seal, 302 back into the app.
pub async fn callback(req: Request, app: &App) -> ApiResult<Response> {
    let (client, key) = exporter(app)?;
    let url = req.url()?;
    let param = |k: &str| {
        url.query_pairs()
            .find(|(q, _)| q == k)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(err) = param("error") {
        return Err(ApiError::forbidden(format!(
            "GitHub was not connected: {}",
            crate::domain::input::percent_encode(&err)
        )));
    }
    let (Some(code), Some(state)) = (param("code"), param("state")) else {
        return Err(ApiError::validation("code and state are required"));
    };
    let bad_state = || ApiError::field("state", "unknown, expired or already used state");
    let saved = store::take_state(&app.db()?, &state)
        .await?
        .ok_or_else(bad_state)?;
    if (saved.expires_at as i64) < now_ms() / 1000 {
        return Err(bad_state());
    }
    let grant = store::exchange_code(
        client,
        &code,
        &format!("{}/api/github/callback", origin_of(&req, app)?),
        &saved.code_verifier,
    )
    .await?;
    let gh = GitHub::new(&FetchGitHub, &client.endpoints.api, &grant.token);
    let user = gh.user().await.map_err(|e| e.to_api_error())?;
    store::put_connection(&app.db()?, key, &saved.user_id, &user.login, &grant).await?;
    redirect(&saved.redirect_to)
}

/// `DELETE /api/github`.
pub async fn disconnect(app: &App, caller: &Caller) -> ApiResult<Response> {
    exporter(app)?;
    if !store::delete_connection(&app.db()?, &caller.user_id).await? {
        return Err(ApiError::not_found("GitHub connection"));
    }
    no_content()
}

/// The caller's GitHub login and token, or a 409 saying to connect first.
pub(crate) async fn token_of(app: &App, caller: &Caller) -> ApiResult<(String, String)> {
    let (_, key) = exporter(app)?;
    store::token(&app.db()?, key, &caller.user_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                409,
                ErrorCode::E004,
                "GitHub is not connected: connect it in Settings first",
            )
        })
}

fn push_json(p: &Pushed) -> Value {
    json!({
        "commitSha": p.head,
        "committed": p.committed,
        "written": p.plan.write,
        "deleted": p.plan.delete,
    })
}

/// `GET /api/apps/:id/github`.
pub async fn app_repo(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    exporter(app)?;
    let repo = store::app_repo(&app.db()?, &rec.id, &caller.user_id).await?;
    json(200, &json!({ "repository": repo.map(|r| r.to_json()) }))
}

/// Pushes the app's latest saved version to its repository; the push and the link as it now is.
async fn push_app(
    app: &App,
    caller: &Caller,
    rec: &crate::domain::apps::AppRecord,
    token: &str,
) -> ApiResult<(Pushed, Value)> {
    let db = app.db()?;
    let repo = store::app_repo(&db, &rec.id, &caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("GitHub repository of this app"))?;
    let (version, files) = store::app_files(&app.env, &db, &rec.id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                409,
                ErrorCode::E004,
                "the app has no saved files yet: generate it first, then push",
            )
        })?;
    let (client, _) = exporter(app)?;
    let gh = GitHub::new(&FetchGitHub, &client.endpoints.api, token);
    let message = format!("{} (version {version}, from Byte Platform)", rec.title);
    let pushed = push(
        &gh,
        &PushRequest {
            owner: &repo.owner,
            repo: &repo.name,
            branch: &repo.branch,
            expected_head: repo.last_commit_sha.as_deref(),
            only: None,
            files: &files,
            message: &message,
        },
    )
    .await
    .map_err(|e| e.to_api_error())?;
    if pushed.committed
        && !store::record_push(
            &db,
            &rec.id,
            &caller.user_id,
            repo.last_commit_sha.as_deref(),
            &pushed.head,
        )
        .await?
    {
        // GitHub accepted our fast-forward, so the branch is at our commit whatever our record
        // said meanwhile: record it.
        store::record_push(&db, &rec.id, &caller.user_id, None, &pushed.head).await?;
    }
    let now = store::app_repo(&db, &rec.id, &caller.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("GitHub repository of this app"))?;
    Ok((pushed, now.to_json()))
}

/// `POST /api/apps/:id/github {name?, description?, private?}`: creates the repository on the
/// connected account and pushes the app's files. 201 with the repository and the push.
pub async fn create_app_repo(
    mut req: Request,
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    exporter(app)?;
    let mut body = json_body(&mut req).await?;
    let name = match body.string("name", 100) {
        Patch::Value(n) if !n.is_empty() => Some(n),
        _ => None,
    }
    .unwrap_or_else(|| repo_name_from_title(&rec.title));
    if let Err(m) = check_repo_name(&name) {
        body.error("name", m);
    }
    let description = match body.string("description", MAX_DESCRIPTION) {
        Patch::Value(d) if !d.is_empty() => Some(d),
        _ => rec
            .description
            .clone()
            .map(|d| d.chars().take(MAX_DESCRIPTION).collect()),
    };
    let private = match body.boolean("private") {
        Patch::Value(p) => p,
        _ => true,
    };
    body.finish()?;
    let db = app.db()?;
    if store::app_repo(&db, &rec.id, &caller.user_id)
        .await?
        .is_some()
    {
        return Err(ApiError::new(
            409,
            ErrorCode::E004,
            "the app already has a GitHub repository: push to it, or unlink it first",
        ));
    }
    // Nothing to push is refused before a repository is made for it.
    if !store::has_saved_version(&app.env, &rec.id).await? {
        return Err(ApiError::new(
            409,
            ErrorCode::E004,
            "the app has no saved files yet: generate it first, then export it",
        ));
    }
    let (login, token) = token_of(app, caller).await?;
    let (client, _) = exporter(app)?;
    let gh = GitHub::new(&FetchGitHub, &client.endpoints.api, &token);
    let repo = gh
        .create_repo(&name, description.as_deref(), private)
        .await
        .map_err(|e| e.to_api_error())?;
    // The initial commit GitHub made (auto_init): the first push builds on it.
    let head = gh
        .branch_head(&repo.owner, &repo.name, &repo.default_branch)
        .await
        .map_err(|e| e.to_api_error())?;
    if !store::link_app_repo(
        &db,
        &rec.id,
        &caller.user_id,
        &repo.owner,
        &repo.name,
        &repo.html_url,
        &repo.default_branch,
        repo.private,
        head.as_deref(),
    )
    .await?
    {
        return Err(ApiError::new(
            409,
            ErrorCode::E004,
            format!("the app was linked to another repository meanwhile; {} was created on {login}'s account and left as it is", repo.full_name),
        ));
    }
    let (pushed, repository) = push_app(app, caller, &rec, &token).await?;
    json(
        201,
        &json!({ "repository": repository, "push": push_json(&pushed) }),
    )
}

/// `POST /api/apps/:id/github/push`.
pub async fn push_app_route(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    exporter(app)?;
    if store::app_repo(&app.db()?, &rec.id, &caller.user_id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("GitHub repository of this app"));
    }
    let (_, token) = token_of(app, caller).await?;
    let (pushed, repository) = push_app(app, caller, &rec, &token).await?;
    json(
        200,
        &json!({ "repository": repository, "push": push_json(&pushed) }),
    )
}

/// `DELETE /api/apps/:id/github`: forgets the link (the repository stays on GitHub).
pub async fn unlink_app_repo(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let rec = super::sandbox::owned(app, caller, id).await?;
    exporter(app)?;
    if !store::unlink_app_repo(&app.db()?, &rec.id, &caller.user_id).await? {
        return Err(ApiError::not_found("GitHub repository of this app"));
    }
    no_content()
}
