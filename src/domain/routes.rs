//! The API's route table: every route's method, path pattern, route id, auth level and
//! rate-limit class in one declarative list ([`TABLE`]), and the resolution of a request's method
//! and path against it ([`resolve`]). The Worker's `routes` module only dispatches the id.
//!
//! Adding a route is one row in [`TABLE`] (plus its [`Route`] variant and its handler); the
//! compiler then asks for its [`Scope`] ([`Route::scope`]) and its documentation (one arm of
//! [`super::openapi::describe`]).
//!
//! Invariants (tested below):
//! - an unknown path is a 404 E002; a known path with another method is a 405 E004 naming the
//!   methods its rows declare, in table order; HEAD is served wherever GET is;
//! - trailing slashes are ignored (`/api/apps/` is `/api/apps`); a `:param` matches exactly one
//!   segment, possibly empty (`/api/apps//sandbox`); a `*rest` matches one or more segments,
//!   joined with `/`; parameters are handed on as they appear in the URL (handlers parse them);
//! - when several patterns match a path, the most specific decides, whatever the table order:
//!   compared left to right, a literal segment beats a `:param`, which beats a `*rest`
//!   (`/api/apps/public` is not `/api/apps/:id`, for any method);
//! - no two rows with the same method match a common path, except the deliberate shadowings
//!   listed in [`SHADOWED`].

use super::error::{ApiError, ApiResult, ErrorCode};
use strum::IntoStaticStr;

/// The methods routes are declared with (HEAD follows GET; OPTIONS is the CORS preflight,
/// answered before routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr)]
#[strum(serialize_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLevel {
    /// Anyone; a valid credential is still read (some handlers answer owners differently).
    Public,
    /// A signed-in user (and, under cookie auth, a CSRF token on state-changing methods).
    Authenticated,
    /// A signed-in user with the admin role.
    Admin,
}

/// The rate-limit classes of the spec. Each class has its own limit and its own counters (one
/// `DORateLimitStore` object per `<name>:<key>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum RateClass {
    Auth,
    Api,
    /// Model calls per user (`RATE_LIMIT_AI`).
    Ai,
    /// Model tokens per user (`RATE_LIMIT_AI_TOKENS`); hits cost the tokens used. No route is in
    /// this class: the model client charges it after each call.
    AiTokens,
    /// Preview requests per client address (`RATE_LIMIT_PREVIEW`). No API route is in this
    /// class: preview hostnames are served before routing.
    Preview,
    /// Deployments per user (`RATE_LIMIT_DEPLOY`): deploys and rollbacks.
    Deploy,
}

impl RateClass {
    /// The class's part of a limiter key.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// Which workspace call (forwarded to the app's sandbox agent) a route maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceCall {
    WriteFiles,
    ReadFile,
    Tree,
    Exec,
    Logs,
    Errors,
}

/// Every API route. Path parameters are carried in the variant, in pattern order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    OpenApi,
    Providers,
    Register,
    Login,
    Logout,
    Me,
    Verify,
    VerifyResend,
    ChangeEmail,
    DevOutbox,
    DeleteAccount,
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
    AppUsage(String),
    AgentChat(String),
    AgentState(String),
    AgentEvents(String),
    AgentSocket(String),
    AgentVersions(String),
    AgentVersion(String, String),
    AgentVersionFile(String, String, String),
    Deploy(String),
    Undeploy(String),
    Deployments(String),
    Rollback(String, String),
    GitHubStatus,
    GitHubConnect,
    GitHubCallback,
    GitHubDisconnect,
    AppGitHub(String),
    AppGitHubCreate(String),
    AppGitHubUnlink(String),
    AppGitHubPush(String),
    ProjectGitHubRepo(String),
    TicketGitHubBranch(String),
    TicketGitHubPr(String),
    ImplementTicket(String),
    GitHubWebhook,
    /// The orchestrator hub's WebSocket (authenticated by its first message, not the upgrade).
    OrchestratorSocket,
    ListProjects,
    CreateProject,
    GetProject(String),
    PatchProject(String),
    GenerateTickets(String),
    ListTickets,
    PatchTicket(String),
    AssignTicket(String),
}

/// One row of the table.
pub struct Entry {
    pub method: Method,
    /// `/`-separated segments: literals, `:name` (one segment) or a final `*name` (the rest).
    pub pattern: &'static str,
    pub auth: AuthLevel,
    /// `None`: not rate limited (health checks must stay cheap and always answer).
    pub class: Option<RateClass>,
    build: fn(&mut Params) -> Route,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method.as_str(), self.pattern)
    }
}

impl Entry {
    /// The row's route with each path parameter set to its own name in braces (`{id}`): what
    /// the OpenAPI document and the authorization matrix describe a row by.
    pub fn template_route(&self) -> Route {
        let names = pattern_segments(self.pattern)
            .filter_map(|s| s.strip_prefix(':').or_else(|| s.strip_prefix('*')))
            .map(|n| (n, format!("{{{n}}}")))
            .collect();
        (self.build)(&mut Params(names))
    }
}

/// The path parameters of a matched pattern, taken by name by a row's constructor.
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The value of `:name` (or `*name`). Every row's constructor is exercised by the tests, so
    /// a misspelt name cannot reach production; it would yield an empty string there.
    pub fn take(&mut self, name: &str) -> String {
        match self.0.iter().position(|(n, _)| *n == name) {
            Some(i) => self.0.swap_remove(i).1,
            None => {
                debug_assert!(false, "no parameter {name}");
                String::new()
            }
        }
    }
}

