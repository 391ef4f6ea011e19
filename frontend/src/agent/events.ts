// The agent's events and commands: the enums the Worker serves (src/domain/codegen/events.rs
// `AgentEvent` and `ClientCommand`, tagged by `type`), through the generated schema (see
// api/types.ts). Stored events arrive with a numeric `id`.
import type { components } from "../api/schema";

type Schemas = components["schemas"];

export type RunStatus = Schemas["RunStatus"];
export type RunOutcome = Schemas["RunOutcome"];
export type PhaseKind = Schemas["PhaseKind"];
export type PhaseStatus = Schemas["PhaseStatus"]["status"];
export type PhaseSummary = Schemas["PhaseSummary"];
export type StateSnapshot = Schemas["StateSnapshot"];
export type ModelUsage = Schemas["ModelUsage"];
export type CallUsage = Schemas["CallUsage"];

export type AgentEvent = { id?: number } & Schemas["AgentEvent"];
export type ClientCommand = Schemas["ClientCommand"];
export type EventType = Schemas["AgentEvent"]["type"];

/** A deployment's progress (`deployment` is its number in the app's history). */
export type DeployEvent = Extract<AgentEvent, { type: "deploy_started" | "deploy_progress" | "deploy_complete" | "deploy_failed" }>;

/** Every event type the agent sends (the compiler checks the list against the schema both ways). */
export const EVENT_TYPES = [
  "phase_start", "phase_planned", "phase_complete", "file_chunk", "file_generated", "file_deleted", "error",
  "preview_ready", "done", "state", "usage", "deploy_started", "deploy_progress", "deploy_complete", "deploy_failed",
] as const satisfies readonly EventType[];
type Missing = Exclude<EventType, (typeof EVENT_TYPES)[number]>;
const complete: Missing extends never ? true : Missing = true;
void complete;

export function parseEvent(text: string): AgentEvent | null {
  try {
    const v = JSON.parse(text) as { type?: unknown };
    return typeof v?.type === "string" && (EVENT_TYPES as readonly string[]).includes(v.type) ? (v as AgentEvent) : null;
  } catch {
    return null;
  }
}
