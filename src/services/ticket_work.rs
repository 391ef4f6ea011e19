//! Work on orchestration tickets shared by the routes and the code generator's object: a ticket
//! change written with its cascades and published to the hub ([`write_and_publish`]), a ticket's
//! branch and pull request on GitHub ([`ensure_branch`], [`pr_body`]), and the report of a
//! ticket implemented by the agent once its run ended ([`report`]).
//!
//! Invariants:
//! - every change is committed in D1 before its hub events are published, and only what changed
//!   is published;
//! - a ticket's implementation is reported exactly as decided in
//!   [`crate::domain::orchestrator::implement`]: a failure records its reason and moves nothing;
//!   a success commits only the files the ticket's edit changed to the ticket's branch (made from
//!   the default branch when missing, moved without force), opens its pull request when it has
//!   none, and only then moves the ticket to `review` with `branch_name`, `pr_url` and
//!   `commit_count` true; a GitHub refusal on the way is recorded as the run's failure (the
//!   change stays in the app), and GitHub being unavailable is retried ([`Report::Retry`]) up to
//!   the last attempt, which records it as the failure.

use crate::domain::error::ApiResult;
use crate::domain::github::names::ticket_branch;
use crate::domain::github::push::{push, PushRequest};
use crate::domain::github::{GitHub, GitHubError, GitHubErrorKind, GitHubHttp};
use crate::domain::ids::{AppId, UserId};
use crate::domain::orchestrator::api::{ImplementationState, TicketRecord};
use crate::domain::orchestrator::events;
use crate::domain::orchestrator::implement::{
    commit_message, status_after_success, JobStage, Outcome, TicketJob, MAX_REPORT_ATTEMPTS,
};
use crate::domain::orchestrator::protocol::HubMessage;
use crate::http::App;
use crate::services::github::{self as store, FetchGitHub};
use crate::services::orchestrator_db::{
    self as odb, status_value, ProjectCounts, Set, TicketWritten,
};
use crate::services::orchestrator_hub;
use serde_json::{json, Value};
use std::collections::BTreeSet;

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A change's events, in order, in one publication per project.
pub(crate) async fn publish_all(app: &App, messages: Vec<HubMessage>) {
    orchestrator_hub::publish_all(&app.env, &messages).await;
}

pub(crate) fn counts_json(c: &Option<ProjectCounts>) -> Value {
    match c {
        Some(c) => json!({
            "status": c.status,
            "totalTickets": c.total_tickets as u64,
            "completedTickets": c.completed_tickets as u64,
            "completedAt": c.completed_at.map(|t| t as i64),
        }),
        None => Value::Null,
    }
}

/// Writes a ticket change with its cascades as `user` and publishes what changed (the ticket's
/// fields, the tickets it readied, the project's counts and status). Used by the orchestrator
/// and GitHub routes, the webhook, and the report of an implemented ticket.
pub(crate) async fn write_and_publish(
    app: &App,
    user: &UserId,
    old: &TicketRecord,
    sets: Vec<(&str, Set)>,
    status_change: bool,
) -> ApiResult<TicketWritten> {
    let db = app.db()?;
    let w = odb::write_ticket(&db, user, old, sets, status_change).await?;
    let project = &old.project_id;
    let mut messages = Vec::new();
    if w.applied {
        if let Some(new) = &w.ticket {
            messages.extend(events::ticket_changed(
                project,
                &old.id,
                &to_json(&old.view()),
                &to_json(&new.view()),
            ));
        }
    }
    for t in &w.readied {
        messages.extend(events::ticket_readied(project, t));
    }
    messages.extend(events::project_changed(
        project,
        &counts_json(&w.before),
        &counts_json(&w.after),
    ));
    publish_all(app, messages).await;
    Ok(w)
}

/// The ticket's branch name: the one it has, else its stable slug.
pub fn branch_of(t: &TicketRecord) -> String {
    t.branch_name
        .clone()
        .unwrap_or_else(|| ticket_branch(t.number as u32, &t.title))
}