const fn row(
    method: Method,
    pattern: &'static str,
    auth: AuthLevel,
    class: Option<RateClass>,
    build: fn(&mut Params) -> Route,
) -> Entry {
    Entry {
        method,
        pattern,
        auth,
        class,
        build,
    }
}

use AuthLevel::{Admin, Authenticated, Public};
use Method::{Delete, Get, Patch, Post, Put};
const AUTH: Option<RateClass> = Some(RateClass::Auth);
const API: Option<RateClass> = Some(RateClass::Api);
const AI: Option<RateClass> = Some(RateClass::Ai);
const DEPLOY: Option<RateClass> = Some(RateClass::Deploy);

/// The route table. Rows of one pattern are kept together; their order is the order a 405 names
/// the allowed methods in.
pub static TABLE: &[Entry] = &[
    row(Get, "/api/health", Public, None, |_| Route::Health),
    row(Get, "/api/openapi.json", Public, None, |_| Route::OpenApi),
    row(Get, "/api/auth/providers", Public, AUTH, |_| {
        Route::Providers
    }),
    row(Post, "/api/auth/register", Public, AUTH, |_| {
        Route::Register
    }),
    row(Post, "/api/auth/login", Public, AUTH, |_| Route::Login),
    row(Post, "/api/auth/logout", Authenticated, AUTH, |_| {
        Route::Logout
    }),
    row(Get, "/api/auth/me", Authenticated, AUTH, |_| Route::Me),
    row(Delete, "/api/auth/me", Authenticated, AUTH, |_| {
        Route::DeleteAccount
    }),
    row(Post, "/api/auth/verify", Public, AUTH, |_| Route::Verify),
    row(Post, "/api/auth/verify/resend", Authenticated, AUTH, |_| {
        Route::VerifyResend
    }),
    row(Post, "/api/auth/email", Authenticated, AUTH, |_| {
        Route::ChangeEmail
    }),
    // Answers only under MAIL_BACKEND=outbox (`make dev`); a 404 everywhere else.
    row(Get, "/api/dev/outbox", Public, API, |_| Route::DevOutbox),
    row(Get, "/api/auth/oauth/:provider", Public, AUTH, |p| {
        Route::OAuthStart(p.take("provider"))
    }),
    row(Get, "/api/auth/callback/:provider", Public, AUTH, |p| {
        Route::OAuthCallback(p.take("provider"))
    }),
    row(Get, "/api/apps", Authenticated, API, |_| Route::ListApps),
    row(Post, "/api/apps", Authenticated, API, |_| Route::CreateApp),
    row(Get, "/api/apps/public", Public, API, |_| {
        Route::ListPublicApps
    }),
    row(Get, "/api/apps/:id", Public, API, |p| {
        Route::GetApp(p.take("id"))
    }),
    row(Patch, "/api/apps/:id", Authenticated, API, |p| {
        Route::PatchApp(p.take("id"))
    }),
    row(Delete, "/api/apps/:id", Authenticated, API, |p| {
        Route::DeleteApp(p.take("id"))
    }),
    row(Get, "/api/admin/users", Admin, API, |_| Route::AdminUsers),
    row(Get, "/api/templates", Public, API, |_| Route::Templates),
    row(Get, "/api/templates/:name", Public, API, |p| {
        Route::Template(p.take("name"))
    }),
    row(Post, "/api/apps/:id/sandbox", Authenticated, API, |p| {
        Route::SandboxCreate(p.take("id"))
    }),
    row(Get, "/api/apps/:id/sandbox", Authenticated, API, |p| {
        Route::SandboxStatus(p.take("id"))
    }),
    row(Delete, "/api/apps/:id/sandbox", Authenticated, API, |p| {
        Route::SandboxStop(p.take("id"))
    }),
    row(
        Post,
        "/api/apps/:id/sandbox/files",
        Authenticated,
        API,
        |p| Route::Workspace(p.take("id"), WorkspaceCall::WriteFiles),
    ),
    row(
        Get,
        "/api/apps/:id/sandbox/files",
        Authenticated,
        API,
        |p| Route::Workspace(p.take("id"), WorkspaceCall::ReadFile),
    ),
    row(Get, "/api/apps/:id/sandbox/tree", Authenticated, API, |p| {
        Route::Workspace(p.take("id"), WorkspaceCall::Tree)
    }),
    row(
        Post,
        "/api/apps/:id/sandbox/exec",
        Authenticated,
        API,
        |p| Route::Workspace(p.take("id"), WorkspaceCall::Exec),
    ),
    row(Get, "/api/apps/:id/sandbox/logs", Authenticated, API, |p| {
        Route::Workspace(p.take("id"), WorkspaceCall::Logs)
    }),
    row(
        Get,
        "/api/apps/:id/sandbox/errors",
        Authenticated,
        API,
        |p| Route::Workspace(p.take("id"), WorkspaceCall::Errors),
    ),
    row(Get, "/api/apps/:id/usage", Authenticated, API, |p| {
        Route::AppUsage(p.take("id"))
    }),
    row(Get, "/api/ai/keys", Authenticated, API, |_| Route::AiKeys),
    row(Put, "/api/ai/keys/:provider", Authenticated, API, |p| {
        Route::AiPutKey(p.take("provider"))
    }),
    row(Delete, "/api/ai/keys/:provider", Authenticated, API, |p| {
        Route::AiDeleteKey(p.take("provider"))
    }),
    row(Get, "/api/ai/models", Authenticated, API, |_| {
        Route::AiModels
    }),
    row(
        Patch,
        "/api/ai/models/:operation",
        Authenticated,
        API,
        |p| Route::AiPatchModel(p.take("operation")),
    ),
    row(
        Delete,
        "/api/ai/models/:operation",
        Authenticated,
        API,
        |p| Route::AiDeleteModel(p.take("operation")),
    ),
    row(Post, "/api/ai/test", Authenticated, API, |_| Route::AiTest),
    row(Get, "/api/ai/usage", Authenticated, API, |_| Route::AiUsage),
    row(Post, "/api/agent/chat/:id", Authenticated, AI, |p| {
        Route::AgentChat(p.take("id"))
    }),
    row(Get, "/api/agent/:id/state", Authenticated, API, |p| {
        Route::AgentState(p.take("id"))
    }),
    row(Get, "/api/agent/:id/events", Authenticated, API, |p| {
        Route::AgentEvents(p.take("id"))
    }),
    row(Get, "/api/agent/:id/ws", Authenticated, API, |p| {
        Route::AgentSocket(p.take("id"))
    }),
    row(Get, "/api/agent/:id/versions", Authenticated, API, |p| {
        Route::AgentVersions(p.take("id"))
    }),
    row(Get, "/api/agent/:id/versions/:n", Authenticated, API, |p| {
        Route::AgentVersion(p.take("id"), p.take("n"))
    }),
    row(
        Get,
        "/api/agent/:id/versions/:n/files/*path",
        Authenticated,
        API,
        |p| Route::AgentVersionFile(p.take("id"), p.take("n"), p.take("path")),
    ),
    row(Post, "/api/apps/:id/deploy", Authenticated, DEPLOY, |p| {
        Route::Deploy(p.take("id"))
    }),
    row(Delete, "/api/apps/:id/deploy", Authenticated, API, |p| {
        Route::Undeploy(p.take("id"))
    }),
    row(Get, "/api/apps/:id/deployments", Authenticated, API, |p| {
        Route::Deployments(p.take("id"))
    }),
    row(
        Post,
        "/api/apps/:id/deployments/:n/rollback",
        Authenticated,
        DEPLOY,
        |p| Route::Rollback(p.take("id"), p.take("n")),
    ),
    row(Get, "/api/github", Authenticated, API, |_| {
        Route::GitHubStatus
    }),
    row(Delete, "/api/github", Authenticated, API, |_| {
        Route::GitHubDisconnect
    }),
    row(Get, "/api/github/connect", Authenticated, API, |_| {
        Route::GitHubConnect
    }),
    // GitHub's redirect back: the single-use state names the user who started the connection.
    row(Get, "/api/github/callback", Public, API, |_| {
        Route::GitHubCallback
    }),
    row(Get, "/api/apps/:id/github", Authenticated, API, |p| {
        Route::AppGitHub(p.take("id"))
    }),
    row(Post, "/api/apps/:id/github", Authenticated, API, |p| {
        Route::AppGitHubCreate(p.take("id"))
    }),
    row(Delete, "/api/apps/:id/github", Authenticated, API, |p| {
        Route::AppGitHubUnlink(p.take("id"))
    }),
    row(Post, "/api/apps/:id/github/push", Authenticated, API, |p| {
        Route::AppGitHubPush(p.take("id"))
    }),
    row(
        Post,
        "/api/orchestrator/projects/:project/github/create-repo",
        Authenticated,
        API,
        |p| Route::ProjectGitHubRepo(p.take("project")),
    ),
    row(
        Post,
        "/api/orchestrator/tickets/:ticket/github/create-branch",
        Authenticated,
        API,
        |p| Route::TicketGitHubBranch(p.take("ticket")),
    ),
    row(
        Post,
        "/api/orchestrator/tickets/:ticket/github/create-pr",
        Authenticated,
        API,
        |p| Route::TicketGitHubPr(p.take("ticket")),
    ),
    // Runs the code generator: limited like a chat message.
    row(
        Post,
        "/api/orchestrator/tickets/:ticket/implement",
        Authenticated,
        AI,
        |p| Route::ImplementTicket(p.take("ticket")),
    ),
    // GitHub's deliveries: authenticated by their signature (WEBHOOK_SECRET), not a session.
    row(Post, "/api/webhooks/github", Public, API, |_| {
        Route::GitHubWebhook
    }),
    row(Get, "/api/orchestrator/ws", Public, API, |_| {
        Route::OrchestratorSocket
    }),
    row(
        Get,
        "/api/orchestrator/projects",
        Authenticated,
        API,
        |_| Route::ListProjects,
    ),
    row(
        Post,
        "/api/orchestrator/projects",
        Authenticated,
        API,
        |_| Route::CreateProject,
    ),
    row(
        Get,
        "/api/orchestrator/projects/:project",
        Authenticated,
        API,
        |p| Route::GetProject(p.take("project")),
    ),
    row(
        Patch,
        "/api/orchestrator/projects/:project",
        Authenticated,
        API,
        |p| Route::PatchProject(p.take("project")),
    ),
    row(
        Post,
        "/api/orchestrator/projects/:project/generate",
        Authenticated,
        API,
        |p| Route::GenerateTickets(p.take("project")),
    ),
    row(Get, "/api/orchestrator/tickets", Authenticated, API, |_| {
        Route::ListTickets
    }),
    row(
        Patch,
        "/api/orchestrator/tickets/:ticket",
        Authenticated,
        API,
        |p| Route::PatchTicket(p.take("ticket")),
    ),
    row(
        Post,
        "/api/orchestrator/tickets/:ticket/assign",
        Authenticated,
        API,
        |p| Route::AssignTicket(p.take("ticket")),
    ),
];

