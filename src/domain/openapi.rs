//! The API's OpenAPI 3.1 document (`GET /api/openapi.json`), built from the route table.
//!
//! Each [`TABLE`] row becomes one operation: its path, method, security and the responses every
//! route of its kind can give (401, 403, 429, …) come from the row itself; what only the route
//! knows (summary, parameters, request body, its own answers) comes from [`describe`], an
//! exhaustive `match` on [`Route`]. So a new route cannot compile undocumented, and a route's
//! documentation is one arm of that match. Response schemas come from the types that serialize
//! the bodies where there are such types (`utoipa::ToSchema` derives), else from [`schemas`].
//!
//! Invariants (tested below): every row has exactly one operation and every operation a row;
//! operation ids are unique; every operation has a summary, every response a description; every
//! `$ref` resolves; every error response is the one [`ERROR`] envelope.

use super::apps::{self, AppDetail, AppSummary, Visibility};
use super::codegen::blueprint::PhaseKind;
use super::codegen::events::{
    AgentEvent, CallUsage, ClientCommand, FileSummary, ModelUsage, PhaseSummary, RunOutcome,
    RunStatus, StateSnapshot, MAX_PROMPT_CHARS,
};
use super::codegen::models::{Operation, Provider};
use super::codegen::phase::PhaseStatus;
use super::codegen::run::{VersionFile, VersionManifest, VersionSummary};
use super::deploy::call::Deployment;
use super::deploy::pipeline::DeployStatus;
use super::deploy::pipeline::DeployStep;
use super::error::ErrorCode;
use super::orchestrator::api::{
    self as orch, AnalysisResult, Dependency, Generation, GenerationError, GenerationState,
    Implementation, ImplementationState, PackageDependency, Project, ProjectDetail, Ticket,
};
use super::orchestrator::lifecycle::ProjectAction;
use super::orchestrator::model::{
    DependencyType, Priority, ProjectSource, ProjectStatus, TicketStatus, TicketType,
};
use super::orchestrator::plan::{CriticalPath, Plan};
use super::routes::{AuthLevel, Entry, Method, Route, WorkspaceCall, TABLE};
use super::sandbox::{State, Status};
use super::{password, templates, web};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

/// The name of the shared error schema (the spec's error envelope).
pub const ERROR: &str = "Error";

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// One operation as [`describe`] gives it; [`operation`] adds what follows from the row.
pub struct Op {
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: Option<&'static str>,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Vec<(u16, Value)>,
}

impl Op {
    fn new(id: &'static str, tag: &'static str, summary: &'static str) -> Self {
        Self {
            id,
            tag,
            summary,
            description: None,
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
        }
    }

    fn about(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }

    fn query(mut self, name: &str, description: &str, schema: Value) -> Self {
        self.params.push(json!({
            "name": name, "in": "query", "required": false,
            "description": description, "schema": schema,
        }));
        self
    }

    fn header(mut self, name: &str, description: &str, schema: Value) -> Self {
        self.params.push(json!({
            "name": name, "in": "header", "required": false,
            "description": description, "schema": schema,
        }));
        self
    }

    /// A JSON request body (`required`: may it be omitted?); refusals of malformed and
    /// oversized bodies are documented with it.
    fn json_body(mut self, schema: Value, required: bool) -> Self {
        self.body = Some(json!({
            "required": required,
            "content": { "application/json": { "schema": schema } },
        }));
        self.error(
            400,
            "Invalid request body (E004); `fields` names each offending field",
        )
        .error(413, "Request body larger than the limit (E004)")
    }

    /// A success (or any non-error) answer with a JSON body.
    fn ok(self, status: u16, description: &str, schema: Value) -> Self {
        self.content(status, description, "application/json", schema)
    }

    fn content(mut self, status: u16, description: &str, media: &str, schema: Value) -> Self {
        self.responses.push((
            status,
            json!({ "description": description, "content": { media: { "schema": schema } } }),
        ));
        self
    }

    /// An answer without a body.
    fn empty(mut self, status: u16, description: &str) -> Self {
        self.responses
            .push((status, json!({ "description": description })));
        self
    }

    /// An error answer (the [`ERROR`] envelope). The first description of a status wins.
    fn error(mut self, status: u16, description: &str) -> Self {
        if !self.responses.iter().any(|(s, _)| *s == status) {
            self.responses.push((
                status,
                json!({
                    "description": description,
                    "content": { "application/json": { "schema": schema_ref(ERROR) } },
                }),
            ));
        }
        self
    }
}

const APP_MISSING: &str =
    "No such app, or not the caller's (E002): another user's private app looks missing";
const PROJECT_MISSING: &str =
    "No such project, or one the caller may not see (E002): both look the same";
const TICKET_MISSING: &str = "No such ticket, or one of a project the caller may not see (E002)";
const BAD_QUERY: &str = "Invalid query parameter (E004); `fields` names each offending one";

fn string(max: usize) -> Value {
    json!({ "type": "string", "maxLength": max })
}

fn enumeration(values: impl IntoIterator<Item = &'static str>) -> Value {
    json!({ "type": "string", "enum": values.into_iter().collect::<Vec<_>>() })
}

fn since_query(op: Op) -> Op {
    op.query(
        "since",
        "Only what came after this sequence number",
        json!({ "type": "integer", "minimum": 0 }),
    )
    .error(400, BAD_QUERY)
}

fn list_query(op: Op) -> Op {
    op.query(
        "search",
        "Words in the title or description",
        string(apps::MAX_SEARCH),
    )
    .query(
        "sort",
        "Order: newest first, by title, or last updated first",
        enumeration(["date", "name", "updated"]),
    )
    .query(
        "visibility",
        "Which of the caller's apps (ignored for public lists)",
        enumeration(["public", "private", "all"]),
    )
    .query(
        "page",
        "Page number, from 1",
        json!({ "type": "integer", "minimum": 1, "maximum": 1_000_000 }),
    )
    .query(
        "limit",
        "Apps per page",
        json!({ "type": "integer", "minimum": 1, "maximum": apps::MAX_LIMIT }),
    )
    .error(400, BAD_QUERY)
}

fn workspace(call: WorkspaceCall) -> Op {
    use WorkspaceCall::*;
    let op = match call {
        WriteFiles => Op::new(
            "writeSandboxFiles",
            "sandbox",
            "Write files into the sandbox workspace",
        )
        .json_body(schema_ref("WriteFiles"), true)
        .ok(200, "The normalized paths written", schema_ref("Written")),
        ReadFile => Op::new("readSandboxFile", "sandbox", "Read one workspace file")
            .query(
                "path",
                "The file's path, relative to the workspace",
                string(1024),
            )
            .error(400, BAD_QUERY)
            .ok(200, "The file", schema_ref("FileContent")),
        Tree => Op::new("sandboxTree", "sandbox", "List the workspace's files").ok(
            200,
            "The workspace's regular files",
            schema_ref("Tree"),
        ),
        Exec => Op::new("sandboxExec", "sandbox", "Run a command in the workspace")
            .json_body(schema_ref("ExecRequest"), true)
            .ok(
                200,
                "The command's exit code and (capped) output",
                schema_ref("ExecReply"),
            ),
        Logs => since_query(Op::new(
            "sandboxLogs",
            "sandbox",
            "The dev server's log lines (as Server-Sent Events with `Accept: text/event-stream`)",
        ))
        .ok(200, "Log lines after `since`", schema_ref("LogsReply")),
        Errors => since_query(Op::new(
            "sandboxErrors",
            "sandbox",
            "Errors the dev server and the browser reported",
        ))
        .ok(200, "Errors after `since`", schema_ref("ErrorsReply")),
    };
    op.error(404, "No such app or sandbox (E002)")
        .error(409, "The sandbox is not running (E006)")
        .error(503, "The sandbox service is unreachable (E006)")
}

