// The orchestrator's objects as the API sends them (see the wire contract: src/domain/orchestrator
// and the routes under /api/orchestrator), and their vocabularies in display order. The hub's
// messages are the ones src/domain/orchestrator/protocol.rs defines.

export const PROJECT_STATUSES = ["analyzing", "review", "approved", "in_progress", "completed", "archived"] as const;
export type ProjectStatus = (typeof PROJECT_STATUSES)[number];
/** The board's columns, left to right: the ticket lifecycle's order. */
export const TICKET_STATUSES = ["pending", "ready", "assigned", "in_progress", "review", "blocked", "completed", "cancelled"] as const;
export type TicketStatus = (typeof TICKET_STATUSES)[number];
export type TicketType = "feature" | "enhancement" | "bug" | "refactor" | "test" | "documentation" | "setup";
export const PRIORITIES = ["critical", "high", "medium", "low"] as const;
export type Priority = (typeof PRIORITIES)[number];
export type DependencyType = "blocks" | "related" | "file_conflict";
export type ProjectSource = "app" | "github" | "new";

export interface AnalysisResult {
  summary: string;
  stack: string[];
  dependencies: { name: string; version: string }[];
  components: string[];
  routes: string[];
  apiEndpoints: string[];
  fileCount: number;
}

export interface Generation {
  state: "idle" | "running" | "failed";
  step: string | null;
  error: { code: string; message: string } | null;
}

export interface Project {
  id: string;
  appId: string | null;
  title: string;
  description: string | null;
  source: ProjectSource;
  status: ProjectStatus;
  githubRepoUrl: string | null;
  githubRepoName: string | null;
  githubDefaultBranch: string;
  stakeholderUserId: string;
  analysisResult: AnalysisResult | null;
  generation: Generation;
  totalTickets: number;
  completedTickets: number;
  createdAt: number;
  updatedAt: number;
  analyzedAt: number | null;
  approvedAt: number | null;
  completedAt: number | null;
}

export interface Ticket {
  id: string;
  projectId: string;
  number: number;
  title: string;
  description: string;
  type: TicketType;
  priority: Priority;
  status: TicketStatus;
  orderIndex: number;
  category: string | null;
  tags: string[];
  branchName: string | null;
  prUrl: string | null;
  commitCount: number;
  estimatedHours: number | null;
  actualHours: number | null;
  affectedFiles: string[];
  acceptanceCriteria: string[];
  assigneeUserId: string | null;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  completedAt: number | null;
  allowedTransitions: TicketStatus[];
}

export interface Dependency {
  ticketId: string;
  dependsOnTicketId: string;
  type: DependencyType;
}

export interface Plan {
  order: string[];
  levels: string[][];
  criticalPath: { ticketIds: string[]; hours: number };
  ready: string[];
  cycle: string[] | null;
}

export type ProjectDetail = Project & { tickets: Ticket[]; dependencies: Dependency[]; plan: Plan };

export interface NewProject {
  source: ProjectSource;
  appId?: string;
  githubUrl?: string;
  title?: string;
  description?: string;
}

export type ProjectAction = "approve" | "regenerate" | "archive";

/** The fields of a ticket a PATCH may change. */
export type TicketPatch = Partial<Pick<Ticket,
  "status" | "title" | "description" | "priority" | "type" | "estimatedHours" | "actualHours" | "branchName" |
  "acceptanceCriteria" | "affectedFiles" | "tags" | "category">>;

export interface FieldChange { field: string; oldValue: unknown; newValue: unknown }

/** What the hub sends (protocol.rs `HubMessage`). */
export type HubMessage =
  | { type: "auth_success"; userId: string; connectionId: string; subscriptions: string[] }
  | { type: "subscribed"; projectId: string }
  | { type: "unsubscribed"; projectId: string }
  | { type: "ticket_updated"; projectId: string; ticketId: string; changes: FieldChange[] }
  | { type: "ticket_status_changed"; projectId: string; ticketId: string; oldStatus: TicketStatus; newStatus: TicketStatus }
  | { type: "tickets_generated"; projectId: string; totalTickets: number }
  | { type: "analysis_progress"; projectId: string; step: string; message: string }
  | { type: "generation_failed"; projectId: string; code: string; message: string }
  | { type: "project_status_changed"; projectId: string; oldStatus: ProjectStatus; newStatus: ProjectStatus }
  | { type: "project_updated"; projectId: string; changes: FieldChange[] }
  | { type: "heartbeat"; timestamp: string }
  | { type: "pong"; timestamp: string }
  | { type: "error"; error: string; message: string; recoverable: boolean };

/** The messages about one project (those the page state applies). */
export type ProjectEvent = Extract<HubMessage, { projectId: string }> & { type: Exclude<HubMessage["type"], "subscribed" | "unsubscribed"> };

/** What a client sends (protocol.rs `ClientMessage`). */
export type ClientMessage =
  | { type: "authenticate"; token: string; clientType: "web"; projectId?: string }
  | { type: "subscribe"; projectId: string }
  | { type: "unsubscribe"; projectId: string }
  | { type: "pong"; timestamp?: string }
  | { type: "ping"; timestamp?: string };

const HUB_TYPES = new Set<HubMessage["type"]>([
  "auth_success", "subscribed", "unsubscribed", "ticket_updated", "ticket_status_changed", "tickets_generated",
  "analysis_progress", "generation_failed", "project_status_changed", "project_updated", "heartbeat", "pong", "error",
]);

/** A hub message from a frame's text, or null for anything else (not JSON, unknown type). */
export function parseHubMessage(text: string): HubMessage | null {
  let v: unknown;
  try { v = JSON.parse(text); } catch { return null; }
  if (typeof v !== "object" || v === null) return null;
  const t = (v as { type?: unknown }).type;
  return typeof t === "string" && HUB_TYPES.has(t as HubMessage["type"]) ? (v as HubMessage) : null;
}

export const STATUS_LABEL: Record<TicketStatus | ProjectStatus, string> = {
  pending: "Pending", ready: "Ready", assigned: "Assigned", in_progress: "In progress", review: "Review",
  blocked: "Blocked", completed: "Completed", cancelled: "Cancelled", analyzing: "Analyzing", approved: "Approved",
  archived: "Archived",
};

export const label = (s: string) => (STATUS_LABEL as Record<string, string>)[s] ?? s.replace(/_/g, " ");