/// Whose resource a route is about, beyond its [`AuthLevel`]: the ownership half of the
/// authorization matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Not about one app: the caller's own data, or nobody's. Orchestration projects and
    /// tickets are here too: their handlers apply the project access rule themselves (another
    /// user gets the 404 of a missing project or ticket).
    Caller,
    /// The app in `:id`, for its owner only: anyone else gets the 404 of a missing app.
    OwnerOnly,
    /// The app in `:id`, for its owner, or for anyone when it is public.
    OwnerOrPublic,
}

impl Route {
    /// The route's [`Scope`]. Every route naming an app (`:id`) is scoped to it (tested).
    pub fn scope(&self) -> Scope {
        use Route::*;
        match self {
            Health
            | OpenApi
            | Providers
            | Register
            | Login
            | Logout
            | Me
            | DeleteAccount
            | Verify
            | VerifyResend
            | ChangeEmail
            | DevOutbox
            | OAuthStart(_)
            | OAuthCallback(_)
            | ListApps
            | ListPublicApps
            | CreateApp
            | AdminUsers
            | Templates
            | Template(_)
            | AiKeys
            | AiPutKey(_)
            | AiDeleteKey(_)
            | AiModels
            | AiPatchModel(_)
            | AiDeleteModel(_)
            | AiTest
            | AiUsage
            | GitHubStatus
            | GitHubConnect
            | GitHubCallback
            | GitHubDisconnect
            | ListProjects
            | CreateProject
            | GetProject(_)
            | PatchProject(_)
            | GenerateTickets(_)
            | ListTickets
            | PatchTicket(_)
            | AssignTicket(_)
            | ProjectGitHubRepo(_)
            | TicketGitHubBranch(_)
            | TicketGitHubPr(_)
            | ImplementTicket(_)
            | GitHubWebhook
            | OrchestratorSocket => Scope::Caller,
            GetApp(_) => Scope::OwnerOrPublic,
            PatchApp(_) | DeleteApp(_) | SandboxCreate(_) | SandboxStatus(_) | SandboxStop(_)
            | Workspace(..) | AppUsage(_) | AgentChat(_) | AgentState(_) | AgentEvents(_)
            | AgentSocket(_) | AgentVersions(_) | AgentVersion(..) | AgentVersionFile(..)
            | Deploy(_) | Undeploy(_) | Deployments(_) | Rollback(..) | AppGitHub(_)
            | AppGitHubCreate(_) | AppGitHubUnlink(_) | AppGitHubPush(_) => Scope::OwnerOnly,
        }
    }
}