/// Makes sure `branch` exists in `owner/name`, from `default`'s head when it does not; whether
/// it was created.
pub async fn ensure_branch<H: GitHubHttp>(
    gh: &GitHub<'_, H>,
    owner: &str,
    name: &str,
    default: &str,
    branch: &str,
) -> Result<bool, GitHubError> {
    if gh.branch_head(owner, name, branch).await?.is_some() {
        return Ok(false);
    }
    let head = gh.branch_head(owner, name, default).await?.ok_or_else(|| {
        GitHubError::new(
            GitHubErrorKind::Invalid,
            format!("{owner}/{name} has no branch `{default}` to start from"),
        )
    })?;
    gh.create_branch(owner, name, branch, &head).await?;
    Ok(true)
}

/// The pull request's description: the ticket's description and acceptance criteria.
pub fn pr_body(t: &TicketRecord) -> String {
    let mut out = format!("{}\n", t.description);
    let criteria: Vec<String> = t
        .acceptance_criteria
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    if !criteria.is_empty() {
        out.push_str("\n### Acceptance criteria\n");
        for c in criteria {
            out.push_str(&format!("- [ ] {c}\n"));
        }
    }
    out.push_str(&format!(
        "\n_Ticket {} of a Byte Platform project._\n",
        t.number as u64
    ));
    out
}

/// What reporting a finished job came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Reported (or nothing left to report to: the ticket or its project is gone).
    Done,
    /// Not now (GitHub or D1 unavailable): try again later.
    Retry(String),
}

/// What the GitHub part of a success did.
struct Committed {
    branch: String,
    pr_url: Option<String>,
    commits: u32,
}

/// Reports a finished job of `app_id`'s agent to its ticket (see the module header).
pub async fn report(app: &App, app_id: &AppId, job: &TicketJob) -> Report {
    let JobStage::Finished { outcome } = &job.stage else {
        return Report::Done;
    };
    match report_outcome(app, app_id, job, outcome).await {
        Ok(r) => r,
        Err(e) => Report::Retry(e.message),
    }
}

async fn report_outcome(
    app: &App,
    app_id: &AppId,
    job: &TicketJob,
    outcome: &Outcome,
) -> ApiResult<Report> {
    let db = app.db()?;
    let Some(t) = odb::ticket(&db, &job.user_id, &job.ticket_id).await? else {
        worker::console_warn!(
            "implement: ticket {} is gone (or no longer {}'s to see); its outcome is dropped",
            job.ticket_id,
            job.user_id
        );
        return Ok(Report::Done);
    };
    let failed = |message: String| {
        vec![
            (
                "implementation_state",
                Set::Text(ImplementationState::Failed.as_str().into()),
            ),
            ("implementation_error", Set::Text(message)),
        ]
    };
    let (sets, status) = match outcome {
        Outcome::Failed { message } => (failed(message.clone()), false),
        Outcome::Succeeded {
            version,
            written,
            deleted,
        } => match commit(app, app_id, job, &t, *version, written, deleted).await {
            // GitHub unavailable: tried again later, and on the last attempt recorded as the
            // run's failure (the ticket never stays `running` for good).
            Err(e)
                if matches!(
                    e.kind,
                    GitHubErrorKind::Unavailable | GitHubErrorKind::RateLimited
                ) && job.report_attempts + 1 < MAX_REPORT_ATTEMPTS =>
            {
                return Ok(Report::Retry(e.message));
            }
            Err(e) => (
                failed(format!(
                    "the change is in the app, but it could not be committed to GitHub: {}",
                    e.message
                )),
                false,
            ),
            Ok(c) => {
                let mut sets = vec![
                    (
                        "implementation_state",
                        Set::Text(ImplementationState::Succeeded.as_str().into()),
                    ),
                    ("implementation_error", Set::Null),
                ];
                if let Some(c) = c {
                    if t.branch_name.as_deref() != Some(c.branch.as_str()) {
                        sets.push(("branch_name", Set::Text(c.branch)));
                    }
                    if let (None, Some(url)) = (&t.pr_url, c.pr_url) {
                        sets.push(("pr_url", Set::Text(url)));
                    }
                    if c.commits > 0 {
                        sets.push((
                            "commit_count",
                            Set::TextExpr(
                                c.commits.to_string(),
                                "commit_count + CAST(?v AS INTEGER)",
                            ),
                        ));
                    }
                }
                let to = status_after_success(t.status);
                if let Some(to) = to {
                    sets.push(("status", status_value(to)));
                }
                (sets, to.is_some())
            }
        },
    };
    let w = write_and_publish(app, &job.user_id, &t, sets, status).await?;
    if !w.applied {
        return Ok(Report::Retry(format!(
            "ticket {} changed meanwhile; reporting again",
            t.id
        )));
    }
    Ok(Report::Done)
}

