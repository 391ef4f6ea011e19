// The agent's events and commands, mirroring src/domain/codegen/events.rs (AgentEvent and
// ClientCommand, tagged by `type`). Stored events arrive with a numeric `id`.
// Seam: generate these from the Worker's schema once the OpenAPI document describes them.
import type { Diagnostic, DeployStep, ErrorCode } from "../api/types";

export type RunStatus = "idle" | "planning" | "generating" | "stopped" | "complete" | "failed";
export type RunOutcome = "completed" | "stopped" | "failed";
export type PhaseKind = "foundation" | "core" | "styling" | "integration" | "optimization";
export type PhaseStatus = "planned" | "implementing" | "validating" | "correcting" | "complete" | "failed";

export interface PhaseSummary {
  name: string;
  kind: PhaseKind;
  status: PhaseStatus;
  round?: number;
  corrections?: number;
}

export interface StateSnapshot {
  appId: string;
  status: RunStatus;
  title?: string;
  phases: PhaseSummary[];
  currentPhase?: string;
  files: { path: string; bytes: number }[];
  previewUrl?: string;
  editing?: string;
  queuedMessages: number;
  version: number;
  lastEventId: number;
}

export type AgentEvent = { id?: number } & (
  | { type: "phase_start"; phase: string; message: string }
  | { type: "phase_complete"; phase: string; message: string }
  | { type: "file_chunk"; path: string; chunk: string }
  | { type: "file_generated"; path: string; content: string }
  | { type: "file_deleted"; path: string }
  | { type: "error"; code: ErrorCode; message: string; recoverable: boolean }
  | { type: "preview_ready"; url: string }
  | { type: "done"; status: RunOutcome }
  | ({ type: "state" } & StateSnapshot)
  | DeployEvent
);

/** A deployment's progress (`deployment` is its number in the app's history). */
export type DeployEvent =
  | { type: "deploy_started"; deployment: number }
  | { type: "deploy_progress"; deployment: number; step: DeployStep }
  | { type: "deploy_complete"; deployment: number; url: string }
  | { type: "deploy_failed"; deployment: number; code: ErrorCode; message: string; errors: Diagnostic[] };

export type ClientCommand =
  | { type: "generate"; prompt?: string; config?: Record<string, unknown> }
  | { type: "message"; text: string }
  | { type: "stop" }
  | { type: "resume" }
  | { type: "preview" };

export const EVENT_TYPES = [
  "phase_start", "phase_complete", "file_chunk", "file_generated", "file_deleted", "error",
  "preview_ready", "done", "state",
  "deploy_started", "deploy_progress", "deploy_complete", "deploy_failed",
] as const;

export function parseEvent(text: string): AgentEvent | null {
  try {
    const v = JSON.parse(text) as { type?: unknown };
    return typeof v?.type === "string" && (EVENT_TYPES as readonly string[]).includes(v.type) ? (v as AgentEvent) : null;
  } catch {
    return null;
  }
}
