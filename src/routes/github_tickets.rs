//! GitHub for orchestration projects and tickets (issue 14, the spec's GitHub Integration API):
//! - `POST /api/orchestrator/projects/:id/github/create-repo` → 201 `{repoUrl, repoName,
//!   defaultBranch}`: a repository on the caller's connected account, with the project's app's
//!   files pushed when it has saved ones;
//! - `POST /api/orchestrator/tickets/:id/github/create-branch` → 201 `{branchName, created}`: the
//!   ticket's branch (`ticket-<n>-<slug>`, stable) from the default branch's head;
//! - `POST /api/orchestrator/tickets/:id/github/create-pr` → 201 `{prUrl, number}`;
//! - `POST /api/webhooks/github`: GitHub's deliveries for linked repositories.
//!
//! Invariants:
//! - a project or ticket the caller may not see is a 404, exactly like a missing one;
//! - the ticket's `branch_name` and `pr_url` are written only after GitHub made the branch or
//!   the pull request, and `commit_count` only from verified push deliveries; every change goes
//!   through the orchestrator's ticket write (its cascades) and is published to the hub;
//! - a webhook delivery counts only with a valid `X-Hub-Signature-256` (401 E001 and nothing
//!   changed otherwise), and each `X-GitHub-Delivery` id at most once: a replay changes nothing.

use super::github::token_of;
use super::orchestrator::{counts_json, publish_all, to_json, write_and_publish};
use crate::domain::error::{ApiError, ApiResult, ErrorCode};
use crate::domain::github::names::{check_repo_name, repo_name_from_title};
use crate::domain::github::push::{push, PushRequest};
use crate::domain::github::webhook::{self, Event};
use crate::domain::github::{GitHub, GitHubErrorKind};
use crate::domain::ids::{ProjectId, TicketId, UserId};
use crate::domain::input::Patch;
use crate::domain::orchestrator::api::{ProjectRecord, TicketRecord};
use crate::domain::orchestrator::events;
use crate::domain::orchestrator::lifecycle;
use crate::domain::orchestrator::model::TicketStatus;
use crate::http::auth::Caller;
use crate::http::{header, json, json_body, read_body, App};
use crate::services::github::{self as store, FetchGitHub};
use crate::services::orchestrator_db::{self as odb, status_value, Set};
use crate::services::ticket_work::{branch_of, ensure_branch, pr_body};
use serde_json::{json, Value};
use worker::{Request, Response};

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(409, ErrorCode::E004, message)
}

fn api_base(app: &App) -> ApiResult<&str> {
    app.cfg
        .github_export
        .as_ref()
        .map(|c| c.endpoints.api.as_str())
        .ok_or_else(|| {
            ApiError::new(
                404,
                ErrorCode::E002,
                "GitHub export is not configured on this deployment (GITHUB_EXPORTER_CLIENT_ID)",
            )
        })
}

async fn project_of(app: &App, caller: &Caller, id: &str) -> ApiResult<ProjectRecord> {
    let missing = || ApiError::not_found("project");
    let id = ProjectId::parse(id).ok_or_else(missing)?;
    odb::project(&app.db()?, &caller.user_id, &id)
        .await?
        .ok_or_else(missing)
}

async fn ticket_of(
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<(TicketRecord, ProjectRecord)> {
    let missing = || ApiError::not_found("ticket");
    let id = TicketId::parse(id).ok_or_else(missing)?;
    let db = app.db()?;
    let t = odb::ticket(&db, &caller.user_id, &id)
        .await?
        .ok_or_else(missing)?;
    let p = odb::project(&db, &caller.user_id, &t.project_id)
        .await?
        .ok_or_else(missing)?;
    Ok((t, p))
}

/// The project's repository as `(owner, name, default branch)`, or a 409 saying to create one.
fn repo_of(p: &ProjectRecord) -> ApiResult<(String, String, String)> {
    let full = p.github_repo_name.as_deref().unwrap_or("");
    match full.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() => Ok((
            o.to_string(),
            n.to_string(),
            p.github_default_branch
                .clone()
                .unwrap_or_else(|| "main".into()),
        )),
        _ => Err(conflict(
            "the project has no GitHub repository: create one first (POST …/github/create-repo)",
        )),
    }
}