/// What only the route knows about its operation. Documenting a new route is one arm here.
pub fn describe(route: &Route) -> Op {
    use Route::*;
    match route {
        Health => Op::new("health", "platform", "Health of the Worker's stores, and its build")
            .ok(200, "D1, KV and R2 are reachable", schema_ref("Health"))
            .ok(503, "A store is unreachable", schema_ref("Health")),
        OpenApi => Op::new("openapi", "platform", "This document (OpenAPI 3.1)").ok(
            200,
            "The API's OpenAPI document",
            json!({
                "type": "object", "required": ["openapi", "info", "paths", "components"],
                "properties": { "openapi": { "const": "3.1.0" } },
            }),
        ),
        Providers => Op::new("providers", "auth", "The sign-in methods this deployment offers")
            .ok(200, "Which methods are enabled", schema_ref("Providers")),
        Register => Op::new("register", "auth", "Create an account with a password and sign in")
            .json_body(schema_ref("RegisterRequest"), true)
            .ok(201, "Signed in; the session cookie and CSRF cookie are set", schema_ref("Session"))
            .error(403, "The email address is not on this deployment's allow-list (E001)"),
        Login => Op::new("login", "auth", "Sign in with email and password")
            .json_body(schema_ref("LoginRequest"), true)
            .ok(200, "Signed in; the session cookie and CSRF cookie are set", schema_ref("Session"))
            .error(401, "Wrong email or password (E001)")
            .error(403, "The email address is not on this deployment's allow-list (E001)"),
        Logout => Op::new("logout", "auth", "Revoke the current session and clear its cookies")
            .ok(200, "Signed out", schema_ref("Message")),
        Me => Op::new("me", "auth", "The signed-in user and the session's CSRF token")
            .ok(200, "The current user", schema_ref("Me")),
        DeleteAccount => Op::new("deleteAccount", "auth", "Delete the account and everything it owns")
            .json_body(schema_ref("DeleteAccountRequest"), false)
            .empty(204, "Deleted: every session ended, the cookies cleared; the account's apps are erased in the background")
            .error(403, "Proof missing: the current password, or for an account without one a sign-in in the last ten minutes (E001; `fields` names it)"),
        Verify => Op::new("verifyEmail", "auth", "Use an email verification link")
            .json_body(schema_ref("VerifyRequest"), true)
            .ok(200, "The address is verified; the account as it now is", schema_ref("Verified"))
            .error(400, "The token is invalid, expired, used, replaced by a newer link, or for an address the account no longer uses (E004)"),
        VerifyResend => Op::new("resendVerification", "auth", "Send a new verification link")
            .ok(202, "A new link is on its way", schema_ref("LinkSent"))
            .error(400, "The address is already verified (E004)")
            .error(429, "Too many verification mails for this account (E003)")
            .error(503, "Mail could not be sent (E000)"),
        ChangeEmail => Op::new("changeEmail", "auth", "Ask to change the account's address (takes effect once verified)")
            .json_body(schema_ref("ChangeEmailRequest"), true)
            .ok(202, "A link is on its way to the new address", schema_ref("EmailChangePending"))
            .error(403, "Wrong password, or the address is not on the allow-list (E001)")
            .error(429, "Too many verification mails for this account (E003)")
            .error(503, "Mail could not be sent (E000)"),
        DevOutbox => Op::new("devOutbox", "platform", "The local outbox of `make dev` (only with `MAIL_BACKEND=outbox`)")
            .query("to", "Only messages to this address", string(254))
            .ok(200, "Messages, oldest first", schema_ref("Outbox"))
            .error(400, "`to` is not an email address (E004)")
            .error(404, "Not a development deployment (E002)"),
        OAuthStart(_) => Op::new("oauthStart", "auth", "Start signing in with an OAuth provider")
            .query("redirect", "Where to return in the app afterwards (a local path)", string(2048))
            .empty(302, "Redirect to the provider's consent page")
            .error(404, "Unknown or unconfigured provider (E002)"),
        OAuthCallback(_) => Op::new("oauthCallback", "auth", "The OAuth provider's redirect back")
            .query("code", "The provider's authorization code", string(2048))
            .query("state", "The state this deployment issued", string(256))
            .query("error", "The provider's error, when sign-in was not completed", string(256))
            .empty(302, "Signed in; redirect into the app with the session cookies set")
            .error(400, "Missing code or state, or an unknown, expired or used state (E004)")
            .error(401, "Sign-in not completed, or no email shared by the provider (E001)")
            .error(403, "The email address is not on this deployment's allow-list (E001)")
            .error(404, "Unknown or unconfigured provider (E002)")
            .error(502, "The provider could not be reached or refused the code (E001)"),
        ListApps => list_query(Op::new("listApps", "apps", "The caller's apps, paginated"))
            .ok(200, "A page of apps", schema_ref("AppList")),
        ListPublicApps => {
            list_query(Op::new("listPublicApps", "apps", "Everyone's public apps, paginated"))
                .ok(200, "A page of apps", schema_ref("AppList"))
        }
        CreateApp => Op::new("createApp", "apps", "Create an app")
            .json_body(schema_ref("NewApp"), true)
            .ok(201, "The new app", schema_ref("AppDetail"))
            .error(403, "The account holds the most apps it may (E004; `fields.maxApps`)"),
        GetApp(_) => Op::new("getApp", "apps", "One app: the caller's own, or a public one")
            .ok(200, "The app", schema_ref("AppDetail"))
            .error(404, APP_MISSING),
        PatchApp(_) => Op::new("patchApp", "apps", "Change the caller's app")
            .json_body(schema_ref("AppPatch"), true)
            .ok(200, "The app as changed", schema_ref("AppDetail"))
            .error(404, APP_MISSING),
        DeleteApp(_) => Op::new("deleteApp", "apps", "Delete the caller's app")
            .empty(204, "Deleted")
            .error(404, APP_MISSING),
        AdminUsers => Op::new("adminUsers", "admin", "Every user, paginated")
            .query("page", "Page number, from 1", json!({ "type": "integer", "minimum": 1, "maximum": 1_000_000 }))
            .query("limit", "Users per page", json!({ "type": "integer", "minimum": 1, "maximum": 100 }))
            .error(400, BAD_QUERY)
            .ok(200, "A page of users", schema_ref("UserList")),
        Templates => Op::new("templates", "sandbox", "The starter templates")
            .ok(200, "The catalog", schema_ref("TemplateCatalog")),
        Template(_) => Op::new("template", "sandbox", "One starter template with every file")
            .ok(200, "The template and its files", schema_ref("TemplateFiles"))
            .error(404, "No such template (E002)")
            .error(503, "The template files are not published to R2 (E000)"),
        SandboxCreate(_) => Op::new("createSandbox", "sandbox", "Start the app's sandbox from a template")
            .json_body(schema_ref("CreateSandbox"), false)
            .ok(202, "Starting; poll the status", schema_ref("SandboxStatus"))
            .error(404, APP_MISSING)
            .error(429, "Rate limited, or the account runs the most sandboxes it may (E003)")
            .error(503, "The sandbox service is unreachable (E006)"),
        SandboxStatus(_) => Op::new("sandboxStatus", "sandbox", "The app's sandbox and its preview URL")
            .ok(200, "The sandbox", schema_ref("SandboxStatus"))
            .error(404, "No such app, or it has no sandbox (E002)")
            .error(503, "The sandbox service is unreachable (E006)"),
        SandboxStop(_) => Op::new("stopSandbox", "sandbox", "Stop the app's sandbox")
            .ok(200, "Stopped", schema_ref("SandboxState"))
            .error(404, "No such app, or it has no sandbox (E002)")
            .error(503, "The sandbox service is unreachable (E006)"),
        Workspace(_, call) => workspace(*call),
        AiKeys => Op::new("aiKeys", "ai", "The caller's own provider keys (masked)")
            .ok(200, "The keys", schema_ref("KeyList"))
            .error(503, "Storing keys is not configured on this deployment (E000)"),
        AiPutKey(_) => Op::new("aiPutKey", "ai", "Store the caller's key for a provider")
            .json_body(schema_ref("PutKey"), true)
            .ok(200, "Stored; only its hint is ever shown", schema_ref("KeyHint"))
            .error(400, "Unknown provider, or an invalid key (E004)")
            .error(503, "Storing keys is not configured on this deployment (E000)"),
        AiDeleteKey(_) => Op::new("aiDeleteKey", "ai", "Delete the caller's key for a provider")
            .empty(204, "Deleted")
            .error(400, "Unknown provider (E004)")
            .error(404, "No key stored for this provider (E002)")
            .error(503, "Storing keys is not configured on this deployment (E000)"),
        AiModels => Op::new("aiModels", "ai", "The model each operation uses for the caller")
            .ok(200, "Models per operation, and the providers available", schema_ref("Models")),
        AiPatchModel(_) => Op::new("aiPatchModel", "ai", "Override the caller's model settings for an operation")
            .json_body(schema_ref("ModelOverride"), true)
            .ok(200, "The override as saved and the models it resolves to", schema_ref("ModelChoice"))
            .error(400, "Unknown operation, or invalid settings (E004)"),
        AiDeleteModel(_) => Op::new("aiDeleteModel", "ai", "Drop the caller's override for an operation")
            .ok(200, "The deployment's models for the operation", schema_ref("ModelChoice"))
            .error(400, "Unknown operation (E004)"),
        AiTest => Op::new("aiTest", "ai", "A test completion through the caller's model settings")
            .json_body(schema_ref("AiTestRequest"), true)
            .ok(200, "The model's answer and its usage", json!({ "type": "object", "required": ["operation"] }))
            .error(502, "Every model the operation may use failed (E005)")
            .error(503, "No model is configured for the operation (E005)"),
        AiUsage => Op::new("aiUsage", "ai", "The caller's model usage in the last 24 hours")
            .ok(
                200,
                "Calls and tokens per operation, every call that cost tokens whatever its outcome \
                 (cancelled and failed ones also counted apart)",
                schema_ref("Usage"),
            ),
        AppUsage(_) => Op::new("appUsage", "ai", "The app's model usage per operation")
            .about("Every model call made for the app (all time): requests, prompt, completion, cached prompt and total tokens per operation, and their sum.")
            .ok(200, "Requests and tokens per operation", schema_ref("AppUsage"))
            .error(404, APP_MISSING),
        AgentChat(_) => Op::new("agentChat", "agent", "Send the app's agent a message")
            .about("The first message plans and generates the app; later ones edit it (queued while work runs). The run's events follow as Server-Sent Events.")
            .json_body(schema_ref("StartChat"), true)
            .content(200, "The run's events", "text/event-stream", schema_ref("ServerSentEvent"))
            .error(404, APP_MISSING)
            .error(429, "Rate limited, or too many messages already wait (E003)"),
        AgentState(_) => since_query(Op::new("agentState", "agent", "The agent's state and its stored events"))
            .ok(200, "The state, and the events after `since`", schema_ref("AgentState"))
            .error(404, APP_MISSING),
        AgentEvents(_) => since_query(Op::new("agentEvents", "agent", "The agent's events as Server-Sent Events"))
            .header("Last-Event-ID", "Resume after this event", json!({ "type": "string" }))
            .content(200, "The state, the stored events, then live ones while a run is active", "text/event-stream", schema_ref("ServerSentEvent"))
            .error(404, APP_MISSING),
        AgentSocket(_) => since_query(Op::new("agentSocket", "agent", "The agent's events and commands over a WebSocket"))
            .empty(101, "Switching to the WebSocket protocol")
            .error(403, "Cookie credentials from another site (E001)")
            .error(404, APP_MISSING)
            .error(426, "Not a WebSocket upgrade request (E004)"),
        OrchestratorSocket => Op::new("orchestratorSocket", "orchestrator", "The orchestrator hub: live project and ticket events over a WebSocket")
            .about("Protocol: src/domain/orchestrator/protocol.rs. The first message must be `authenticate` (a session token, or none to use the session cookie the upgrade carried) within ORCH_AUTH_TIMEOUT_SECONDS; then `subscribe`/`unsubscribe` to projects the user may see, and a `pong` for each `heartbeat`.")
            .query("projectId", "A placement hint: connections naming the same project share a hub shard (it subscribes to nothing)", string(40))
            .empty(101, "Switching to the WebSocket protocol")
            .error(426, "Not a WebSocket upgrade request (E004)"),
        AgentVersions(_) => Op::new("agentVersions", "agent", "The app's saved versions, oldest first")
            .ok(200, "The versions", schema_ref("VersionList"))
            .error(404, APP_MISSING),
        AgentVersion(..) => Op::new("agentVersion", "agent", "A saved version's manifest")
            .ok(200, "Every file of the version with its hash and size", schema_ref("VersionManifest"))
            .error(404, "No such app or version (E002)"),
        AgentVersionFile(..) => Op::new("agentVersionFile", "agent", "A file as it was in a saved version")
            .content(200, "The file's content", "text/plain", json!({ "type": "string" }))
            .error(404, "No such app, version or file (E002)"),
        Deploy(_) => Op::new("deploy", "deploy", "Build the app in its sandbox and publish it at its own address")
            .ok(202, "The deployment, building (progress as `deploy_*` agent events)", schema_ref("Deployment"))
            .error(404, APP_MISSING)
            .error(409, "Another deployment of the app is under way (E007)")
            .error(429, "The deployment limit (`RATE_LIMIT_DEPLOY`) is reached (E003)"),
        Undeploy(_) => Op::new("undeploy", "deploy", "Take the app's deployment down")
            .ok(200, "Undeployed", json!({ "type": "object", "required": ["undeployed"], "properties": { "undeployed": { "const": true } } }))
            .error(404, "No such app, or it is not deployed (E002)")
            .error(409, "A deployment of the app is under way (E007)")
            .error(502, "The hosting refused to take it down (E007)"),
        Deployments(_) => Op::new("deployments", "deploy", "The app's deployments, newest first")
            .ok(200, "The history", schema_ref("DeploymentList"))
            .error(404, APP_MISSING),
        Rollback(..) => Op::new("rollback", "deploy", "Republish an earlier deployment's artifact (no rebuild)")
            .ok(202, "The new deployment, publishing", schema_ref("Deployment"))
            .error(404, "No such app, or no such deployment that once served (E002)")
            .error(409, "Another deployment of the app is under way (E007)")
            .error(429, "The deployment limit (`RATE_LIMIT_DEPLOY`) is reached (E003)"),
        GitHubStatus => Op::new("githubStatus", "github", "Whether GitHub export is configured, and the caller's connection")
            .ok(200, "The connection (never its token)", schema_ref("GitHubConnection")),
        GitHubConnect => Op::new("githubConnect", "github", "Start connecting GitHub for export (the exporter app, scope `repo`)")
            .query("redirect", "Where to return in the app afterwards (a local path)", string(2048))
            .empty(302, "Redirect to GitHub's consent page")
            .error(404, GITHUB_OFF),
        GitHubCallback => Op::new("githubCallback", "github", "GitHub's redirect back after connecting")
            .query("code", "GitHub's authorization code", string(2048))
            .query("state", "The state this deployment issued", string(256))
            .query("error", "GitHub's error, when the connection was not granted", string(256))
            .empty(302, "Connected; redirect into the app")
            .error(400, "Missing code or state, or an unknown, expired or used state (E004)")
            .error(403, "The connection was not granted, or GitHub refused the token (E001)")
            .error(404, GITHUB_OFF)
            .error(502, "GitHub could not be reached or refused the code (E001/E000)"),
        GitHubDisconnect => Op::new("githubDisconnect", "github", "Forget the caller's GitHub connection")
            .empty(204, "Disconnected")
            .error(404, "Not connected, or export is not configured (E002)"),
        AppGitHub(_) => Op::new("appGithub", "github", "The app's GitHub repository and last pushed commit")
            .ok(200, "The link, or null", schema_ref("AppGitHub"))
            .error(404, "No such app, or export is not configured (E002)"),
        AppGitHubCreate(_) => Op::new("appGithubCreate", "github", "Create a repository on the connected account and push the app's files")
            .json_body(schema_ref("NewGitHubRepo"), true)
            .ok(201, "Created and pushed", schema_ref("GitHubPushResult"))
            .error(403, "GitHub refused the token or its scope (E001)")
            .error(404, "No such app, or export is not configured (E002)")
            .error(409, "Not connected, no saved files yet, or the app already has a repository (E004)")
            .error(429, "GitHub's rate limit (E003)")
            .error(502, GITHUB_DOWN),
        AppGitHubUnlink(_) => Op::new("appGithubUnlink", "github", "Forget the app's repository (it stays on GitHub)")
            .empty(204, "Unlinked")
            .error(404, "No such app, no repository linked, or export is not configured (E002)"),
        AppGitHubPush(_) => Op::new("appGithubPush", "github", "Push the app's current files as one incremental commit (never forced)")
            .ok(200, "Pushed (or nothing changed)", schema_ref("GitHubPushResult"))
            .error(403, "GitHub refused the token or its scope (E001)")
            .error(404, "No such app or repository, or export is not configured (E002)")
            .error(409, "Not connected, no saved files, or the branch moved on since the last push: nothing was overwritten (E004)")
            .error(429, "GitHub's rate limit (E003)")
            .error(502, GITHUB_DOWN),
        ProjectGitHubRepo(_) => Op::new("projectGithubRepo", "github", "Create the project's repository on the caller's connected account (with the project's app's files)")
            .json_body(schema_ref("NewGitHubRepo"), false)
            .ok(201, "Created and linked", json!({ "type": "object", "required": ["repoUrl", "repoName", "defaultBranch"],
                "properties": { "repoUrl": { "type": "string" }, "repoName": { "type": "string" }, "defaultBranch": { "type": "string" } } }))
            .error(403, "GitHub refused the token or its scope (E001)")
            .error(404, "No such project, or not the caller's to see, or export is not configured (E002)")
            .error(409, "Not connected, or the project already has a repository (E004)")
            .error(429, "GitHub's rate limit (E003)")
            .error(502, GITHUB_DOWN),
        TicketGitHubBranch(_) => Op::new("ticketGithubBranch", "github", "Create the ticket's branch (`ticket-<n>-<slug>`) from the default branch")
            .ok(201, "The branch (`created`: false when it already existed)", json!({ "type": "object", "required": ["branchName", "created"],
                "properties": { "branchName": { "type": "string" }, "created": { "type": "boolean" } } }))
            .error(403, "GitHub refused the token or its scope (E001)")
            .error(404, "No such ticket, or not the caller's to see, or export is not configured (E002)")
            .error(409, "Not connected, no repository, or the ticket's state refuses the change (E004)")
            .error(429, "GitHub's rate limit (E003)")
            .error(502, GITHUB_DOWN),
        TicketGitHubPr(_) => Op::new("ticketGithubPr", "github", "Open the ticket's pull request (its branch into the default branch)")
            .json_body(json!({ "type": "object", "additionalProperties": false, "properties": {
                "title": { "type": ["string", "null"], "maxLength": 256 }, "body": { "type": ["string", "null"], "maxLength": 10000 } } }), false)
            .ok(201, "Opened", json!({ "type": "object", "required": ["prUrl", "number"],
                "properties": { "prUrl": { "type": "string" }, "number": { "type": "integer" } } }))
            .error(403, "GitHub refused the token or its scope (E001)")
            .error(404, "No such ticket, or not the caller's to see, or export is not configured (E002)")
            .error(409, "Not connected, no repository or branch, a pull request already open, or no commits on the branch yet (E004)")
            .error(429, "GitHub's rate limit (E003)")
            .error(502, GITHUB_DOWN),
        ImplementTicket(_) => Op::new("implementTicket", "orchestrator", "Implement the ticket with the code generator, as an edit of the project's app")
            .about("The ticket (title, description, acceptance criteria, affected files) becomes a follow-up edit of the project's app, run by its agent with the usual streaming events (`GET /api/agent/:appId/events`), sandbox checks and correction rounds. The ticket moves to `in_progress` now; when the run succeeds it moves to `review` and, when the project has a linked repository, the changed files are committed to the ticket's branch (created if missing, never force-pushed) and a pull request is opened. A failed run leaves the ticket `in_progress` with `implementation.error` set. Every change reaches the project's hub subscribers.")
            .ok(202, "The run is queued on the app's agent", json!({ "type": "object", "required": ["ticket", "appId", "message"],
                "properties": { "ticket": schema_ref("Ticket"), "appId": { "type": "string" }, "message": { "type": "string" } } }))
            .error(400, "The project's app is not the stakeholder's any more (E004)")
            .error(404, "No such ticket, or not the caller's to see (E002)")
            .error(409, "Blocked by unfinished tickets, a status or project that does not accept work, no app or no generated files yet, or the app's agent is busy (E004)")
            .error(429, "The AI request limit, or the app's queue is full (E003)"),
        GitHubWebhook => Op::new("githubWebhook", "github", "GitHub's webhook deliveries (pull_request, push) for linked repositories")
            .about("Authenticated by `X-Hub-Signature-256` (HMAC-SHA256 of the body under `WEBHOOK_SECRET`); idempotent per `X-GitHub-Delivery`. A merged pull request completes its ticket (readying its dependents), a closed one returns a ticket in review to in_progress, a push to a ticket's branch adds to its commit count.")
            .header("X-Hub-Signature-256", "sha256=<hex HMAC-SHA256 of the body>", json!({ "type": "string" }))
            .header("X-GitHub-Event", "The event type", json!({ "type": "string" }))
            .header("X-GitHub-Delivery", "The delivery's unique id", json!({ "type": "string" }))
            .json_body(json!({ "type": "object" }), true)
            .ok(200, "Handled, ignored, or a replay", json!({ "type": "object", "required": ["handled", "duplicate", "tickets"],
                "properties": { "handled": { "type": "boolean" }, "duplicate": { "type": "boolean" },
                    "tickets": { "type": "array", "items": { "type": "string" } } } }))
            .error(401, "Missing or wrong signature: nothing changed (E001)")
            .error(404, "Webhooks are not configured (E002)"),
        ListProjects => Op::new("listProjects", "orchestrator", "The projects the caller may see, newest first")
            .query("status", "Only projects in this status", schema_ref("ProjectStatus"))
            .query("search", "Words in the title or description", string(orch::MAX_SEARCH))
            .error(400, BAD_QUERY)
            .ok(200, "The projects (at most 1000)", schema_ref("ProjectList")),
        CreateProject => Op::new("createProject", "orchestrator", "Create a project and start its analysis")
            .json_body(schema_ref("NewProject"), true)
            .about("The project starts in `analyzing` with its ticket generation running; progress arrives on the hub (`analysis_progress`, then `tickets_generated` or `generation_failed`). With source `github` (and GitHub export configured), the repository's default branch is imported through the caller's GitHub connection as a new private app of theirs (text files only, bounded: `import.skipped` says what was left out), which becomes the project's app.")
            .ok(201, "The new project", schema_ref("ProjectCreated"))
            .error(403, "The account has the most active projects (E004; `fields.maxProjectsActive`) or apps (`fields.maxApps`) it may, or GitHub refused the connection's token (E001)")
            .error(409, "Source `github`: GitHub is not connected (E004)")
            .error(429, "Source `github`: GitHub's rate limit (E003)")
            .error(502, GITHUB_DOWN),
        GetProject(_) => Op::new("getProject", "orchestrator", "A project with its tickets, dependencies and plan")
            .ok(200, "The project's fields, its tickets by order, its dependencies and its plan", schema_ref("ProjectDetail"))
            .error(404, PROJECT_MISSING),
        PatchProject(_) => Op::new("patchProject", "orchestrator", "Approve, regenerate or archive a project")
            .json_body(schema_ref("ProjectChange"), true)
            .ok(200, "The project as changed", schema_ref("ProjectEnvelope"))
            .error(404, PROJECT_MISSING)
            .error(409, "The lifecycle does not allow the action now (E004; `fields.allowed` lists the allowed actions), or a generation is running"),
        GenerateTickets(_) => Op::new("generateTickets", "orchestrator", "Start the project's ticket generation again")
            .about("Allowed in `analyzing` (e.g. after a failed generation) and `review` (which goes back to `analyzing`).")
            .ok(200, "Started", schema_ref("GenerationStarted"))
            .error(404, PROJECT_MISSING)
            .error(409, "The project is past review, or a generation is already running (E004)"),
        ListTickets => Op::new("listTickets", "orchestrator", "Tickets of the projects the caller may see")
            .query("projectId", "Only this project's tickets", json!({ "type": "string" }))
            .query("status", "Only tickets in these statuses (repeat the parameter, or separate with commas)", json!({ "type": "string" }))
            .query("assignedToMe", "Only tickets assigned to the caller", json!({ "type": "string", "enum": ["true", "false"] }))
            .error(400, BAD_QUERY)
            .error(404, PROJECT_MISSING)
            .ok(200, "The tickets, by project (newest first) then order (at most 1000)", schema_ref("TicketList")),
        PatchTicket(_) => Op::new("patchTicket", "orchestrator", "Change a ticket's status or fields")
            .about("A status change must be one of the ticket's `allowedTransitions`; completing a ticket readies the tickets it blocked, and the project goes `in_progress` / `completed` by itself.")
            .json_body(schema_ref("TicketPatch"), true)
            .ok(200, "The ticket as changed", schema_ref("TicketEnvelope"))
            .error(404, TICKET_MISSING)
            .error(409, "A transition the lifecycle does not allow (E004; `fields.allowed`), work started while a blocker is unfinished (`fields.blockedBy`), or a project that does not accept the change now"),
        AssignTicket(_) => Op::new("assignTicket", "orchestrator", "Assign a ticket (to the caller by default)")
            .json_body(schema_ref("AssignTicket"), false)
            .ok(200, "The ticket, assigned (a ready ticket becomes assigned; others keep their status)", schema_ref("TicketEnvelope"))
            .error(400, "`userId` is not a member of the project (E004)")
            .error(404, TICKET_MISSING)
            .error(409, "The ticket is not ready yet or finished, or the project is not approved (E004)"),
    }
}

