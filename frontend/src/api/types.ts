// The API's shapes, named for the screens. Each is an alias into `schema.d.ts`, which is
// generated from the OpenAPI document the Worker serves (`GET /api/openapi.json`, built by
// src/domain/openapi.rs) by `scripts/api-types.sh` (`make build` regenerates it when the Rust
// sources change; `make test` fails when the committed file drifts). Never edit schema.d.ts by
// hand: change the Rust side. Screens import from this file only.
import type { components, operations } from "./schema";

type Schemas = components["schemas"];

export type ErrorCode = Schemas["ErrorCode"];
export type ErrorBody = Schemas["Error"];
export type User = Schemas["User"];
export type AuthResponse = Schemas["Session"];
export type MeResponse = Schemas["Me"];
export type Providers = Schemas["Providers"];
export type Visibility = Schemas["Visibility"];
export type AppSummary = Schemas["AppSummary"];
export type AppDetail = Schemas["AppDetail"];
export type AppList = Schemas["AppList"];
export type NewApp = Schemas["NewApp"];
export type AppPatch = Schemas["AppPatch"];
export type Template = Schemas["Template"];

/** The list screens' query (search, sort, visibility filter, page), as `GET /api/apps` takes it. */
export type ListQuery = NonNullable<operations["listApps"]["parameters"]["query"]>;
export type Sort = NonNullable<ListQuery["sort"]>;
export type VisibilityFilter = NonNullable<ListQuery["visibility"]>;

export type ProviderKey = Schemas["KeyList"]["keys"][number];
export type KeyHint = Schemas["KeyHint"];
export type ProviderName = Schemas["KeyHint"]["provider"];
/** A model with its settings, as resolved for an operation. */
export type ModelConfig = Schemas["ModelConfig"];
export type ModelOverride = Schemas["ModelOverride"];
/** One operation's models: in use, fallback, the caller's override, the deployment's default. */
export type OperationModels = Schemas["ModelChoice"];
export type ModelsResponse = Schemas["Models"];
export type ProviderChoice = ModelsResponse["providers"][number];
export type UsageResponse = Schemas["Usage"];
export type UsageRow = UsageResponse["operations"][number];

export type SandboxError = Schemas["Diagnostic"];
export type VersionSummary = Schemas["VersionSummary"];
export type VersionList = Schemas["VersionList"];
export type AgentStateResponse = Schemas["AgentState"];
export type UserList = Schemas["UserList"];
export type Diagnostic = Schemas["Diagnostic"];
export type DeployStatus = Schemas["DeployStatus"];
export type DeployStep = Schemas["DeployStep"];
/** Why a deployment failed: the reason in words and the build's structured errors. */
export interface DeployFailure { message: string; errors: Diagnostic[] }
/** A deployment as `GET /api/apps/:id/deployments` shows it (its `error` typed). */
export type Deployment = Omit<Schemas["Deployment"], "error"> & { error: DeployFailure | null };
/** An app's model usage per operation, all time (`GET /api/apps/:id/usage`). */
export type AppUsageResponse = Schemas["AppUsage"];
export type AppUsageRow = AppUsageResponse["operations"][number];
/** GitHub export: the caller's connection, an app's repository, a push's result. */
export type GitHubConnection = Schemas["GitHubConnection"];
export type GitHubRepository = Schemas["GitHubRepository"];
export type AppGitHub = Schemas["AppGitHub"];
export type NewGitHubRepo = Schemas["NewGitHubRepo"];
export type GitHubPushResult = Schemas["GitHubPushResult"];

/** The orchestrator (`/api/orchestrator/*`). */
export type ProjectStatus = Schemas["ProjectStatus"];
export type TicketStatus = Schemas["TicketStatus"];
export type TicketType = Schemas["TicketType"];
export type Priority = Schemas["Priority"];
export type DependencyType = Schemas["DependencyType"];
export type ProjectSource = Schemas["ProjectSource"];
export type ProjectAction = Schemas["ProjectAction"];
export type AnalysisResult = Schemas["AnalysisResult"];
export type Generation = Schemas["Generation"];
export type Project = Schemas["Project"];
export type ProjectDetail = Schemas["ProjectDetail"];
export type Ticket = Schemas["Ticket"];
export type Dependency = Schemas["Dependency"];
export type Plan = Schemas["Plan"];
export type NewProject = Schemas["NewProject"];
export type TicketPatch = Schemas["TicketPatch"];
