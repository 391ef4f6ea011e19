// The API client: same-origin fetch with the session cookie, the CSRF header on every write
// (double-submit: the readable `byte_csrf` cookie, or the token the last auth response gave),
// and every failure turned into an ApiError whose message says what happened.
import { ApiError } from "./errors";
import type {
  AppDetail, AppGitHub, AppList, GitHubConnection, GitHubPushResult, NewGitHubRepo, AppUsageResponse, AppSummary, AuthResponse, Deployment, ErrorBody, ListQuery, MeResponse, ModelOverride, ModelsResponse,
  NewApp, OperationModels, Providers, ProviderKey, SandboxError, Template, UsageResponse, User, UserList,
  VersionSummary, Visibility,
} from "./types";
import type {
  NewProject, Project, ProjectAction, ProjectDetail, ProjectStatus, Ticket, TicketPatch, TicketStatus,
} from "../orchestrator/model";

export const CSRF_COOKIE = "byte_csrf";
export const CSRF_HEADER = "X-CSRF-Token";
/** Dispatched on `window` when the API answers 401: the session is gone. */
export const SIGNED_OUT_EVENT = "byte-signed-out";

let csrfFromServer: string | null = null;
export function setCsrf(token: string | null) { csrfFromServer = token; }

export function readCookie(name: string): string | null {
  if (typeof document === "undefined") return null;
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return null;
}

function csrf(): string | null { return readCookie(CSRF_COOKIE) ?? csrfFromServer; }

const WRITE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (WRITE.has(method)) { const t = csrf(); if (t) headers[CSRF_HEADER] = t; }
  let resp: Response;
  try {
    resp = await fetch(path, { method, headers, credentials: "include", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "");
  }
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  let data: unknown = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!resp.ok) {
    const e = (data as ErrorBody | null)?.error;
    const retry = Number(resp.headers.get("Retry-After")) || null;
    // A session that expired or was revoked elsewhere: every screen learns it at once.
    if (resp.status === 401 && !path.startsWith("/api/auth/")) window.dispatchEvent(new Event(SIGNED_OUT_EVENT));
    throw new ApiError(resp.status, e?.code ?? "E000", e?.message ?? `HTTP ${resp.status}`, e?.fields ?? {}, retry);
  }
  return data as T;
}

/** A GET whose answer is raw text (a file in a saved version). */
export async function getText(path: string): Promise<string> {
  let resp: Response;
  try { resp = await fetch(path, { credentials: "include" }); } catch { throw new ApiError(0, "network", ""); }
  const text = await resp.text();
  if (!resp.ok) {
    let e: ErrorBody["error"] | undefined;
    try { e = (JSON.parse(text) as ErrorBody).error; } catch { /* not JSON */ }
    throw new ApiError(resp.status, e?.code ?? "E000", e?.message ?? `HTTP ${resp.status}`, e?.fields ?? {});
  }
  return text;
}

const q = (params: Record<string, string | number | undefined>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") s.set(k, String(v));
  const str = s.toString();
  return str ? `?${str}` : "";
};
const enc = encodeURIComponent;