/// Who calls, relative to an app (the authorization matrix's rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Anonymous,
    /// The app's owner (a plain user).
    Owner,
    /// Another plain user.
    Other,
    /// A user with the admin role who does not own the app.
    Admin,
}

/// The class of answer a caller gets from a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 401 E001.
    Unauthorized,
    /// 403 E001.
    Forbidden,
    /// 404 E002 `app not found`, exactly what a missing app answers.
    Hidden,
    /// The handler's own answer: none of the above (it may still refuse the input).
    Allowed,
}

/// What `who` gets from a route with `auth` and `scope`, about a public or private app.
pub fn expected(auth: AuthLevel, scope: Scope, who: Viewer, public_app: bool) -> Answer {
    let signed_in = who != Viewer::Anonymous;
    let owner = who == Viewer::Owner;
    match (auth, scope) {
        (AuthLevel::Authenticated | AuthLevel::Admin, _) if !signed_in => Answer::Unauthorized,
        (AuthLevel::Admin, _) if who != Viewer::Admin => Answer::Forbidden,
        (_, Scope::OwnerOnly) if !owner => Answer::Hidden,
        (_, Scope::OwnerOrPublic) if !owner && !public_app => Answer::Hidden,
        _ => Answer::Allowed,
    }
}

/// Pairs of rows (method, more specific pattern, shadowed pattern) that share a method and
/// match a common path on purpose: the more specific one wins there.
pub const SHADOWED: &[(Method, &str, &str)] = &[(Get, "/api/apps/public", "/api/apps/:id")];

/// A resolved request: the route id with its parameters, and the row it came from.
#[derive(Debug)]
pub struct Resolved {
    pub route: Route,
    pub entry: &'static Entry,
}