/// `POST /api/orchestrator/projects/:id/github/create-repo {name?, description?, private?}`.
pub async fn create_repo(
    mut req: Request,
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<Response> {
    let project = project_of(app, caller, id).await?;
    let base = api_base(app)?;
    let has_body = header(&req, "Content-Length").is_some_and(|l| l != "0");
    let (mut name, mut description, mut private) = (None, None, true);
    if has_body {
        let mut body = json_body(&mut req).await?;
        if let Patch::Value(n) = body.string("name", 100) {
            if let Err(m) = check_repo_name(&n) {
                body.error("name", m);
            }
            name = Some(n);
        }
        if let Patch::Value(d) = body.string("description", super::github::MAX_DESCRIPTION) {
            description = Some(d).filter(|d| !d.is_empty());
        }
        if let Patch::Value(p) = body.boolean("private") {
            private = p;
        }
        body.finish()?;
    }
    if let Some(url) = &project.github_repo_url {
        return Err(conflict(format!(
            "the project already has a repository: {url}"
        )));
    }
    let name = name.unwrap_or_else(|| repo_name_from_title(&project.title));
    let description = description.or_else(|| {
        project
            .description
            .as_ref()
            .map(|d| d.chars().take(super::github::MAX_DESCRIPTION).collect())
    });
    let (_, token) = token_of(app, caller).await?;
    let gh = GitHub::new(&FetchGitHub, base, &token);
    let repo = gh
        .create_repo(&name, description.as_deref(), private)
        .await
        .map_err(|e| e.to_api_error())?;
    // The project's app goes in with its files, when it has saved ones and is the caller's.
    let app_files = match &project.app_id {
        Some(a) => match crate::services::db::app_by_id(&app.db()?, a).await? {
            Some(rec) if rec.user_id.as_ref() == Some(&caller.user_id) => {
                store::app_files(&app.env, &app.db()?, a).await?
            }
            _ => None,
        },
        None => None,
    };
    if let Some((version, files)) = app_files {
        let head = gh
            .branch_head(&repo.owner, &repo.name, &repo.default_branch)
            .await
            .map_err(|e| e.to_api_error())?;
        let message = format!("{} (version {version}, from Byte Platform)", project.title);
        push(
            &gh,
            &PushRequest {
                owner: &repo.owner,
                repo: &repo.name,
                branch: &repo.default_branch,
                expected_head: head.as_deref(),
                only: None,
                files: &files,
                message: &message,
            },
        )
        .await
        .map_err(|e| e.to_api_error())?;
    }
    let db = app.db()?;
    if !store::link_project_repo(
        &db,
        &caller.user_id,
        &project.id,
        &repo.html_url,
        &repo.full_name,
        &repo.default_branch,
    )
    .await?
    {
        return Err(conflict(format!(
            "the project was linked to another repository meanwhile; {} was created and left as it is",
            repo.full_name
        )));
    }
    if let Some(now) = odb::project(&db, &caller.user_id, &project.id).await? {
        publish_all(
            app,
            events::project_changed(
                &project.id,
                &to_json(&project.view()),
                &to_json(&now.view()),
            ),
        )
        .await;
    }
    json(
        201,
        &json!({ "repoUrl": repo.html_url, "repoName": repo.full_name, "defaultBranch": repo.default_branch }),
    )
}

/// Writes `sets` to the ticket (with the orchestrator's cascades and hub events), as `user`;
/// a write the ticket's state no longer allows is a 409.
async fn write(
    app: &App,
    user: &UserId,
    t: &TicketRecord,
    sets: Vec<(&str, Set)>,
    status: bool,
) -> ApiResult<()> {
    let w = write_and_publish(app, user, t, sets, status).await?;
    if !w.applied {
        return Err(conflict(format!(
            "the ticket changed meanwhile, or its project ({}) does not accept the change now",
            t.project_status
        )));
    }
    Ok(())
}

/// `POST /api/orchestrator/tickets/:id/github/create-branch`.
pub async fn create_branch(app: &App, caller: &Caller, id: &str) -> ApiResult<Response> {
    let (t, p) = ticket_of(app, caller, id).await?;
    let base = api_base(app)?;
    let (owner, name, default) = repo_of(&p)?;
    let branch = branch_of(&t);
    let (_, token) = token_of(app, caller).await?;
    let gh = GitHub::new(&FetchGitHub, base, &token);
    let created = ensure_branch(&gh, &owner, &name, &default, &branch)
        .await
        .map_err(|e| match e.kind {
            GitHubErrorKind::Invalid => conflict(e.message),
            _ => e.to_api_error(),
        })?;
    if t.branch_name.as_deref() != Some(branch.as_str()) {
        write(
            app,
            &caller.user_id,
            &t,
            vec![("branch_name", Set::Text(branch.clone()))],
            false,
        )
        .await?;
    }
    json(201, &json!({ "branchName": branch, "created": created }))
}

/// `POST /api/orchestrator/tickets/:id/github/create-pr {title?, body?}`.
pub async fn create_pr(
    mut req: Request,
    app: &App,
    caller: &Caller,
    id: &str,
) -> ApiResult<Response> {
    let (t, p) = ticket_of(app, caller, id).await?;
    let base = api_base(app)?;
    let has_body = header(&req, "Content-Length").is_some_and(|l| l != "0");
    let (mut title, mut text) = (None, None);
    if has_body {
        let mut body = json_body(&mut req).await?;
        if let Patch::Value(v) = body.string("title", 256) {
            title = Some(v).filter(|v| !v.is_empty());
        }
        if let Patch::Value(v) = body.string("body", 10_000) {
            text = Some(v);
        }
        body.finish()?;
    }
    let (owner, name, default) = repo_of(&p)?;
    let Some(branch) = t.branch_name.clone() else {
        return Err(conflict(
            "the ticket has no branch: create it first (POST …/github/create-branch)",
        ));
    };
    if let Some(url) = &t.pr_url {
        return Err(conflict(format!(
            "the ticket already has a pull request: {url}"
        )));
    }
    let title = title.unwrap_or_else(|| format!("Ticket {}: {}", t.number as u64, t.title));
    let text = text.unwrap_or_else(|| pr_body(&t));
    let (_, token) = token_of(app, caller).await?;
    let gh = GitHub::new(&FetchGitHub, base, &token);
    let pull = gh
        .create_pull(&owner, &name, &title, &branch, &default, &text)
        .await
        .map_err(|e| match e.kind {
            // "No commits between …": nothing to review yet.
            GitHubErrorKind::Invalid if e.message.contains("No commits") => conflict(format!(
                "`{branch}` has no commits beyond `{default}` yet: push work to it first"
            )),
            _ => e.to_api_error(),
        })?;
    write(
        app,
        &caller.user_id,
        &t,
        vec![("pr_url", Set::Text(pull.html_url.clone()))],
        false,
    )
    .await?;
    json(
        201,
        &json!({ "prUrl": pull.html_url, "number": pull.number }),
    )
}

/// `POST /api/webhooks/github`.
pub async fn webhook(mut req: Request, app: &App) -> ApiResult<Response> {
    let secret = app.cfg.webhook_secret.as_ref().ok_or_else(|| {
        ApiError::new(
            404,
            ErrorCode::E002,
            "GitHub webhooks are not configured on this deployment (WEBHOOK_SECRET)",
        )
    })?;
    let signature = header(&req, "X-Hub-Signature-256");
    let body = read_body(&mut req).await?;
    if !webhook::verify_signature(secret.expose(), &body, signature.as_deref()) {
        return Err(ApiError::unauthorized(
            "the delivery's X-Hub-Signature-256 is missing or does not match WEBHOOK_SECRET",
        ));
    }
    let delivery = header(&req, "X-GitHub-Delivery")
        .filter(|d| !d.is_empty() && d.len() <= 100)
        .ok_or_else(|| {
            ApiError::field("X-GitHub-Delivery", "is required (at most 100 characters)")
        })?;
    let event = header(&req, "X-GitHub-Event")
        .filter(|e| !e.is_empty() && e.len() <= 100)
        .ok_or_else(|| ApiError::field("X-GitHub-Event", "is required"))?;
    let payload: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::validation("the payload is not JSON"))?;
    let parsed = webhook::parse(&event, &payload).map_err(ApiError::validation)?;
    let db = app.db()?;
    if !store::claim_delivery(&db, &delivery, &event).await? {
        return json(
            200,
            &json!({ "handled": false, "duplicate": true, "tickets": [] }),
        );
    }
    let (repo, branch) = match &parsed {
        Event::PullClosed { repo, branch, .. } | Event::Push { repo, branch, .. } => (repo, branch),
        Event::Ignored => {
            return json(
                200,
                &json!({ "handled": false, "duplicate": false, "tickets": [] }),
            )
        }
    };
    match apply(app, &delivery, &parsed, repo, branch).await {
        Ok(touched) => json(
            200,
            &json!({ "handled": true, "duplicate": false, "tickets": touched }),
        ),
        Err(e) => {
            // Not applied: GitHub's redelivery must be able to try again.
            store::release_delivery(&db, &delivery).await?;
            Err(e)
        }
    }
}

