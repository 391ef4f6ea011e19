//! The request pipeline CORS → identity → rate limit → auth → handler, and the dispatch of a
//! route id to its handler. The route table itself (paths, methods, auth levels, rate-limit
//! classes) is [`crate::domain::routes`]; this module only acts on what a row says.

mod account;
mod admin;
mod agent;
mod ai;
mod apps;
mod auth;
mod deploy;
mod github;
mod github_tickets;
mod health;
mod orchestrator;
mod orchestrator_ws;
mod preview;
pub(crate) mod sandbox;

use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ratelimit::{limiter_key, Decision, Limit};
use crate::domain::routes::{resolve, AuthLevel, RateClass, Resolved, Route};
use crate::domain::web;
use crate::http::auth::{check_csrf, read_credentials, Caller, Identity};
use crate::http::{client_ip, error_response, finish, header, App};
use crate::services::now_ms;
use crate::services::ratelimit;
use crate::services::sessions::confirm;
use worker::{Context, Env, Method, Request, Response};

async fn dispatch(
    route: Route,
    req: Request,
    app: &App,
    caller: Option<&Caller>,
) -> ApiResult<Response> {
    let user = || caller.ok_or_else(|| ApiError::unauthorized("authentication required"));
    match route {
        Route::Health => health::health(app).await,
        Route::OpenApi => health::openapi(),
        Route::Providers => auth::providers(app),
        Route::Register => auth::register(req, app).await,
        Route::Login => auth::login(req, app).await,
        Route::Logout => auth::logout(&req, app, user()?).await,
        Route::Me => auth::me(app, user()?).await,
        Route::DeleteAccount => account::delete(req, app, user()?).await,
        Route::Verify => auth::verify(req, app).await,
        Route::VerifyResend => auth::resend(req, app, user()?).await,
        Route::ChangeEmail => auth::change_email(req, app, user()?).await,
        Route::DevOutbox => auth::outbox(req, app).await,
        Route::OAuthStart(p) => auth::oauth_start(req, app, &p).await,
        Route::OAuthCallback(p) => auth::oauth_callback(req, app, &p).await,
        Route::ListApps => apps::list(req, app, user()?).await,
        Route::ListPublicApps => apps::list_public(req, app).await,
        Route::CreateApp => apps::create(req, app, user()?).await,
        Route::GetApp(id) => apps::get(app, caller, &id).await,
        Route::PatchApp(id) => apps::patch(req, app, user()?, &id).await,
        Route::DeleteApp(id) => apps::delete(app, user()?, &id).await,
        Route::AdminUsers => admin::users(req, app).await,
        Route::Templates => sandbox::catalog(),
        Route::Template(name) => sandbox::template(app, &name).await,
        Route::SandboxCreate(id) => sandbox::create(req, app, user()?, &id).await,
        Route::SandboxStatus(id) => sandbox::status(req, app, user()?, &id).await,
        Route::SandboxStop(id) => sandbox::stop(app, user()?, &id).await,
        Route::Workspace(id, call) => sandbox::workspace(req, app, user()?, &id, call).await,
        Route::AiKeys => ai::list_keys(app, user()?).await,
        Route::AiPutKey(p) => ai::put_key(req, app, user()?, &p).await,
        Route::AiDeleteKey(p) => ai::delete_key(app, user()?, &p).await,
        Route::AiModels => ai::models(app, user()?).await,
        Route::AiPatchModel(op) => ai::patch_model(req, app, user()?, &op).await,
        Route::AiDeleteModel(op) => ai::delete_model(app, user()?, &op).await,
        Route::AiTest => ai::test(req, app, user()?).await,
        Route::AiUsage => ai::usage(app, user()?).await,
        Route::AppUsage(id) => ai::app_usage(app, user()?, &id).await,
        Route::AgentChat(id) => agent::chat(req, app, user()?, &id).await,
        Route::AgentState(id) => agent::state(req, app, user()?, &id).await,
        Route::AgentEvents(id) => agent::events(req, app, user()?, &id).await,
        Route::AgentSocket(id) => agent::socket(req, app, user()?, &id).await,
        Route::AgentVersions(id) => agent::versions(app, user()?, &id).await,
        Route::AgentVersion(id, n) => agent::version(app, user()?, &id, &n).await,
        Route::AgentVersionFile(id, n, path) => {
            agent::version_file(app, user()?, &id, &n, &path).await
        }
        Route::Deploy(id) => deploy::deploy(&req, app, user()?, &id).await,
        Route::Undeploy(id) => deploy::undeploy(app, user()?, &id).await,
        Route::Deployments(id) => deploy::list(app, user()?, &id).await,
        Route::Rollback(id, n) => deploy::rollback(&req, app, user()?, &id, &n).await,
        Route::GitHubStatus => github::status(app, user()?).await,
        Route::GitHubConnect => github::connect(req, app, user()?).await,
        Route::GitHubCallback => github::callback(req, app).await,
        Route::GitHubDisconnect => github::disconnect(app, user()?).await,
        Route::AppGitHub(id) => github::app_repo(app, user()?, &id).await,
        Route::AppGitHubCreate(id) => github::create_app_repo(req, app, user()?, &id).await,
        Route::AppGitHubUnlink(id) => github::unlink_app_repo(app, user()?, &id).await,
        Route::AppGitHubPush(id) => github::push_app_route(app, user()?, &id).await,
        Route::ProjectGitHubRepo(id) => github_tickets::create_repo(req, app, user()?, &id).await,
        Route::TicketGitHubBranch(id) => github_tickets::create_branch(app, user()?, &id).await,
        Route::TicketGitHubPr(id) => github_tickets::create_pr(req, app, user()?, &id).await,
        Route::ImplementTicket(id) => orchestrator::implement(req, app, user()?, &id).await,
        Route::GitHubWebhook => github_tickets::webhook(req, app).await,
        Route::OrchestratorSocket => orchestrator_ws::socket(req, app, caller).await,
        Route::ListProjects => orchestrator::list_projects(req, app, user()?).await,
        Route::CreateProject => orchestrator::create_project(req, app, user()?).await,
        Route::GetProject(id) => orchestrator::get_project(app, user()?, &id).await,
        Route::PatchProject(id) => orchestrator::patch_project(req, app, user()?, &id).await,
        Route::GenerateTickets(id) => orchestrator::generate(app, user()?, &id).await,
        Route::ListTickets => orchestrator::list_tickets(req, app, user()?).await,
        Route::PatchTicket(id) => orchestrator::patch_ticket(req, app, user()?, &id).await,
        Route::AssignTicket(id) => orchestrator::assign(req, app, user()?, &id).await,
    }
}