export const api = {
  providers: () => request<Providers>("GET", "/api/auth/providers"),
  register: (email: string, password: string, displayName?: string) =>
    request<AuthResponse>("POST", "/api/auth/register", { email, password, ...(displayName ? { displayName } : {}) }),
  login: (email: string, password: string) => request<AuthResponse>("POST", "/api/auth/login", { email, password }),
  logout: () => request<{ message: string }>("POST", "/api/auth/logout"),
  me: () => request<MeResponse>("GET", "/api/auth/me"),
  verifyEmail: (token: string) => request<{ message: string; user: User }>("POST", "/api/auth/verify", { token }),
  resendVerification: () => request<{ message: string; to: string }>("POST", "/api/auth/verify/resend"),
  deleteAccount: (password?: string) => request<void>("DELETE", "/api/auth/me", password ? { password } : undefined),
  oauthUrl: (provider: string, redirect = "/") => `/api/auth/oauth/${enc(provider)}?redirect=${enc(redirect)}`,

  apps: (query: ListQuery) => request<AppList>("GET", `/api/apps${q({ ...query })}`),
  publicApps: (query: ListQuery) => request<AppList>("GET", `/api/apps/public${q({ ...query })}`),
  app: (id: string) => request<AppDetail>("GET", `/api/apps/${enc(id)}`),
  createApp: (a: NewApp) => request<AppSummary>("POST", "/api/apps", a),
  updateApp: (id: string, patch: { title?: string; visibility?: Visibility; description?: string | null }) =>
    request<AppSummary>("PATCH", `/api/apps/${enc(id)}`, patch),
  deleteApp: (id: string) => request<void>("DELETE", `/api/apps/${enc(id)}`),

  templates: () => request<{ templates: Template[] } | Template[]>("GET", "/api/templates"),

  keys: () => request<{ keys: ProviderKey[] }>("GET", "/api/ai/keys"),
  putKey: (provider: string, apiKey: string) => request<{ provider: string; hint: string }>("PUT", `/api/ai/keys/${enc(provider)}`, { apiKey }),
  deleteKey: (provider: string) => request<void>("DELETE", `/api/ai/keys/${enc(provider)}`),
  models: () => request<ModelsResponse>("GET", "/api/ai/models"),
  setModel: (op: string, choice: ModelOverride) => request<OperationModels>("PATCH", `/api/ai/models/${enc(op)}`, choice),
  resetModel: (op: string) => request<OperationModels>("DELETE", `/api/ai/models/${enc(op)}`),
  adminUsers: (page: number, limit = 20) => request<UserList>("GET", `/api/admin/users${q({ page, limit })}`),
  usage: () => request<UsageResponse>("GET", "/api/ai/usage"),
  appUsage: (id: string) => request<AppUsageResponse>("GET", `/api/apps/${enc(id)}/usage`),

  agentState: (id: string, since = 0) => request<{ state: unknown; events: unknown[]; running: boolean }>("GET", `/api/agent/${enc(id)}/state?since=${since}`),
  versions: (id: string) => request<{ versions: VersionSummary[] }>("GET", `/api/agent/${enc(id)}/versions`),
  versionFile: (id: string, n: number, path: string) => getText(`/api/agent/${enc(id)}/versions/${n}/files/${path.split("/").map(enc).join("/")}`),
  readFile: (id: string, path: string) => request<{ path?: string; content: string }>("GET", `/api/apps/${enc(id)}/sandbox/files?path=${enc(path)}`),
  writeFiles: (id: string, files: { path: string; content: string }[]) => request<unknown>("POST", `/api/apps/${enc(id)}/sandbox/files`, { files }),
  sandboxErrors: (id: string) => request<{ errors: SandboxError[] }>("GET", `/api/apps/${enc(id)}/sandbox/errors`),

  deploy: (id: string) => request<Deployment>("POST", `/api/apps/${enc(id)}/deploy`),
  deployments: (id: string) => request<{ deployments: Deployment[] }>("GET", `/api/apps/${enc(id)}/deployments`),
  rollback: (id: string, n: number) => request<Deployment>("POST", `/api/apps/${enc(id)}/deployments/${n}/rollback`),
  undeploy: (id: string) => request<{ undeployed: boolean }>("DELETE", `/api/apps/${enc(id)}/deploy`),

  github: () => request<GitHubConnection>("GET", "/api/github"),
  githubConnectUrl: (redirect = "/settings") => `/api/github/connect?redirect=${enc(redirect)}`,
  githubDisconnect: () => request<void>("DELETE", "/api/github"),
  appGithub: (id: string) => request<AppGitHub>("GET", `/api/apps/${enc(id)}/github`),
  createAppRepo: (id: string, repo: NewGitHubRepo) => request<GitHubPushResult>("POST", `/api/apps/${enc(id)}/github`, repo),
  pushApp: (id: string) => request<GitHubPushResult>("POST", `/api/apps/${enc(id)}/github/push`),
  unlinkAppRepo: (id: string) => request<void>("DELETE", `/api/apps/${enc(id)}/github`),
  createProjectRepo: (projectId: string, repo: NewGitHubRepo = {}) =>
    request<{ repoUrl: string; repoName: string; defaultBranch: string }>("POST", `/api/orchestrator/projects/${enc(projectId)}/github/create-repo`, repo),
  createTicketBranch: (ticketId: string) =>
    request<{ branchName: string; created: boolean }>("POST", `/api/orchestrator/tickets/${enc(ticketId)}/github/create-branch`),
  createTicketPr: (ticketId: string, pr: { title?: string; body?: string } = {}) =>
    request<{ prUrl: string; number: number }>("POST", `/api/orchestrator/tickets/${enc(ticketId)}/github/create-pr`, pr),
  projects: (query: { status?: ProjectStatus; search?: string } = {}) =>
    request<{ projects: Project[] }>("GET", `/api/orchestrator/projects${q(query)}`),
  createProject: (p: NewProject) => request<{ project: Project; message: string }>("POST", "/api/orchestrator/projects", p),
  project: (id: string) => request<ProjectDetail>("GET", `/api/orchestrator/projects/${enc(id)}`),
  generateTickets: (id: string) => request<{ message: string; projectId: string }>("POST", `/api/orchestrator/projects/${enc(id)}/generate`),
  projectAction: (id: string, action: ProjectAction, guidance?: string) =>
    request<{ project: Project }>("PATCH", `/api/orchestrator/projects/${enc(id)}`, { action, ...(guidance ? { guidance } : {}) }),
  tickets: (query: { projectId?: string; status?: TicketStatus[]; assignedToMe?: boolean }) =>
    request<{ tickets: Ticket[] }>("GET", `/api/orchestrator/tickets${q({
      projectId: query.projectId, status: query.status?.join(","), assignedToMe: query.assignedToMe ? "true" : undefined,
    })}`),
  updateTicket: (id: string, patch: TicketPatch) => request<{ ticket: Ticket }>("PATCH", `/api/orchestrator/tickets/${enc(id)}`, patch),
  implementTicket: (id: string) =>
    request<{ ticket: Ticket; appId: string; message: string }>("POST", `/api/orchestrator/tickets/${enc(id)}/implement`),
  assignTicket: (id: string, userId?: string) =>
    request<{ ticket: Ticket }>("POST", `/api/orchestrator/tickets/${enc(id)}/assign`, userId ? { userId } : {}),
};