const GITHUB_OFF: &str = "GitHub export is not configured on this deployment (E002)";
const GITHUB_DOWN: &str = "GitHub is unavailable (E000)";

/// A path parameter's description and schema, by its name in the table. Values are one
/// non-empty segment of plain characters: anything else (`..`, an empty segment) is another
/// path, so another operation.
fn path_param(name: &str) -> (&'static str, Value) {
    let segment = |pattern: &str| json!({ "type": "string", "minLength": 1, "pattern": pattern });
    let word = segment("^[A-Za-z0-9_-]+$");
    let one_of = |values: Vec<&'static str>| json!({ "type": "string", "enum": values });
    match name {
        "id" => ("The app's id (`app_` and 32 hex digits)", word),
        "provider" => (
            "A provider name",
            one_of(Provider::ALL.map(Provider::as_str).to_vec()),
        ),
        "operation" => (
            "A model operation",
            one_of(Operation::ALL.map(Operation::as_str).to_vec()),
        ),
        "name" => (
            "A template name",
            one_of(templates::CATALOG.iter().map(|t| t.name).collect()),
        ),
        "n" => ("A version number", segment("^[0-9]+$")),
        "path" => (
            "The file's path in the version (it may contain `/`)",
            segment("^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$"),
        ),
        "project" => ("A project's id (`prj_` and 32 hex digits)", word),
        "ticket" => ("A ticket's id (`tkt_` and 32 hex digits)", word),
        _ => ("A path parameter", word),
    }
}