/// Maps a method (as the runtime spells it, e.g. `GET`) and a URL path to a route.
pub fn resolve(method: &str, path: &str) -> ApiResult<Resolved> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    // The most specific matching pattern decides; only its rows are candidates for the method.
    let Some(pattern) = TABLE
        .iter()
        .filter(|e| matches(e.pattern, &segments).is_some())
        .map(|e| e.pattern)
        .max_by_key(|p| specificity(p))
    else {
        return Err(ApiError::new(
            404,
            ErrorCode::E002,
            format!("no route for {path}"),
        ));
    };
    let rows = || TABLE.iter().filter(move |e| e.pattern == pattern);
    let wanted =
        |e: &&Entry| e.method.as_str() == method || (method == "HEAD" && e.method == Method::Get);
    match rows().find(wanted) {
        Some(entry) => {
            let mut params = Params(matches(pattern, &segments).unwrap_or_default());
            Ok(Resolved {
                route: (entry.build)(&mut params),
                entry,
            })
        }
        None => {
            let allowed: Vec<&str> = rows().map(|e| e.method.as_str()).collect();
            Err(ApiError::new(
                405,
                ErrorCode::E004,
                format!("method not allowed; use {}", allowed.join(", ")),
            ))
        }
    }
}

/// A pattern's segments (the part after the leading `/`).
fn pattern_segments(pattern: &'static str) -> impl Iterator<Item = &'static str> {
    pattern.split('/').skip(1)
}

/// The parameters of `pattern` if it matches the path `segments`.
fn matches(pattern: &'static str, segments: &[&str]) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut count = 0;
    for (i, seg) in pattern_segments(pattern).enumerate() {
        if let Some(name) = seg.strip_prefix('*') {
            let rest = segments.get(i..).filter(|r| !r.is_empty())?;
            params.push((name, rest.join("/")));
            return Some(params);
        }
        let actual = segments.get(i)?;
        match seg.strip_prefix(':') {
            Some(name) => params.push((name, actual.to_string())),
            None if seg == *actual => {}
            None => return None,
        }
        count = i + 1;
    }
    (count == segments.len()).then_some(params)
}

/// How specific a pattern is, per segment: literal 2, `:param` 1, `*rest` 0; compared left to
/// right, the greater wins.
fn specificity(pattern: &'static str) -> Vec<u8> {
    pattern_segments(pattern)
        .map(|s| match s.as_bytes().first() {
            Some(b'*') => 0,
            Some(b':') => 1,
            _ => 2,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, path: &str) -> Resolved {
        resolve(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn err(method: &str, path: &str) -> ApiError {
        match resolve(method, path) {
            Ok(r) => panic!("{method} {path} resolved to {:?}", r.route),
            Err(e) => e,
        }
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    /// One request per row, with the route it must resolve to (written from the `match` the
    /// table replaced).
    fn cases() -> Vec<(&'static str, &'static str, Route)> {
        use Route::*;
        use WorkspaceCall::*;
        vec![
            ("GET", "/api/health", Health),
            ("GET", "/api/openapi.json", OpenApi),
            ("GET", "/api/auth/providers", Providers),
            ("POST", "/api/auth/register", Register),
            ("POST", "/api/auth/login", Login),
            ("POST", "/api/auth/logout", Logout),
            ("GET", "/api/auth/me", Me),
            ("POST", "/api/auth/verify", Verify),
            ("POST", "/api/auth/verify/resend", VerifyResend),
            ("POST", "/api/auth/email", ChangeEmail),
            ("GET", "/api/dev/outbox", DevOutbox),
            ("DELETE", "/api/auth/me", DeleteAccount),
            ("GET", "/api/auth/oauth/google", OAuthStart(s("google"))),
            (
                "GET",
                "/api/auth/callback/github",
                OAuthCallback(s("github")),
            ),
            ("GET", "/api/apps", ListApps),
            ("POST", "/api/apps", CreateApp),
            ("GET", "/api/apps/public", ListPublicApps),
            ("GET", "/api/apps/a1", GetApp(s("a1"))),
            ("PATCH", "/api/apps/a1", PatchApp(s("a1"))),
            ("DELETE", "/api/apps/a1", DeleteApp(s("a1"))),
            ("GET", "/api/admin/users", AdminUsers),
            ("GET", "/api/templates", Templates),
            (
                "GET",
                "/api/templates/react-vite",
                Template(s("react-vite")),
            ),
            ("POST", "/api/apps/a1/sandbox", SandboxCreate(s("a1"))),
            ("GET", "/api/apps/a1/sandbox", SandboxStatus(s("a1"))),
            ("DELETE", "/api/apps/a1/sandbox", SandboxStop(s("a1"))),
            (
                "POST",
                "/api/apps/a1/sandbox/files",
                Workspace(s("a1"), WriteFiles),
            ),
            (
                "GET",
                "/api/apps/a1/sandbox/files",
                Workspace(s("a1"), ReadFile),
            ),
            ("GET", "/api/apps/a1/sandbox/tree", Workspace(s("a1"), Tree)),
            (
                "POST",
                "/api/apps/a1/sandbox/exec",
                Workspace(s("a1"), Exec),
            ),
            ("GET", "/api/apps/a1/sandbox/logs", Workspace(s("a1"), Logs)),
            (
                "GET",
                "/api/apps/a1/sandbox/errors",
                Workspace(s("a1"), Errors),
            ),
            ("GET", "/api/ai/keys", AiKeys),
            ("PUT", "/api/ai/keys/openai", AiPutKey(s("openai"))),
            ("DELETE", "/api/ai/keys/openai", AiDeleteKey(s("openai"))),
            ("GET", "/api/ai/models", AiModels),
            (
                "PATCH",
                "/api/ai/models/blueprint",
                AiPatchModel(s("blueprint")),
            ),
            (
                "DELETE",
                "/api/ai/models/blueprint",
                AiDeleteModel(s("blueprint")),
            ),
            ("POST", "/api/ai/test", AiTest),
            ("GET", "/api/ai/usage", AiUsage),
            ("GET", "/api/apps/a1/usage", AppUsage(s("a1"))),
            ("POST", "/api/agent/chat/a1", AgentChat(s("a1"))),
            ("GET", "/api/agent/a1/state", AgentState(s("a1"))),
            ("GET", "/api/agent/a1/events", AgentEvents(s("a1"))),
            ("GET", "/api/agent/a1/ws", AgentSocket(s("a1"))),
            ("GET", "/api/agent/a1/versions", AgentVersions(s("a1"))),
            (
                "GET",
                "/api/agent/a1/versions/3",
                AgentVersion(s("a1"), s("3")),
            ),
            (
                "GET",
                "/api/agent/a1/versions/3/files/src/App.tsx",
                AgentVersionFile(s("a1"), s("3"), s("src/App.tsx")),
            ),
            ("POST", "/api/apps/a1/deploy", Deploy(s("a1"))),
            ("DELETE", "/api/apps/a1/deploy", Undeploy(s("a1"))),
            ("GET", "/api/apps/a1/deployments", Deployments(s("a1"))),
            (
                "POST",
                "/api/apps/a1/deployments/2/rollback",
                Rollback(s("a1"), s("2")),
            ),
            ("GET", "/api/github", GitHubStatus),
            ("DELETE", "/api/github", GitHubDisconnect),
            ("GET", "/api/github/connect", GitHubConnect),
            ("GET", "/api/github/callback", GitHubCallback),
            ("GET", "/api/apps/a1/github", AppGitHub(s("a1"))),
            ("POST", "/api/apps/a1/github", AppGitHubCreate(s("a1"))),
            ("DELETE", "/api/apps/a1/github", AppGitHubUnlink(s("a1"))),
            ("POST", "/api/apps/a1/github/push", AppGitHubPush(s("a1"))),
            (
                "POST",
                "/api/orchestrator/projects/p1/github/create-repo",
                ProjectGitHubRepo(s("p1")),
            ),
            (
                "POST",
                "/api/orchestrator/tickets/t1/github/create-branch",
                TicketGitHubBranch(s("t1")),
            ),
            (
                "POST",
                "/api/orchestrator/tickets/t1/github/create-pr",
                TicketGitHubPr(s("t1")),
            ),
            (
                "POST",
                "/api/orchestrator/tickets/t1/implement",
                ImplementTicket(s("t1")),
            ),
            ("POST", "/api/webhooks/github", GitHubWebhook),
            ("GET", "/api/orchestrator/ws", OrchestratorSocket),
            ("GET", "/api/orchestrator/projects", ListProjects),
            ("POST", "/api/orchestrator/projects", CreateProject),
            ("GET", "/api/orchestrator/projects/p1", GetProject(s("p1"))),
            (
                "PATCH",
                "/api/orchestrator/projects/p1",
                PatchProject(s("p1")),
            ),
            (
                "POST",
                "/api/orchestrator/projects/p1/generate",
                GenerateTickets(s("p1")),
            ),
            ("GET", "/api/orchestrator/tickets", ListTickets),
            (
                "PATCH",
                "/api/orchestrator/tickets/t1",
                PatchTicket(s("t1")),
            ),
            (
                "POST",
                "/api/orchestrator/tickets/t1/assign",
                AssignTicket(s("t1")),
            ),
        ]
    }

    #[test]
    fn every_row_resolves_with_its_params() {
        let mut seen = vec![false; TABLE.len()];
        for (method, path, want) in cases() {
            let r = ok(method, path);
            assert_eq!(r.route, want, "{method} {path}");
            assert_eq!(r.entry.method.as_str(), method, "{method} {path}");
            let i = TABLE.iter().position(|e| std::ptr::eq(e, r.entry)).unwrap();
            assert!(!seen[i], "{method} {path}: row {:?} hit twice", r.entry);
            seen[i] = true;
        }
        let missed: Vec<&Entry> = TABLE
            .iter()
            .zip(&seen)
            .filter(|(_, s)| !**s)
            .map(|(e, _)| e)
            .collect();
        assert!(missed.is_empty(), "rows without a case: {missed:?}");
    }

    /// The auth levels the table replaced: public routes listed, admin for users, the rest
    /// authenticated.
    fn old_auth_level(r: &Route) -> AuthLevel {
        use Route::*;
        match r {
            Health | OpenApi | Providers | Register | Login | Verify | DevOutbox
            | OAuthStart(_) | OAuthCallback(_) | ListPublicApps | Templates | Template(_)
            | GetApp(_) | GitHubCallback | GitHubWebhook => AuthLevel::Public,
            // Authenticated by its first message (the spec's `authenticate`).
            OrchestratorSocket => AuthLevel::Public,
            AdminUsers => AuthLevel::Admin,
            _ => AuthLevel::Authenticated,
        }
    }

    /// The rate-limit classes the table replaced.
    fn old_class(r: &Route) -> Option<RateClass> {
        use Route::*;
        match r {
            // The document is static and cheap, like the health check.
            Health | OpenApi => None,
            Providers | Register | Login | Logout | Me | DeleteAccount | Verify | VerifyResend
            | ChangeEmail | OAuthStart(_) | OAuthCallback(_) => Some(RateClass::Auth),
            // Both run the code generator.
            AgentChat(_) | ImplementTicket(_) => Some(RateClass::Ai),
            // Deploys and rollbacks count against the deployment limit.
            Deploy(_) | Rollback(..) => Some(RateClass::Deploy),
            _ => Some(RateClass::Api),
        }
    }

    #[test]
    fn auth_levels_and_classes_are_unchanged() {
        for (method, path, _) in cases() {
            let r = ok(method, path);
            assert_eq!(r.entry.auth, old_auth_level(&r.route), "{method} {path}");
            assert_eq!(r.entry.class, old_class(&r.route), "{method} {path}");
        }
        // Spot checks, stated outright.
        assert_eq!(ok("GET", "/api/health").entry.class, None);
        assert_eq!(ok("GET", "/api/apps/x").entry.auth, AuthLevel::Public);
        assert_eq!(
            ok("PATCH", "/api/apps/x").entry.auth,
            AuthLevel::Authenticated
        );
        assert_eq!(ok("GET", "/api/admin/users").entry.auth, AuthLevel::Admin);
        assert_eq!(ok("POST", "/api/auth/logout").entry.class, AUTH);
        assert_eq!(ok("POST", "/api/agent/chat/x").entry.class, AI);
        assert_eq!(ok("POST", "/api/ai/test").entry.class, API);
    }

    #[test]
    fn head_resolves_as_get() {
        for (_, path, _) in cases() {
            let head = resolve("HEAD", path).map(|r| r.route);
            assert_eq!(head, resolve("GET", path).map(|r| r.route), "HEAD {path}");
        }
        assert_eq!(ok("HEAD", "/api/apps").route, Route::ListApps);
    }

    #[test]
    fn unknown_paths_are_404_e002() {
        for path in [
            "/api",
            "/api/",
            "/api/nope",
            "/api/apps/x/y/z",
            "/api//apps",
            "/api/auth/oauth",
            "/api/auth/oauth/google/more",
            "/api/agent/a1",
            "/api/agent/a1/versions/3/files",
            "/api/agent/a1/versions/3/files/",
            "/api/apps/a1/sandbox/nope",
            "/api/Health",
        ] {
            let e = err("GET", path);
            assert_eq!((e.status, e.code), (404, ErrorCode::E002), "{path}");
            assert_eq!(e.message, format!("no route for {path}"));
        }
    }

    #[test]
    fn known_paths_with_other_methods_are_405_e004_naming_the_allowed() {
        for (method, path, allowed) in [
            ("PUT", "/api/apps", "GET, POST"),
            ("POST", "/api/health", "GET"),
            ("GET", "/api/auth/login", "POST"),
            ("PUT", "/api/apps/a1", "GET, PATCH, DELETE"),
            ("PATCH", "/api/apps/a1/sandbox", "POST, GET, DELETE"),
            ("DELETE", "/api/apps/a1/sandbox/files", "POST, GET"),
            ("GET", "/api/ai/keys/openai", "PUT, DELETE"),
            ("GET", "/api/ai/models/blueprint", "PATCH, DELETE"),
            ("HEAD", "/api/ai/test", "POST"),
            ("OPTIONS", "/api/apps", "GET, POST"),
            ("BREW", "/api/health", "GET"),
            ("get", "/api/health", "GET"),
            // The literal `public` beats `:id`, for every method.
            ("PATCH", "/api/apps/public", "GET"),
            ("DELETE", "/api/apps/public", "GET"),
            // `chat` beats `:id`: this is the chat route, not an agent's state.
            ("GET", "/api/agent/chat/state", "POST"),
            ("POST", "/api/agent/a1/state", "GET"),
        ] {
            let e = err(method, path);
            assert_eq!(
                (e.status, e.code),
                (405, ErrorCode::E004),
                "{method} {path}"
            );
            assert_eq!(e.message, format!("method not allowed; use {allowed}"));
        }
    }

    #[test]
    fn trailing_slashes_and_odd_segments_as_before() {
        assert_eq!(ok("GET", "/api/apps/").route, Route::ListApps);
        assert_eq!(ok("GET", "/api/apps//").route, Route::ListApps);
        assert_eq!(ok("GET", "/api/health/").route, Route::Health);
        assert_eq!(ok("GET", "/api/apps/a1/").route, Route::GetApp(s("a1")));
        assert_eq!(ok("GET", "/api/apps/public/").route, Route::ListPublicApps);
        // An empty parameter segment still matches; the handler refuses the id.
        assert_eq!(
            ok("POST", "/api/apps//sandbox").route,
            Route::SandboxCreate(s(""))
        );
        assert_eq!(
            ok("GET", "/api/agent/a1/versions/3/files/src//a.ts/").route,
            Route::AgentVersionFile(s("a1"), s("3"), s("src//a.ts"))
        );
        // Parameters stay as they are in the URL.
        assert_eq!(
            ok("GET", "/api/templates/a%20b").route,
            Route::Template(s("a%20b"))
        );
        // `public` under an app is an id like any other.
        assert_eq!(
            ok("GET", "/api/apps/public/sandbox").route,
            Route::SandboxStatus(s("public"))
        );
        // …but `chat` under the agent is always the chat route, never an app id.
        assert_eq!(err("GET", "/api/agent/chat/ws").status, 405);
        assert_eq!(
            ok("GET", "/api/agent/chats/ws").route,
            Route::AgentSocket(s("chats"))
        );
    }

    /// Whether two patterns match at least one common path.
    fn overlap(a: &'static str, b: &'static str) -> bool {
        let a: Vec<&str> = pattern_segments(a).collect();
        let b: Vec<&str> = pattern_segments(b).collect();
        for i in 0..a.len().max(b.len()) {
            match (a.get(i), b.get(i)) {
                (Some(x), _) if x.starts_with('*') => return b.len() > i,
                (_, Some(y)) if y.starts_with('*') => return a.len() > i,
                (Some(x), Some(y)) => {
                    let literal = |s: &str| !s.starts_with(':');
                    if literal(x) && literal(y) && x != y {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        true
    }

    #[test]
    fn overlap_detection_works() {
        assert!(overlap("/a/:x", "/a/b"));
        assert!(overlap("/a/:x/c", "/a/b/:y"));
        assert!(!overlap("/a/:x", "/a/:x/c"));
        assert!(!overlap("/a/b", "/a/c"));
        assert!(overlap("/a/*r", "/a/b/c"));
        assert!(!overlap("/a/b/*r", "/a/b"));
    }

    #[test]
    fn no_two_rows_overlap_except_the_listed_shadowings() {
        let mut shadowed = Vec::new();
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert!(
                    !(a.method == b.method && a.pattern == b.pattern),
                    "duplicate row {a:?}"
                );
                if a.method == b.method && overlap(a.pattern, b.pattern) {
                    let (hi, lo) = if specificity(a.pattern) > specificity(b.pattern) {
                        (a, b)
                    } else {
                        (b, a)
                    };
                    shadowed.push((a.method, hi.pattern, lo.pattern));
                }
            }
        }
        assert_eq!(shadowed, SHADOWED);
        // A shadowed pattern still serves everything else.
        for (method, hi, lo) in SHADOWED {
            assert_eq!(ok(method.as_str(), hi).entry.pattern, *hi);
            let other = lo.replace(":id", "other");
            assert_eq!(ok(method.as_str(), &other).entry.pattern, *lo);
        }
    }

    #[test]
    fn rows_of_one_shape_share_one_spelling_and_are_adjacent() {
        let shape = |p: &'static str| -> Vec<&str> {
            pattern_segments(p)
                .map(|s| match s.as_bytes().first() {
                    Some(b':') => ":",
                    Some(b'*') => "*",
                    _ => s,
                })
                .collect()
        };
        for (i, a) in TABLE.iter().enumerate() {
            for (j, b) in TABLE.iter().enumerate().skip(i + 1) {
                if shape(a.pattern) == shape(b.pattern) {
                    assert_eq!(a.pattern, b.pattern, "one path spelt two ways");
                    assert!(
                        TABLE[i..j].iter().all(|e| e.pattern == a.pattern),
                        "rows of {} are not together",
                        a.pattern
                    );
                }
            }
        }
    }

    #[test]
    fn patterns_are_well_formed() {
        for e in TABLE {
            assert!(e.pattern.starts_with("/api/"), "{e:?}");
            assert!(!e.pattern.ends_with('/'), "{e:?}");
            let segs: Vec<&str> = pattern_segments(e.pattern).collect();
            for (i, s) in segs.iter().enumerate() {
                assert!(!s.is_empty(), "{e:?}");
                assert!(
                    !s.starts_with('*') || i + 1 == segs.len(),
                    "{e:?}: rest not last"
                );
            }
        }
    }

    #[test]
    fn every_app_route_is_scoped_to_its_app() {
        for e in TABLE {
            let names_app = pattern_segments(e.pattern).any(|s| s == ":id");
            let scope = e.template_route().scope();
            assert_eq!(names_app, scope != Scope::Caller, "{e:?}: {scope:?}");
        }
    }

    #[test]
    fn template_routes_carry_their_parameter_names() {
        let row = |m: Method, p: &str| {
            TABLE
                .iter()
                .find(|e| e.method == m && e.pattern == p)
                .unwrap()
        };
        assert_eq!(
            row(Get, "/api/agent/:id/versions/:n/files/*path").template_route(),
            Route::AgentVersionFile(s("{id}"), s("{n}"), s("{path}"))
        );
        assert_eq!(row(Get, "/api/health").template_route(), Route::Health);
    }

    #[test]
    fn expected_answers_follow_auth_level_then_ownership() {
        use Answer::*;
        use AuthLevel as L;
        use Viewer::{Anonymous, Other, Owner};
        let all = |auth, scope, public| {
            [Anonymous, Owner, Other, Viewer::Admin].map(|w| expected(auth, scope, w, public))
        };
        // Anonymous, owner, other user, admin.
        assert_eq!(all(L::Public, Scope::Caller, false), [Allowed; 4]);
        assert_eq!(
            all(L::Authenticated, Scope::Caller, true),
            [Unauthorized, Allowed, Allowed, Allowed]
        );
        assert_eq!(
            all(L::Admin, Scope::Caller, false),
            [Unauthorized, Forbidden, Forbidden, Allowed]
        );
        assert_eq!(
            all(L::Public, Scope::OwnerOrPublic, false),
            [Hidden, Allowed, Hidden, Hidden]
        );
        assert_eq!(all(L::Public, Scope::OwnerOrPublic, true), [Allowed; 4]);
        for public in [false, true] {
            // An admin is no owner: another user's app is as hidden from them as from anyone.
            assert_eq!(
                all(L::Authenticated, Scope::OwnerOnly, public),
                [Unauthorized, Allowed, Hidden, Hidden]
            );
        }
    }
}
