//! The route table: every API route, its auth level and its rate-limit class, in one function
//! ([`Route::resolve`]); and the request pipeline CORS → identity → rate limit → auth → handler.

mod admin;
mod agent;
mod ai;
mod apps;
mod auth;
mod health;
mod preview;
pub(crate) mod sandbox;

use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ratelimit::Decision;
use crate::domain::web;
use crate::http::auth::{check_csrf, confirm, read_credentials, Caller, Identity};
use crate::http::{client_ip, error_response, finish, header, internal, App};
use crate::services::now_ms;
use crate::services::ratelimit::{self, Class};
use sandbox::WorkspaceCall;
use worker::{Context, Env, Method, Request, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLevel {
    Public,
    Authenticated,
    Admin,
}

/// Every API route. Path parameters are carried in the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Health,
    Providers,
    Register,
    Login,
    Logout,
    Me,
    OAuthStart(String),
    OAuthCallback(String),
    ListApps,
    ListPublicApps,
    CreateApp,
    GetApp(String),
    PatchApp(String),
    DeleteApp(String),
    AdminUsers,
    Templates,
    Template(String),
    SandboxCreate(String),
    SandboxStatus(String),
    SandboxStop(String),
    Workspace(String, WorkspaceCall),
    AiKeys,
    AiPutKey(String),
    AiDeleteKey(String),
    AiModels,
    AiPatchModel(String),
    AiDeleteModel(String),
    AiTest,
    AiUsage,
    AgentChat(String),
    AgentState(String),
    AgentEvents(String),
    AgentSocket(String),
    AgentVersions(String),
    AgentVersion(String, String),
    AgentVersionFile(String, String, String),
}

impl Route {
    /// Maps method and path to a route: unknown path → 404 E002, known path with another
    /// method → 405.
    fn resolve(method: &Method, path: &str) -> ApiResult<Route> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let m = method.to_string();
        let by_method = |options: Vec<(&str, Route)>| -> ApiResult<Route> {
            let allowed: Vec<&str> = options.iter().map(|(m, _)| *m).collect();
            options
                .into_iter()
                .find(|(om, _)| *om == m || (m == "HEAD" && *om == "GET"))
                .map(|(_, r)| r)
                .ok_or_else(|| {
                    ApiError::new(
                        405,
                        crate::domain::error::ErrorCode::E004,
                        format!("method not allowed; use {}", allowed.join(", ")),
                    )
                })
        };
        match segments.as_slice() {
            ["api", "health"] => by_method(vec![("GET", Route::Health)]),
            ["api", "auth", "providers"] => by_method(vec![("GET", Route::Providers)]),
            ["api", "auth", "register"] => by_method(vec![("POST", Route::Register)]),
            ["api", "auth", "login"] => by_method(vec![("POST", Route::Login)]),
            ["api", "auth", "logout"] => by_method(vec![("POST", Route::Logout)]),
            ["api", "auth", "me"] => by_method(vec![("GET", Route::Me)]),
            ["api", "auth", "oauth", p] => {
                by_method(vec![("GET", Route::OAuthStart(p.to_string()))])
            }
            ["api", "auth", "callback", p] => {
                by_method(vec![("GET", Route::OAuthCallback(p.to_string()))])
            }
            ["api", "apps"] => {
                by_method(vec![("GET", Route::ListApps), ("POST", Route::CreateApp)])
            }
            ["api", "apps", "public"] => by_method(vec![("GET", Route::ListPublicApps)]),
            ["api", "apps", id] => by_method(vec![
                ("GET", Route::GetApp(id.to_string())),
                ("PATCH", Route::PatchApp(id.to_string())),
                ("DELETE", Route::DeleteApp(id.to_string())),
            ]),
            ["api", "admin", "users"] => by_method(vec![("GET", Route::AdminUsers)]),
            ["api", "templates"] => by_method(vec![("GET", Route::Templates)]),
            ["api", "templates", name] => {
                by_method(vec![("GET", Route::Template(name.to_string()))])
            }
            ["api", "apps", id, "sandbox"] => by_method(vec![
                ("POST", Route::SandboxCreate(id.to_string())),
                ("GET", Route::SandboxStatus(id.to_string())),
                ("DELETE", Route::SandboxStop(id.to_string())),
            ]),
            ["api", "apps", id, "sandbox", "files"] => by_method(vec![
                (
                    "POST",
                    Route::Workspace(id.to_string(), WorkspaceCall::WriteFiles),
                ),
                (
                    "GET",
                    Route::Workspace(id.to_string(), WorkspaceCall::ReadFile),
                ),
            ]),
            ["api", "apps", id, "sandbox", "tree"] => by_method(vec![(
                "GET",
                Route::Workspace(id.to_string(), WorkspaceCall::Tree),
            )]),
            ["api", "apps", id, "sandbox", "exec"] => by_method(vec![(
                "POST",
                Route::Workspace(id.to_string(), WorkspaceCall::Exec),
            )]),
            ["api", "apps", id, "sandbox", "logs"] => by_method(vec![(
                "GET",
                Route::Workspace(id.to_string(), WorkspaceCall::Logs),
            )]),
            ["api", "apps", id, "sandbox", "errors"] => by_method(vec![(
                "GET",
                Route::Workspace(id.to_string(), WorkspaceCall::Errors),
            )]),
            ["api", "ai", "keys"] => by_method(vec![("GET", Route::AiKeys)]),
            ["api", "ai", "keys", p] => by_method(vec![
                ("PUT", Route::AiPutKey(p.to_string())),
                ("DELETE", Route::AiDeleteKey(p.to_string())),
            ]),
            ["api", "ai", "models"] => by_method(vec![("GET", Route::AiModels)]),
            ["api", "ai", "models", op] => by_method(vec![
                ("PATCH", Route::AiPatchModel(op.to_string())),
                ("DELETE", Route::AiDeleteModel(op.to_string())),
            ]),
            ["api", "ai", "test"] => by_method(vec![("POST", Route::AiTest)]),
            ["api", "ai", "usage"] => by_method(vec![("GET", Route::AiUsage)]),
            ["api", "agent", "chat", id] => {
                by_method(vec![("POST", Route::AgentChat(id.to_string()))])
            }
            ["api", "agent", id, "state"] => {
                by_method(vec![("GET", Route::AgentState(id.to_string()))])
            }
            ["api", "agent", id, "events"] => {
                by_method(vec![("GET", Route::AgentEvents(id.to_string()))])
            }
            ["api", "agent", id, "ws"] => {
                by_method(vec![("GET", Route::AgentSocket(id.to_string()))])
            }
            ["api", "agent", id, "versions"] => {
                by_method(vec![("GET", Route::AgentVersions(id.to_string()))])
            }
            ["api", "agent", id, "versions", n] => by_method(vec![(
                "GET",
                Route::AgentVersion(id.to_string(), n.to_string()),
            )]),
            ["api", "agent", id, "versions", n, "files", rest @ ..] if !rest.is_empty() => {
                by_method(vec![(
                    "GET",
                    Route::AgentVersionFile(id.to_string(), n.to_string(), rest.join("/")),
                )])
            }
            _ => Err(ApiError::new(
                404,
                crate::domain::error::ErrorCode::E002,
                format!("no route for {path}"),
            )),
        }
    }

    fn auth_level(&self) -> AuthLevel {
        match self {
            Route::Health
            | Route::Providers
            | Route::Register
            | Route::Login
            | Route::OAuthStart(_)
            | Route::OAuthCallback(_)
            | Route::ListPublicApps
            | Route::Templates
            | Route::Template(_)
            | Route::GetApp(_) => AuthLevel::Public,
            Route::AdminUsers => AuthLevel::Admin,
            _ => AuthLevel::Authenticated,
        }
    }

    /// `None`: not rate limited (health checks must stay cheap and always answer).
    fn class(&self) -> Option<Class> {
        match self {
            Route::Health => None,
            Route::Providers
            | Route::Register
            | Route::Login
            | Route::Logout
            | Route::Me
            | Route::OAuthStart(_)
            | Route::OAuthCallback(_) => Some(Class::Auth),
            Route::AgentChat(_) => Some(Class::Ai),
            _ => Some(Class::Api),
        }
    }
}