fn rate_headers(resp: &Response, d: &Decision) {
    let h = resp.headers();
    let _ = h.set("X-RateLimit-Limit", &d.limit.to_string());
    let _ = h.set("X-RateLimit-Remaining", &d.remaining.to_string());
    let _ = h.set(
        "X-RateLimit-Reset",
        &((d.reset_ms + 999) / 1000).to_string(),
    );
}

fn preflight() -> Response {
    let resp = Response::empty().expect("empty response").with_status(204);
    let h = resp.headers();
    let _ = h.set("Access-Control-Allow-Methods", web::CORS_ALLOW_METHODS);
    let _ = h.set("Access-Control-Allow-Headers", web::CORS_ALLOW_HEADERS);
    let _ = h.set("Access-Control-Max-Age", "600");
    resp
}

async fn api(req: Request, app: &App) -> Response {
    let method = req.method();
    if method == Method::Options {
        return preflight();
    }
    // The request's own method: `worker::Method` reads any method it does not know as GET.
    let Resolved { route, entry } = match resolve(&req.inner().method(), &req.path()) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    // The token is verified locally first, so the limiter can key on the user (never on the
    // public sign-in routes: `limiter_key`); then the session check and the limiter run
    // concurrently (two round trips become one).
    let claimed = read_credentials(&req, app);
    let key = limiter_key(
        entry.class.unwrap_or(RateClass::Api),
        entry.auth,
        claimed.user().map(|c| c.user_id.as_str()),
        &client_ip(&req),
    );
    let limit = entry.class.map(|class| (class, limit_of(app, class)));
    let rate = async {
        match limit {
            Some((class, limit)) => ratelimit::hit(&app.env, class, &key, limit, 1)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let session = async { confirm(claimed, &app.kv()?, &app.db()?).await };
    let (identity, decision) = futures_util::join!(session, rate);
    let (identity, decision) = match (identity, decision) {
        (Ok(i), Ok(d)) => (i, d),
        (Err(e), _) | (_, Err(e)) => return error_response(&e),
    };
    let result = match &decision {
        Some(d) if !d.allowed => {
            let e = ApiError::rate_limited(format!(
                "rate limit of {} requests exceeded; retry in {} s",
                d.limit,
                d.retry_after_secs(now_ms())
            ));
            let resp = error_response(&e);
            let _ = resp.headers().set(
                "Retry-After",
                &d.retry_after_secs(now_ms()).max(1).to_string(),
            );
            Ok(resp)
        }
        _ => authorize_and_dispatch(route, entry.auth, req, app, identity).await,
    };
    let resp = result.unwrap_or_else(|e| {
        let resp = error_response(&e);
        // A handler's own limit (the AI budget, the sign-in backoff) names its wait.
        if let (429, Some(s)) = (e.status, e.fields.get("retryAfter")) {
            let _ = resp.headers().set("Retry-After", s);
        }
        resp
    });
    if let Some(d) = &decision {
        rate_headers(&resp, d);
    }
    resp
}

/// The configured limit of a rate-limit class.
fn limit_of(app: &App, class: RateClass) -> Limit {
    match class {
        RateClass::Auth => app.cfg.auth_limit,
        RateClass::Api => app.cfg.api_limit,
        RateClass::Ai => app.cfg.ai_limit,
        RateClass::AiTokens => app.cfg.ai_token_limit,
        RateClass::Preview => app.cfg.preview_limit,
        RateClass::Deploy => app.cfg.deploy.limit,
    }
}

async fn authorize_and_dispatch(
    route: Route,
    level: AuthLevel,
    req: Request,
    app: &App,
    identity: Identity,
) -> ApiResult<Response> {
    let caller = match identity {
        Identity::User(c) => Some(c),
        // A bad credential on a protected route is a 401; on a public route the request
        // proceeds anonymously unless it was an explicit bearer token.
        Identity::Invalid(e)
            if level != AuthLevel::Public || header(&req, "Authorization").is_some() =>
        {
            return Err(e)
        }
        _ => None,
    };
    if level != AuthLevel::Public {
        let c = caller
            .as_ref()
            .ok_or_else(|| ApiError::unauthorized("authentication required"))?;
        check_csrf(&req, app, c)?;
        auth::gate(app, c, &route).await?;
        if level == AuthLevel::Admin {
            let user = crate::services::db::user_by_id(&app.db()?, &c.user_id).await?;
            if !user.is_some_and(|u| auth::is_admin(app, &u)) {
                return Err(ApiError::forbidden("administrator role required"));
            }
        }
    }
    dispatch(route, req, app, caller.as_ref()).await
}

/// Non-API paths are the web app's static assets.
async fn assets(req: Request, env: &Env) -> Response {
    let fetched = async { env.assets("ASSETS")?.fetch_request(req).await };
    match fetched.await {
        Ok(r) => r,
        Err(e) => error_response(&e.into()),
    }
}

pub async fn handle(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let origin = header(&req, "Origin");
    let path = req.path();
    let app = match App::new(env) {
        Ok(a) => a,
        Err(e) => {
            worker::console_error!("configuration error: {e}");
            return Ok(finish(
                error_response(&ApiError::unavailable("service misconfigured")),
                None,
                None,
            ));
        }
    };
    // Preview hostnames belong to the generated apps: their responses pass through untouched
    // (the platform's CSP would forbid what a dev server legitimately does).
    let host = header(&req, "Host").unwrap_or_default();
    if let Some(app_id) =
        crate::domain::sandbox::app_for_preview_host(&host, &app.cfg.preview_domain)
    {
        return Ok(preview::serve(req, &app, &app_id).await);
    }
    // Deployed apps' hostnames: the app's own answers, on its own origin.
    if let Some(app_id) = crate::domain::deploy::call::app_for_host(&host, &app.cfg.deploy.domain) {
        return Ok(deploy::serve(req, &app, app_id.as_str()).await);
    }
    if !crate::domain::hosts::served(
        &host,
        app.cfg.public_url.as_deref(),
        &app.cfg.preview_domain,
    ) {
        let e = ApiError::new(
            421,
            crate::domain::error::ErrorCode::E004,
            "this server does not answer for that host name",
        );
        return Ok(finish(error_response(&e), None, None));
    }
    if !(path == "/api" || path.starts_with("/api/")) {
        return Ok(finish(assets(req, &app.env).await, Some(&app.cfg), None));
    }
    let resp = api(req, &app).await;
    Ok(finish(resp, Some(&app.cfg), origin.as_deref()))
}