/// Commits the ticket's change to its branch and opens its pull request, when the project has
/// a repository; `None` when it has none (or export is not configured).
async fn commit(
    app: &App,
    app_id: &AppId,
    job: &TicketJob,
    t: &TicketRecord,
    version: Option<u32>,
    written: &[String],
    deleted: &[String],
) -> Result<Option<Committed>, GitHubError> {
    let unavailable = |m: String| GitHubError::new(GitHubErrorKind::Unavailable, m);
    let invalid = |m: &str| GitHubError::new(GitHubErrorKind::Invalid, m.to_string());
    let db = app.db().map_err(|e| unavailable(e.message))?;
    let p = odb::project(&db, &job.user_id, &t.project_id)
        .await
        .map_err(|e| unavailable(e.message))?;
    let Some(p) = p else { return Ok(None) };
    let Some((owner, name)) = p
        .github_repo_name
        .as_deref()
        .and_then(|f| f.split_once('/'))
        .map(|(o, n)| (o.to_string(), n.to_string()))
    else {
        return Ok(None);
    };
    let (Some(client), Some(key)) = (&app.cfg.github_export, &app.cfg.sealing_key) else {
        return Ok(None);
    };
    let default = p
        .github_default_branch
        .clone()
        .unwrap_or_else(|| "main".into());
    let token = match store::token(&db, key, &job.user_id).await {
        Ok(Some((_, token))) => token,
        Ok(None) => {
            return Err(invalid(
                "GitHub is not connected for the person who asked; connect it in Settings and implement the ticket again",
            ))
        }
        Err(e) => return Err(invalid(&e.message)),
    };
    let files = match version {
        Some(v) => store::version_files(&app.env, app_id, v).await,
        None => store::app_files(&app.env, &db, app_id).await,
    }
    .map_err(|e| unavailable(e.message))?
    .map(|(_, f)| f)
    .ok_or_else(|| invalid("the app's saved version of the change could not be found"))?;
    let gh = GitHub::new(&FetchGitHub, &client.endpoints.api, &token);
    let branch = branch_of(t);
    ensure_branch(&gh, &owner, &name, &default, &branch).await?;
    let head = gh.branch_head(&owner, &name, &branch).await?;
    let only: BTreeSet<String> = written.iter().chain(deleted).cloned().collect();
    let message = commit_message(t.number as u32, &t.title);
    let pushed = push(
        &gh,
        &PushRequest {
            owner: &owner,
            repo: &name,
            branch: &branch,
            expected_head: head.as_deref(),
            files: &files,
            only: Some(&only),
            message: &message,
        },
    )
    .await?;
    let pr_url = match &t.pr_url {
        Some(u) => Some(u.clone()),
        None => {
            let title = format!("Ticket {}: {}", t.number as u64, t.title);
            match gh
                .create_pull(&owner, &name, &title, &branch, &default, &pr_body(t))
                .await
            {
                Ok(pull) => Some(pull.html_url),
                // Opened by someone meanwhile: the branch is under review already.
                Err(e) if e.kind == GitHubErrorKind::PullExists => None,
                Err(e) => return Err(e),
            }
        }
    };
    Ok(Some(Committed {
        branch,
        pr_url,
        commits: pushed.committed as u32,
    }))
}
