// The orchestrator's objects as the API sends them (aliases of the generated OpenAPI types, see
// api/types.ts), their vocabularies in display order, and the hub's messages, which the OpenAPI
// document does not describe: they mirror src/domain/orchestrator/protocol.rs.

import type { ProjectStatus, TicketStatus } from "../api/types";

export type {
  AnalysisResult, Dependency, DependencyType, Generation, NewProject, Plan, Priority, Project, ProjectAction, ProjectDetail,
  ProjectSource, ProjectStatus, Ticket, TicketPatch, TicketStatus, TicketType,
} from "../api/types";

export const PROJECT_STATUSES = ["analyzing", "review", "approved", "in_progress", "completed", "archived"] as const satisfies readonly ProjectStatus[];
/** The board's columns, left to right: the ticket lifecycle's order. */
export const TICKET_STATUSES = ["pending", "ready", "assigned", "in_progress", "review", "blocked", "completed", "cancelled"] as const satisfies readonly TicketStatus[];

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