/// Applies a verified delivery's event to the tickets on its branch; the tickets it changed.
async fn apply(
    app: &App,
    delivery: &str,
    parsed: &Event,
    repo: &str,
    branch: &str,
) -> ApiResult<Vec<TicketId>> {
    let db = app.db()?;
    let mut touched = Vec::new();
    for found in store::tickets_on_branch(&db, repo, branch).await? {
        let user = &found.stakeholder_user_id;
        let Some(t) = odb::ticket(&db, user, &found.id).await? else {
            continue;
        };
        let (sets, status): (Vec<(&str, Set)>, bool) = match parsed {
            Event::PullClosed {
                merged: true, url, ..
            } if !lifecycle::ticket_is_final(t.status) => {
                let mut s = vec![
                    ("status", status_value(TicketStatus::Completed)),
                    ("completed_at", Set::Expr("unixepoch()")),
                ];
                if t.pr_url.is_none() && !url.is_empty() {
                    s.push(("pr_url", Set::Text(url.clone())));
                }
                (s, true)
            }
            Event::PullClosed { merged: false, .. } if t.status == TicketStatus::Review => (
                vec![("status", status_value(TicketStatus::InProgress))],
                true,
            ),
            Event::Push { commits, .. } if *commits > 0 => (
                vec![(
                    "commit_count",
                    Set::TextExpr(commits.to_string(), "commit_count + CAST(?v AS INTEGER)"),
                )],
                false,
            ),
            _ => continue,
        };
        let w = write_and_publish(app, user, &t, sets, status).await?;
        if w.applied {
            touched.push(t.id.clone());
        } else {
            worker::console_log!(
                "webhook {delivery}: ticket {} not changed (it is {}, its project {})",
                t.id,
                t.status,
                counts_json(&w.after)
            );
        }
    }
    Ok(touched)
}