/// The OpenAPI path of a table pattern (`/api/apps/:id` → `/api/apps/{id}`) and its parameters.
pub fn openapi_path(pattern: &str) -> (String, Vec<&str>) {
    let mut names = Vec::new();
    let path = pattern
        .split('/')
        .map(
            |s| match s.strip_prefix(':').or_else(|| s.strip_prefix('*')) {
                Some(n) => {
                    names.push(n);
                    format!("{{{n}}}")
                }
                None => s.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/");
    (path, names)
}

fn method_key(m: Method) -> &'static str {
    match m {
        Method::Get => "get",
        Method::Post => "post",
        Method::Put => "put",
        Method::Patch => "patch",
        Method::Delete => "delete",
    }
}

/// A row's whole operation: [`describe`] plus what the row's auth level and rate class imply.
pub fn operation(entry: &Entry) -> Value {
    let mut op = describe(&entry.template_route());
    let (_, names) = openapi_path(entry.pattern);
    let mut params: Vec<Value> = names
        .iter()
        .map(|n| {
            let (description, schema) = path_param(n);
            json!({ "name": n, "in": "path", "required": true, "description": description, "schema": schema })
        })
        .collect();
    params.append(&mut op.params);
    let writes = entry.method != Method::Get;
    let bearer = json!({ "bearer": [] });
    let cookie = if writes {
        json!({ "session": [], "csrf": [] })
    } else {
        json!({ "session": [] })
    };
    let security = match entry.auth {
        AuthLevel::Public => json!([{}, bearer, cookie]),
        AuthLevel::Authenticated | AuthLevel::Admin => json!([bearer, cookie]),
    };
    op = match entry.auth {
        AuthLevel::Public => op.error(
            401,
            "An explicit bearer token that is invalid, expired or revoked (E001)",
        ),
        _ => op.error(
            401,
            "No credential, or an invalid, expired or revoked one (E001)",
        ),
    };
    if entry.auth == AuthLevel::Admin {
        op = op.error(403, "The caller is not an administrator, or a cookie-authenticated write without a valid X-CSRF-Token (E001)");
    } else if entry.auth == AuthLevel::Authenticated && writes {
        op = op.error(
            403,
            "A cookie-authenticated write without a valid X-CSRF-Token (E001)",
        );
    }
    if entry.class.is_some() {
        op = op
            .error(
                429,
                "Rate limit exceeded (E003); `Retry-After` says when to retry",
            )
            .error(503, "The rate limiter is unavailable; try again (E000)");
    }
    let mut responses: Vec<(u16, Value)> = op.responses;
    responses.sort_by_key(|(s, _)| *s);
    let responses: Map<String, Value> = responses
        .into_iter()
        .map(|(s, r)| (s.to_string(), r))
        .collect();
    let mut v = json!({
        "operationId": op.id,
        "tags": [op.tag],
        "summary": op.summary,
        "security": security,
        "responses": responses,
    });
    if let Some(d) = op.description {
        v["description"] = json!(d);
    }
    if !params.is_empty() {
        v["parameters"] = json!(params);
    }
    if let Some(b) = op.body {
        v["requestBody"] = b;
    }
    v
}

fn derived<T: ToSchema>() -> (String, Value) {
    (
        T::name().into_owned(),
        serde_json::to_value(T::schema()).unwrap_or(Value::Null),
    )
}

/// Every named schema of the document.
pub fn schemas() -> Map<String, Value> {
    let providers = enumeration(Provider::ALL.map(Provider::as_str));
    let operations = enumeration(Operation::ALL.map(Operation::as_str));
    let timestamp = json!({ "type": ["string", "null"], "format": "date-time" });
    let probe = json!({
        "type": "object", "required": ["ok"],
        "properties": {
            "ok": { "type": "boolean" },
            "latencyMs": { "type": "number" },
            "error": { "type": "string" },
        },
    });
    let model_choice = json!({
        "type": "object", "required": ["primary", "fallback"],
        "properties": {
            "operation": operations,
            "primary": schema_ref("ModelConfig"),
            "fallback": { "anyOf": [schema_ref("ModelConfig"), { "type": "null" }] },
            "override": { "anyOf": [schema_ref("ModelOverride"), { "type": "null" }] },
            "overrideError": { "type": "object", "additionalProperties": { "type": "string" } },
            "default": {
                "allOf": [schema_ref("ModelConfig")],
                "description": "The deployment's model for the operation (what applies without an override).",
            },
        },
    });
    // The calls of an outcome other than completed (their tokens are in the totals too).
    let part = json!({
        "type": "object",
        "required": ["requests", "totalTokens"],
        "properties": {
            "requests": { "type": "integer", "minimum": 0 },
            "totalTokens": { "type": "integer", "minimum": 0 },
        },
    });
    let counts = json!({
        "type": "object",
        "required": ["requests", "promptTokens", "completionTokens", "totalTokens", "cancelled", "failed"],
        "properties": {
            "operation": { "type": "string" },
            "requests": { "type": "integer", "minimum": 0 },
            "promptTokens": { "type": "integer", "minimum": 0 },
            "completionTokens": { "type": "integer", "minimum": 0 },
            "totalTokens": { "type": "integer", "minimum": 0 },
            "cancelled": part,
            "failed": part,
        },
    });
    // An app's all-time usage: every recorded call, cached prompt tokens apart (no outcome split).
    let app_counts = json!({
        "type": "object",
        "required": ["requests", "promptTokens", "completionTokens", "cachedTokens", "totalTokens"],
        "properties": {
            "operation": { "type": "string" },
            "requests": { "type": "integer", "minimum": 0 },
            "promptTokens": { "type": "integer", "minimum": 0 },
            "completionTokens": { "type": "integer", "minimum": 0 },
            "cachedTokens": { "type": "integer", "minimum": 0 },
            "totalTokens": { "type": "integer", "minimum": 0 },
        },
    });
    let page = |item: &str, key: &str| {
        json!({
            "type": "object", "required": [key, "total", "page", "totalPages"],
            "properties": {
                key: { "type": "array", "items": schema_ref(item) },
                "total": { "type": "integer", "minimum": 0 },
                "page": { "type": "integer", "minimum": 1 },
                "limit": { "type": "integer", "minimum": 1 },
                "totalPages": { "type": "integer", "minimum": 0 },
            },
        })
    };
    let tags = json!({
        "type": ["array", "null"], "maxItems": apps::MAX_TAGS,
        "items": { "type": "string", "maxLength": apps::MAX_TAG_CHARS },
    });
    let mut m: Map<String, Value> = [
        derived::<ErrorCode>(),
        derived::<Visibility>(),
        derived::<AppSummary>(),
        derived::<AppDetail>(),
        derived::<Status>(),
        derived::<State>(),
        derived::<VersionFile>(),
        derived::<VersionSummary>(),
        derived::<VersionManifest>(),
        derived::<DeployStatus>(),
        derived::<Deployment>(),
        derived::<AgentEvent>(),
        derived::<ClientCommand>(),
        derived::<StateSnapshot>(),
        derived::<PhaseSummary>(),
        derived::<FileSummary>(),
        derived::<RunStatus>(),
        derived::<RunOutcome>(),
        derived::<PhaseKind>(),
        derived::<PhaseStatus>(),
        derived::<CallUsage>(),
        derived::<ModelUsage>(),
        derived::<DeployStep>(),
        derived::<ProjectStatus>(),
        derived::<TicketStatus>(),
        derived::<TicketType>(),
        derived::<Priority>(),
        derived::<DependencyType>(),
        derived::<ProjectSource>(),
        derived::<ProjectAction>(),
        derived::<GenerationState>(),
        derived::<GenerationError>(),
        derived::<Generation>(),
        derived::<PackageDependency>(),
        derived::<AnalysisResult>(),
        derived::<Project>(),
        derived::<ImplementationState>(),
        derived::<Implementation>(),
        derived::<Ticket>(),
        derived::<Dependency>(),
        derived::<CriticalPath>(),
        derived::<Plan>(),
        derived::<ProjectDetail>(),
    ]
    .into_iter()
    .collect();
    let rest = [
        (
            ERROR,
            json!({
                "description": "The error envelope every error response uses (the spec's E000–E007).",
                "type": "object", "required": ["error"],
                "properties": { "error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {
                        "code": schema_ref("ErrorCode"),
                        "message": { "type": "string", "minLength": 1 },
                        "fields": {
                            "description": "Each offending field (or parameter) with what is wrong with it.",
                            "type": "object", "additionalProperties": { "type": "string" },
                        },
                    },
                }},
            }),
        ),
        (
            "Health",
            json!({
                "type": "object", "required": ["status", "version", "commit", "checks"],
                "properties": {
                    "status": enumeration(["ok", "degraded"]),
                    "version": { "type": "string" },
                    "commit": { "type": "string" },
                    "checks": {
                        "type": "object", "required": ["d1", "kv", "r2"],
                        "properties": { "d1": probe, "kv": probe, "r2": probe },
                    },
                },
            }),
        ),
        (
            "Providers",
            json!({
                "type": "object", "required": ["password", "google", "github"],
                "properties": {
                    "password": { "type": "boolean" },
                    "google": { "type": "boolean" },
                    "github": { "type": "boolean" },
                },
            }),
        ),
        (
            "User",
            json!({
                "type": "object",
                "required": ["id", "email", "displayName", "role", "provider"],
                "properties": {
                    "id": { "type": "string" },
                    "email": { "type": "string" },
                    "displayName": { "type": "string" },
                    "avatarUrl": { "type": ["string", "null"] },
                    "provider": { "type": ["string", "null"] },
                    "role": enumeration(["user", "admin"]),
                    "createdAt": timestamp,
                    "lastLogin": timestamp,
                    "emailVerified": { "type": "boolean" },
                    "pendingEmail": { "type": ["string", "null"], "description": "A new address waiting for its verification link." },
                },
            }),
        ),
        (
            "DeleteAccountRequest",
            json!({
                "type": "object", "additionalProperties": false,
                "properties": { "password": { "type": "string", "maxLength": 1024 } },
            }),
        ),
        (
            "VerifyRequest",
            json!({
                "type": "object", "required": ["token"], "additionalProperties": false,
                "properties": { "token": { "type": "string", "maxLength": 4096 } },
            }),
        ),
        (
            "Verified",
            json!({
                "type": "object", "required": ["message", "user"],
                "properties": { "message": { "type": "string" }, "user": schema_ref("User") },
            }),
        ),
        (
            "LinkSent",
            json!({
                "type": "object", "required": ["message", "to"],
                "properties": { "message": { "type": "string" }, "to": { "type": "string" } },
            }),
        ),
        (
            "ChangeEmailRequest",
            json!({
                "type": "object", "required": ["email"], "additionalProperties": false,
                "properties": {
                    "email": { "type": "string", "format": "email", "maxLength": 254 },
                    "password": { "type": "string", "maxLength": 1024, "description": "Required for accounts with a password." },
                },
            }),
        ),
        (
            "EmailChangePending",
            json!({
                "type": "object", "required": ["message", "pendingEmail"],
                "properties": { "message": { "type": "string" }, "pendingEmail": { "type": "string" } },
            }),
        ),
        (
            "Outbox",
            json!({
                "type": "object", "required": ["messages"],
                "properties": { "messages": { "type": "array", "items": {
                    "type": "object", "required": ["to", "subject", "text", "link", "sentAt"],
                    "properties": {
                        "from": { "type": "string" }, "to": { "type": "string" },
                        "subject": { "type": "string" }, "text": { "type": "string" },
                        "link": { "type": "string" }, "sentAt": { "type": "integer" },
                    },
                } } },
            }),
        ),
        (
            "RegisterRequest",
            json!({
                "type": "object", "required": ["email", "password"], "additionalProperties": false,
                "properties": {
                    "email": { "type": "string", "format": "email", "maxLength": 254 },
                    "password": { "type": "string", "minLength": password::MIN_LEN, "maxLength": password::MAX_LEN },
                    "displayName": { "type": ["string", "null"], "maxLength": 100 },
                },
            }),
        ),
        (
            "LoginRequest",
            json!({
                "type": "object", "required": ["email", "password"], "additionalProperties": false,
                "properties": {
                    "email": { "type": "string", "maxLength": 254 },
                    "password": { "type": "string", "maxLength": 1024 },
                },
            }),
        ),
        (
            "Session",
            json!({
                "type": "object", "required": ["token", "csrfToken", "expiresIn", "user"],
                "properties": {
                    "token": { "type": "string", "description": "A bearer token for `Authorization`." },
                    "csrfToken": { "type": "string" },
                    "expiresIn": { "type": "integer", "description": "Seconds." },
                    "user": schema_ref("User"),
                },
            }),
        ),
        (
            "Me",
            json!({
                "type": "object", "required": ["user", "csrfToken"],
                "properties": { "user": schema_ref("User"), "csrfToken": { "type": "string" } },
            }),
        ),
        (
            "Message",
            json!({
                "type": "object", "required": ["message"],
                "properties": { "message": { "type": "string" } },
            }),
        ),
        ("AppList", page("AppSummary", "apps")),
        (
            "ProjectList",
            json!({
                "type": "object", "required": ["projects"],
                "properties": { "projects": { "type": "array", "items": schema_ref("Project") } },
            }),
        ),
        (
            "ProjectCreated",
            json!({
                "type": "object", "required": ["project", "message"],
                "properties": { "project": schema_ref("Project"), "message": { "type": "string" },
                    "import": {
                        "description": "Source `github`: what was imported as the project's app.",
                        "type": "object", "required": ["appId", "commit", "defaultBranch", "files", "skipped"],
                        "properties": {
                            "appId": { "type": "string" }, "commit": { "type": "string" },
                            "defaultBranch": { "type": "string" }, "files": { "type": "integer", "minimum": 0 },
                            "skipped": { "type": "array", "items": { "type": "object", "required": ["path", "reason"],
                                "properties": { "path": { "type": "string" }, "reason": { "type": "string" } } } },
                        },
                    },
                },
            }),
        ),
        (
            "ProjectEnvelope",
            json!({
                "type": "object", "required": ["project"],
                "properties": { "project": schema_ref("Project") },
            }),
        ),
        (
            "GenerationStarted",
            json!({
                "type": "object", "required": ["message", "projectId"],
                "properties": { "message": { "type": "string" }, "projectId": { "type": "string" } },
            }),
        ),
        (
            "TicketList",
            json!({
                "type": "object", "required": ["tickets"],
                "properties": { "tickets": { "type": "array", "items": schema_ref("Ticket") } },
            }),
        ),
        (
            "TicketEnvelope",
            json!({
                "type": "object", "required": ["ticket"],
                "properties": { "ticket": schema_ref("Ticket") },
            }),
        ),
        (
            "NewProject",
            json!({
                "description": "`appId` is required (and only allowed) with source `app`, `githubUrl` with `github`; `title` is required with `new` (else it defaults to the app's title or the repository's name).",
                "type": "object", "required": ["source"], "additionalProperties": false,
                "properties": {
                    "source": schema_ref("ProjectSource"),
                    "appId": { "type": ["string", "null"], "description": "One of the caller's apps." },
                    "githubUrl": { "type": ["string", "null"], "maxLength": orch::MAX_GITHUB_URL,
                        "description": "https://github.com/<owner>/<repo>" },
                    "title": { "type": ["string", "null"], "maxLength": orch::MAX_TITLE },
                    "description": { "type": ["string", "null"], "maxLength": orch::MAX_DESCRIPTION },
                },
            }),
        ),
        (
            "ProjectChange",
            json!({
                "type": "object", "required": ["action"], "additionalProperties": false,
                "properties": {
                    "action": schema_ref("ProjectAction"),
                    "guidance": { "type": ["string", "null"], "maxLength": orch::MAX_GUIDANCE,
                        "description": "Only with `regenerate`: what the new tickets should take into account." },
                },
            }),
        ),
        (
            "TicketPatch",
            json!({
                "description": "At least one field.",
                "type": "object", "minProperties": 1, "additionalProperties": false,
                "properties": {
                    "status": schema_ref("TicketStatus"),
                    "title": { "type": "string", "minLength": 1, "maxLength": orch::MAX_TITLE },
                    "description": { "type": "string", "minLength": 1, "maxLength": orch::MAX_TICKET_DESCRIPTION },
                    "priority": schema_ref("Priority"),
                    "type": schema_ref("TicketType"),
                    "estimatedHours": { "type": ["integer", "null"], "minimum": 0, "maximum": orch::MAX_HOURS },
                    "actualHours": { "type": ["integer", "null"], "minimum": 0, "maximum": orch::MAX_HOURS },
                    "branchName": { "type": ["string", "null"], "maxLength": orch::MAX_BRANCH },
                    "acceptanceCriteria": { "type": ["array", "null"], "maxItems": orch::MAX_CRITERIA,
                        "items": { "type": "string", "maxLength": orch::MAX_CRITERION_CHARS } },
                    "affectedFiles": { "type": ["array", "null"], "maxItems": orch::MAX_FILES,
                        "items": { "type": "string", "maxLength": orch::MAX_PATH_CHARS } },
                    "tags": { "type": ["array", "null"], "maxItems": orch::MAX_TAGS,
                        "items": { "type": "string", "maxLength": orch::MAX_TAG_CHARS } },
                    "category": { "type": ["string", "null"], "maxLength": orch::MAX_CATEGORY },
                },
            }),
        ),
        (
            "AssignTicket",
            json!({
                "type": "object", "additionalProperties": false,
                "properties": {
                    "userId": { "type": ["string", "null"],
                        "description": "A user who may see the project; the caller when absent." },
                },
            }),
        ),
        ("UserList", page("User", "users")),
        (
            "NewApp",
            json!({
                "type": "object", "required": ["title"], "additionalProperties": false,
                "properties": {
                    "title": { "type": "string", "minLength": 1, "maxLength": apps::MAX_TITLE },
                    "description": { "type": ["string", "null"], "maxLength": apps::MAX_DESCRIPTION },
                    "visibility": { "type": ["string", "null"], "enum": ["public", "private", null] },
                    "tags": tags,
                    "config": { "type": ["object", "null"], "description": "At most 64 KiB as JSON." },
                },
            }),
        ),
        (
            "AppPatch",
            json!({
                "description": "At least one field.",
                "type": "object", "minProperties": 1, "additionalProperties": false,
                "properties": {
                    "title": { "type": "string", "minLength": 1, "maxLength": apps::MAX_TITLE },
                    "description": { "type": ["string", "null"], "maxLength": apps::MAX_DESCRIPTION },
                    "visibility": enumeration(["public", "private"]),
                    "tags": tags,
                    "config": { "type": ["object", "null"], "description": "At most 64 KiB as JSON." },
                },
            }),
        ),
        (
            "Template",
            json!({
                "type": "object",
                "required": ["name", "description", "frameworks", "devCommand", "buildCommand", "outputDir", "files"],
                "properties": {
                    "name": { "type": "string" },
                    "description": { "type": "string" },
                    "frameworks": { "type": "array", "items": { "type": "string" } },
                    "devCommand": { "type": "string" },
                    "buildCommand": { "type": "string" },
                    "outputDir": { "type": "string" },
                    "workerEntry": { "type": ["string", "null"], "description": "The app's own Worker inside the build output, deployed as its main module." },
                    "outbound": { "type": "boolean", "description": "Whether deployed code may make outbound requests." },
                    "files": { "type": "array", "items": { "type": "string" } },
                },
            }),
        ),
        (
            "TemplateCatalog",
            json!({
                "type": "object", "required": ["templates"],
                "properties": { "templates": { "type": "array", "items": schema_ref("Template") } },
            }),
        ),
        (
            "TemplateFiles",
            json!({
                "type": "object", "required": ["template", "files"],
                "properties": {
                    "template": schema_ref("Template"),
                    "files": { "type": "object", "additionalProperties": { "type": "string" } },
                },
            }),
        ),
        (
            "CreateSandbox",
            json!({
                "type": "object", "additionalProperties": false,
                "properties": { "template": { "type": ["string", "null"], "maxLength": 64 } },
            }),
        ),
        (
            "SandboxStatus",
            json!({
                "allOf": [schema_ref("State")],
                "type": "object", "required": ["previewUrl"],
                "properties": { "previewUrl": { "type": "string", "description": "Opens the preview (a short-lived token opens a private one)." } },
            }),
        ),
        ("SandboxState", schema_ref("State")),
        (
            "WriteFiles",
            json!({
                "type": "object", "required": ["files"],
                "properties": { "files": { "type": "array", "items": {
                    "type": "object", "required": ["path", "content"],
                    "properties": {
                        "path": { "type": "string" },
                        "content": { "type": "string" },
                        "encoding": enumeration(["utf8", "base64"]),
                    },
                }}},
            }),
        ),
        (
            "Written",
            json!({
                "type": "object", "required": ["written"],
                "properties": { "written": { "type": "array", "items": { "type": "string" } } },
            }),
        ),
        (
            "Tree",
            json!({
                "type": "object", "required": ["files", "truncated"],
                "properties": {
                    "files": { "type": "array", "items": {
                        "type": "object", "required": ["path", "size"],
                        "properties": {
                            "path": { "type": "string" },
                            "size": { "type": "integer", "minimum": 0 },
                        },
                    }},
                    "truncated": { "type": "boolean" },
                },
            }),
        ),
        (
            "ExecReply",
            json!({
                "type": "object",
                "required": ["exitCode", "stdout", "stderr", "stdoutTruncated", "stderrTruncated", "timedOut", "durationMs"],
                "properties": {
                    "exitCode": { "type": ["integer", "null"], "description": "`null` when killed by a signal (always so on timeout)." },
                    "stdout": { "type": "string" },
                    "stderr": { "type": "string" },
                    "stdoutTruncated": { "type": "boolean" },
                    "stderrTruncated": { "type": "boolean" },
                    "timedOut": { "type": "boolean" },
                    "durationMs": { "type": "integer", "minimum": 0 },
                },
            }),
        ),
        (
            "LogsReply",
            json!({
                "type": "object", "required": ["lines", "nextSeq"],
                "properties": {
                    "lines": { "type": "array", "items": {
                        "type": "object", "required": ["seq", "ts", "stream", "source", "line"],
                        "properties": {
                            "seq": { "type": "integer", "minimum": 0 },
                            "ts": { "type": "integer", "minimum": 0, "description": "Epoch milliseconds." },
                            "stream": enumeration(["stdout", "stderr", "system"]),
                            "source": enumeration(["exec", "server"]),
                            "line": { "type": "string" },
                        },
                    }},
                    "nextSeq": { "type": "integer", "minimum": 0 },
                },
            }),
        ),
        (
            "ErrorsReply",
            json!({
                "type": "object", "required": ["errors"],
                "properties": { "errors": { "type": "array", "items": schema_ref("Diagnostic") }},
            }),
        ),
        (
            "Diagnostic",
            json!({
                "description": "One structured error from the sandbox (a build, the dev server, the type checker, an install).",
                "type": "object", "required": ["message", "kind"],
                "properties": {
                    "file": { "type": ["string", "null"] },
                    "line": { "type": ["integer", "null"], "minimum": 0 },
                    "column": { "type": ["integer", "null"], "minimum": 0 },
                    "message": { "type": "string" },
                    "kind": { "type": "string", "description": "install, typescript, vite, esbuild, runtime, build, or another tool's name" },
                },
            }),
        ),
        (
            "FileContent",
            json!({
                "type": "object", "required": ["path", "content", "encoding", "size"],
                "properties": {
                    "path": { "type": "string" },
                    "content": { "type": "string" },
                    "encoding": enumeration(["utf8", "base64"]),
                    "size": { "type": "integer", "minimum": 0 },
                },
            }),
        ),
        (
            "ExecRequest",
            json!({
                "type": "object",
                "properties": {
                    "command": { "type": "string" },
                    "timeoutMs": { "type": "integer", "minimum": 1 },
                    "env": { "type": "object", "additionalProperties": { "type": "string" } },
                },
            }),
        ),
        (
            "KeyList",
            json!({
                "type": "object", "required": ["keys"],
                "properties": { "keys": { "type": "array", "items": {
                    "type": "object", "required": ["provider", "hint"],
                    "properties": {
                        "provider": { "type": "string" },
                        "hint": { "type": "string" },
                        "createdAt": timestamp,
                        "updatedAt": timestamp,
                    },
                }}},
            }),
        ),
        (
            "PutKey",
            json!({
                "type": "object", "required": ["apiKey"], "additionalProperties": false,
                "properties": { "apiKey": { "type": "string", "minLength": 8, "maxLength": 512 } },
            }),
        ),
        (
            "KeyHint",
            json!({
                "type": "object", "required": ["provider", "hint"],
                "properties": { "provider": providers, "hint": { "type": "string" } },
            }),
        ),
        (
            "Models",
            json!({
                "type": "object", "required": ["operations", "providers", "gateway", "customBaseUrl"],
                "properties": {
                    "operations": { "type": "object", "additionalProperties": model_choice },
                    "providers": { "type": "array", "items": {
                        "type": "object", "required": ["provider", "platformKey", "userKey", "usable", "models"],
                        "properties": {
                            "provider": providers,
                            "platformKey": { "type": "boolean" },
                            "userKey": { "type": "boolean" },
                            "usable": { "type": "boolean", "description": "Whether this deployment can call the provider for the caller (keys, gateway, base URL)." },
                            "models": { "type": "array", "items": { "type": "string" }, "description": "Models to offer: the deployment's configured ones first, then well-known ones. Any valid id may be chosen." },
                        },
                    }},
                    "gateway": { "type": "boolean" },
                    "customBaseUrl": { "type": "boolean" },
                },
            }),
        ),
        (
            "ModelOverride",
            json!({
                "type": "object", "additionalProperties": false,
                "properties": {
                    "provider": providers,
                    "model": { "type": "string" },
                    "temperature": { "type": "number" },
                    "maxTokens": { "type": "integer", "minimum": 1 },
                    "topP": { "type": "number" },
                    "frequencyPenalty": { "type": "number" },
                    "presencePenalty": { "type": "number" },
                },
            }),
        ),
        ("ModelChoice", model_choice.clone()),
        (
            "ModelConfig",
            json!({
                "description": "A model and its settings, as resolved for an operation.",
                "type": "object", "required": ["provider", "model", "temperature", "maxTokens"],
                "properties": {
                    "provider": providers,
                    "model": { "type": "string" },
                    "temperature": { "type": "number" },
                    "maxTokens": { "type": "integer", "minimum": 1 },
                    "topP": { "type": "number" },
                    "frequencyPenalty": { "type": "number" },
                    "presencePenalty": { "type": "number" },
                },
            }),
        ),
        (
            "AiTestRequest",
            json!({
                "type": "object", "required": ["prompt"], "additionalProperties": false,
                "properties": {
                    "operation": operations,
                    "prompt": { "type": "string", "minLength": 1, "maxLength": 8000 },
                    "stream": { "type": "boolean" },
                },
            }),
        ),
        (
            "Usage",
            json!({
                "type": "object", "required": ["windowHours", "operations", "total"],
                "properties": {
                    "windowHours": { "type": "integer" },
                    "operations": { "type": "array", "items": counts },
                    "total": counts,
                },
            }),
        ),
        (
            "AppUsage",
            json!({
                "type": "object", "required": ["appId", "operations", "total"],
                "properties": {
                    "appId": { "type": "string" },
                    "operations": { "type": "array", "items": app_counts },
                    "total": app_counts,
                },
            }),
        ),
        (
            "StartChat",
            json!({
                "type": "object", "required": ["message"], "additionalProperties": false,
                "properties": {
                    "message": { "type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS },
                    "config": schema_ref("ModelOverride"),
                },
            }),
        ),
        (
            "AgentState",
            json!({
                "type": "object", "required": ["state", "events", "running"],
                "properties": {
                    "state": schema_ref("StateSnapshot"),
                    "events": { "type": "array", "items": schema_ref("StoredEvent") },
                    "running": { "type": "boolean" },
                },
            }),
        ),
        (
            "StoredEvent",
            json!({
                "description": "A stored agent event with its id (replay resumes after it).",
                "allOf": [
                    schema_ref("AgentEvent"),
                    {
                        "type": "object", "required": ["id"],
                        "properties": { "id": { "type": "integer", "minimum": 1 } },
                    },
                ],
            }),
        ),
        (
            "ServerSentEvent",
            json!({
                "description": "One event of a stream: `data` is the event's JSON, `event` its type.",
                "type": "object", "required": ["data"],
                "properties": {
                    "event": { "type": "string" },
                    "data": { "type": "string" },
                    "id": { "type": "string" },
                    "retry": { "type": "integer" },
                },
            }),
        ),
        (
            "DeploymentList",
            json!({
                "type": "object", "required": ["deployments"],
                "properties": { "deployments": { "type": "array", "items": schema_ref("Deployment") } },
            }),
        ),
        (
            "GitHubConnection",
            json!({
                "type": "object", "required": ["configured", "connected"],
                "properties": {
                    "configured": { "type": "boolean" }, "connected": { "type": "boolean" },
                    "login": { "type": "string" },
                    "scopes": { "type": "array", "items": { "type": "string" } },
                    "connectedAt": { "type": "integer" },
                },
            }),
        ),
        (
            "GitHubRepository",
            json!({
                "type": "object",
                "required": ["owner", "name", "fullName", "url", "branch", "private", "lastCommitSha", "lastCommitUrl", "lastPushedAt", "linkedAt"],
                "properties": {
                    "owner": { "type": "string" }, "name": { "type": "string" },
                    "fullName": { "type": "string" }, "url": { "type": "string" },
                    "branch": { "type": "string" }, "private": { "type": "boolean" },
                    "lastCommitSha": { "type": ["string", "null"] },
                    "lastCommitUrl": { "type": ["string", "null"] },
                    "lastPushedAt": { "type": ["integer", "null"] },
                    "linkedAt": { "type": "integer" },
                },
            }),
        ),
        (
            "AppGitHub",
            json!({
                "type": "object", "required": ["repository"],
                "properties": { "repository": { "oneOf": [schema_ref("GitHubRepository"), { "type": "null" }] } },
            }),
        ),
        (
            "NewGitHubRepo",
            json!({
                "type": "object", "additionalProperties": false,
                "properties": {
                    "name": { "type": ["string", "null"], "maxLength": 100, "pattern": "^[A-Za-z0-9._-]*$" },
                    "description": { "type": ["string", "null"], "maxLength": 350 },
                    "private": { "type": ["boolean", "null"] },
                },
            }),
        ),
        (
            "GitHubPushResult",
            json!({
                "type": "object", "required": ["repository", "push"],
                "properties": {
                    "repository": schema_ref("GitHubRepository"),
                    "push": {
                        "type": "object", "required": ["commitSha", "committed", "written", "deleted"],
                        "properties": {
                            "commitSha": { "type": "string" }, "committed": { "type": "boolean" },
                            "written": { "type": "array", "items": { "type": "string" } },
                            "deleted": { "type": "array", "items": { "type": "string" } },
                        },
                    },
                },
            }),
        ),
        (
            "VersionList",
            json!({
                "type": "object", "required": ["versions"],
                "properties": { "versions": { "type": "array", "items": schema_ref("VersionSummary") } },
            }),
        ),
    ];
    m.extend(rest.into_iter().map(|(k, v)| (k.to_string(), v)));
    m
}