async fn dispatch(
    route: Route,
    req: Request,
    app: &App,
    caller: Option<&Caller>,
) -> ApiResult<Response> {
    let user = || caller.ok_or_else(|| ApiError::unauthorized("authentication required"));
    match route {
        Route::Health => health::health(app).await,
        Route::Providers => auth::providers(app),
        Route::Register => auth::register(req, app).await,
        Route::Login => auth::login(req, app).await,
        Route::Logout => auth::logout(app, user()?).await,
        Route::Me => auth::me(app, user()?).await,
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
        Route::AgentChat(id) => agent::chat(req, app, user()?, &id).await,
        Route::AgentState(id) => agent::state(req, app, user()?, &id).await,
        Route::AgentEvents(id) => agent::events(req, app, user()?, &id).await,
        Route::AgentSocket(id) => agent::socket(req, app, user()?, &id).await,
        Route::AgentVersions(id) => agent::versions(app, user()?, &id).await,
        Route::AgentVersion(id, n) => agent::version(app, user()?, &id, &n).await,
        Route::AgentVersionFile(id, n, path) => {
            agent::version_file(app, user()?, &id, &n, &path).await
        }
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
    let route = match Route::resolve(&method, &req.path()) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    // The token is verified locally first, so the limiter can key on the user; then the session
    // check and the limiter run concurrently (two round trips become one).
    let claimed = read_credentials(&req, app);
    let key = claimed
        .user()
        .map(|c| format!("user:{}", c.user_id))
        .unwrap_or_else(|| format!("ip:{}", client_ip(&req)));
    let limit = route.class().map(|class| {
        let limit = match class {
            Class::Auth => app.cfg.auth_limit,
            Class::Api => app.cfg.api_limit,
            Class::Ai => app.cfg.ai_limit,
            Class::AiTokens => app.cfg.ai_token_limit,
        };
        (class, limit)
    });
    let rate = async {
        match limit {
            Some((class, limit)) => ratelimit::hit(&app.env, class, &key, limit, 1)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (identity, decision) = futures_util::join!(confirm(claimed, app), rate);
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
        _ => authorize_and_dispatch(route, req, app, identity).await,
    };
    let resp = result.unwrap_or_else(|e| error_response(&e));
    if let Some(d) = &decision {
        rate_headers(&resp, d);
    }
    resp
}

async fn authorize_and_dispatch(
    route: Route,
    req: Request,
    app: &App,
    identity: Identity,
) -> ApiResult<Response> {
    let level = route.auth_level();
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
        if level == AuthLevel::Admin {
            let user = crate::services::db::user_by_id(&app.db()?, &c.user_id).await?;
            if user.map(|u| u.role != "admin").unwrap_or(true) {
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
        Err(e) => error_response(&internal(e)),
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
    if !(path == "/api" || path.starts_with("/api/")) {
        return Ok(finish(assets(req, &app.env).await, None, None));
    }
    let resp = api(req, &app).await;
    Ok(finish(resp, Some(&app.cfg), origin.as_deref()))
}