/// The whole document.
pub fn document(version: &str) -> Value {
    let mut paths = Map::new();
    for entry in TABLE {
        let (path, _) = openapi_path(entry.pattern);
        let item = paths.entry(path).or_insert_with(|| json!({}));
        item[method_key(entry.method)] = operation(entry);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Byte Platform API",
            "version": version,
            "description": "Errors share one envelope (`Error`, codes E000–E007). Authenticate with `Authorization: Bearer <token>`, or with the session cookie plus the `X-CSRF-Token` header on writes.",
        },
        "tags": [
            { "name": "platform", "description": "Health and this document" },
            { "name": "auth", "description": "Accounts and sessions" },
            { "name": "apps", "description": "Apps" },
            { "name": "admin", "description": "Operator views (admin role)" },
            { "name": "sandbox", "description": "Templates, sandboxes and their workspaces" },
            { "name": "ai", "description": "Model settings, keys and usage" },
            { "name": "agent", "description": "The code-generation agent" },
            { "name": "github", "description": "GitHub export: connection, repositories, pushes" },
            { "name": "orchestrator", "description": "Projects of planned tickets, their lifecycles and plan" },
        ],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "The `token` of a sign-in response." },
                "session": { "type": "apiKey", "in": "cookie", "name": web::SESSION_COOKIE,
                    "description": "The session cookie sign-in sets (HttpOnly)." },
                "csrf": { "type": "apiKey", "in": "header", "name": web::CSRF_HEADER,
                    "description": "The session's CSRF token (`csrfToken`, or the CSRF cookie): required with the session cookie on every write." },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn doc() -> Value {
        document("test")
    }

    fn operations(d: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in d["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
        out
    }

    #[test]
    fn every_row_has_one_operation_and_every_operation_a_row() {
        let d = doc();
        let documented: BTreeSet<(String, String)> =
            operations(&d).into_iter().map(|(m, p, _)| (m, p)).collect();
        let rows: BTreeSet<(String, String)> = TABLE
            .iter()
            .map(|e| (e.method.as_str().to_string(), openapi_path(e.pattern).0))
            .collect();
        assert_eq!(rows.len(), TABLE.len(), "two rows share a path and method");
        assert_eq!(documented, rows);
    }

    #[test]
    fn operations_are_complete_and_ids_unique() {
        let d = doc();
        let mut ids = BTreeSet::new();
        for (m, p, op) in operations(&d) {
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(
                ids.insert(id.clone()),
                "{m} {p}: duplicate operationId {id}"
            );
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{m} {p}"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses
                    .keys()
                    .any(|s| s.starts_with('1') || s.starts_with('2') || s.starts_with('3')),
                "{m} {p}: no success response"
            );
            for (status, r) in responses {
                assert!(
                    r["description"].as_str().is_some_and(|s| !s.is_empty()),
                    "{m} {p} {status}"
                );
                let code: u16 = status.parse().unwrap();
                let schema = &r["content"]["application/json"]["schema"];
                // Error answers use the shared envelope (health's 503 is its report).
                if code >= 400 && !(id == "health" && code == 503) {
                    assert_eq!(schema, &schema_ref(ERROR), "{m} {p} {status}");
                }
                if code < 300 && code != 204 && code != 101 {
                    assert!(
                        r["content"].as_object().is_some_and(|c| !c.is_empty()),
                        "{m} {p} {status}: no body schema"
                    );
                }
            }
            // Path parameters are declared exactly as the path names them.
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|x| x["in"] == "path")
                        .map(|x| x["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let named: BTreeSet<&str> = p
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(declared, named, "{m} {p}");
            if op.get("requestBody").is_some() {
                assert!(
                    responses.contains_key("400") && responses.contains_key("413"),
                    "{m} {p}"
                );
            }
        }
    }

    #[test]
    fn responses_follow_the_rows_auth_and_rate_class() {
        for e in TABLE {
            let op = operation(e);
            let r = &op["responses"];
            assert!(r.get("401").is_some(), "{e:?}");
            assert_eq!(r.get("429").is_some(), e.class.is_some(), "{e:?}");
            if e.auth == AuthLevel::Admin {
                assert!(r.get("403").is_some(), "{e:?}");
            }
            let security = op["security"].as_array().unwrap();
            assert_eq!(
                security.contains(&json!({})),
                e.auth == AuthLevel::Public,
                "{e:?}"
            );
            if e.auth != AuthLevel::Public && e.method != Method::Get {
                assert!(
                    security.contains(&json!({ "session": [], "csrf": [] })),
                    "{e:?}"
                );
            }
        }
    }

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let d = doc();
        let mut all = Vec::new();
        refs(&d, &mut all);
        assert!(all.len() > 40);
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r}"));
            assert!(
                d["components"]["schemas"].get(name).is_some(),
                "{r} does not resolve"
            );
        }
    }

    #[test]
    fn error_schema_is_the_envelope_errors_serialize_to() {
        use super::super::error::ApiError;
        let d = doc();
        let e = &d["components"]["schemas"][ERROR];
        assert_eq!(e["required"], json!(["error"]));
        assert_eq!(
            e["properties"]["error"]["required"],
            json!(["code", "message"])
        );
        let codes = &d["components"]["schemas"]["ErrorCode"]["enum"];
        let mut one = ApiError::field("title", "too long");
        one.code = ErrorCode::E007;
        let body: Value = serde_json::from_str(&one.to_json()).unwrap();
        assert!(
            codes.as_array().unwrap().contains(&body["error"]["code"]),
            "{codes}"
        );
        assert_eq!(codes.as_array().unwrap().len(), 8);
    }

    #[test]
    fn derived_schemas_name_the_serialized_fields() {
        let d = doc();
        let s = &d["components"]["schemas"];
        let detail = serde_json::to_string(s).unwrap();
        for f in [
            "isOwner",
            "containerState",
            "isDeployed",
            "deployUrl",
            "updatedAtMs",
            "createdAt",
        ] {
            assert!(detail.contains(&format!("\"{f}\"")), "{f} missing");
        }
        assert_eq!(s["Visibility"]["enum"], json!(["public", "private"]));
        assert_eq!(d["openapi"], "3.1.0");
        for scheme in ["bearer", "session", "csrf"] {
            assert!(d["components"]["securitySchemes"].get(scheme).is_some());
        }
    }

    /// The agent's events and commands as they serialize validate against the document's
    /// (derived) schemas, and the document lists every event type: the web app's event types are
    /// generated from these.
    #[test]
    fn agent_events_and_commands_match_their_schemas() {
        use super::super::codegen::events::parse_command;
        use super::super::codegen::models::Provider;
        let d = doc();
        let valid = |name: &str, v: &Value| {
            let root = json!({ "components": d["components"], "$ref": format!("#/components/schemas/{name}") });
            let validator = jsonschema::validator_for(&root).unwrap();
            let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{name}: {errors:?} in {v}");
        };
        let snapshot = StateSnapshot {
            app_id: "app_1".into(),
            status: RunStatus::Generating,
            title: Some("T".into()),
            phases: vec![PhaseSummary {
                name: "UI".into(),
                kind: PhaseKind::Core,
                status: PhaseStatus::Correcting { round: 1 },
                planned_files: vec!["src/App.tsx".into()],
                written_files: vec![],
            }],
            current_phase: Some("UI".into()),
            files: vec![FileSummary {
                path: "src/App.tsx".into(),
                bytes: 3,
            }],
            preview_url: None,
            editing: None,
            queued_messages: 0,
            version: 1,
            usage: vec![ModelUsage {
                provider: Provider::Custom,
                model: "m".into(),
                calls: 1,
                prompt_tokens: 1,
                completion_tokens: 1,
                total_tokens: 2,
            }],
            last_event_id: 7,
        };
        let events = [
            AgentEvent::PhaseStart {
                phase: "planning".into(),
                message: "m".into(),
            },
            AgentEvent::PhasePlanned {
                phase: "UI".into(),
                files: vec!["a".into()],
            },
            AgentEvent::FileChunk {
                path: "a".into(),
                chunk: "x".into(),
            },
            AgentEvent::FileGenerated {
                path: "a".into(),
                content: "x".into(),
            },
            AgentEvent::FileDeleted { path: "a".into() },
            AgentEvent::PhaseComplete {
                phase: "UI".into(),
                message: "m".into(),
            },
            AgentEvent::Error {
                code: ErrorCode::E005,
                message: "m".into(),
                recoverable: true,
            },
            AgentEvent::PreviewReady {
                url: "http://p".into(),
            },
            AgentEvent::Done {
                status: RunOutcome::Completed,
            },
            AgentEvent::State(snapshot),
            AgentEvent::Usage(CallUsage {
                operation: Operation::Implementation,
                provider: Provider::OpenAi,
                model: "gpt-5".into(),
                prompt_tokens: 1,
                completion_tokens: 2,
                total_tokens: 3,
            }),
            AgentEvent::DeployStarted { deployment: 1 },
            AgentEvent::DeployProgress {
                deployment: 1,
                step: DeployStep::Building,
            },
            AgentEvent::DeployComplete {
                deployment: 1,
                url: "https://a".into(),
            },
            AgentEvent::DeployFailed {
                deployment: 1,
                code: ErrorCode::E007,
                message: "m".into(),
                errors: vec![byte_protocol::Diagnostic {
                    file: Some("a.ts".into()),
                    line: Some(1),
                    column: None,
                    message: "m".into(),
                    kind: "build".into(),
                }],
            },
        ];
        let mut types = BTreeSet::new();
        for e in &events {
            let v: Value = serde_json::from_str(&e.to_json()).unwrap();
            valid("AgentEvent", &v);
            types.insert(e.sse_name().to_string());
            let mut stored = v.clone();
            stored["id"] = json!(3);
            valid("StoredEvent", &stored);
        }
        let documented: BTreeSet<String> = d["components"]["schemas"]["AgentEvent"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                // A struct variant names its type; a newtype variant's is its allOf's second part.
                let tagged = v["allOf"].get(1).unwrap_or(v);
                tagged["properties"]["type"]["enum"][0]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(documented, types, "a sample of every event");
        for c in [
            r#"{"type":"generate","prompt":"p","config":{"model":"m"}}"#,
            r#"{"type":"stop"}"#,
            r#"{"type":"resume"}"#,
            r#"{"type":"message","text":"t"}"#,
            r#"{"type":"preview"}"#,
        ] {
            let v = serde_json::to_value(parse_command(c).unwrap()).unwrap();
            valid("ClientCommand", &v);
        }
        // And the check bites: an event missing a field, or of no known type, fails.
        let root =
            json!({ "components": d["components"], "$ref": "#/components/schemas/AgentEvent" });
        assert!(!jsonschema::is_valid(
            &root,
            &json!({ "type": "file_chunk", "path": "a" })
        ));
        assert!(!jsonschema::is_valid(&root, &json!({ "type": "bogus" })));
    }

    /// The described workspace bodies are the agent's own types as they serialize: a sample of
    /// each goes through its `byte_protocol` type and must then match its schema.
    #[test]
    fn workspace_schemas_match_the_agents_types() {
        fn through<T: serde::de::DeserializeOwned + serde::Serialize>(v: Value) -> Value {
            serde_json::to_value(serde_json::from_value::<T>(v).unwrap()).unwrap()
        }
        let d = doc();
        let check = |name: &str, v: Value| {
            let root = json!({ "components": d["components"], "$ref": format!("#/components/schemas/{name}") });
            let validator = jsonschema::validator_for(&root).unwrap();
            let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{name}: {errors:?} in {v}");
        };
        use byte_protocol as p;
        check(
            "WriteFiles",
            through::<p::WriteFiles>(
                json!({ "files": [{ "path": "a.txt", "content": "eA==", "encoding": "base64" }] }),
            ),
        );
        check(
            "Written",
            through::<p::Written>(json!({ "written": ["a.txt"] })),
        );
        check(
            "FileContent",
            through::<p::FileContent>(
                json!({ "path": "a", "content": "x", "encoding": "utf8", "size": 1 }),
            ),
        );
        check(
            "Tree",
            through::<p::Tree>(
                json!({ "files": [{ "path": "a", "size": 1 }], "truncated": false }),
            ),
        );
        check(
            "ExecRequest",
            through::<p::ExecRequest>(
                json!({ "command": "id", "timeoutMs": 5, "env": { "A": "b" } }),
            ),
        );
        check(
            "ExecReply",
            through::<p::ExecReply>(
                json!({ "exitCode": null, "stdout": "", "stderr": "e", "stdoutTruncated": false, "stderrTruncated": true, "timedOut": true, "durationMs": 9 }),
            ),
        );
        check(
            "LogsReply",
            through::<p::LogsReply>(
                json!({ "lines": [{ "seq": 1, "ts": 2, "stream": "system", "source": "server", "line": "ready" }], "nextSeq": 2 }),
            ),
        );
        check(
            "ErrorsReply",
            through::<p::ErrorsReply>(
                json!({ "errors": [{ "file": "src/a.ts", "line": 1, "column": null, "message": "m", "kind": "typescript" }] }),
            ),
        );
        // And the check bites: a reply missing a field fails.
        let bad =
            json!({ "components": d["components"], "$ref": "#/components/schemas/ExecReply" });
        assert!(!jsonschema::is_valid(&bad, &json!({ "stdout": "" })));
    }
}
