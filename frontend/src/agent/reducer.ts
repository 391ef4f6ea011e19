// Turns the agent's events into what the workspace draws. Pure: (state, action) → state.
//
// Invariants:
// - a `state` snapshot is the truth about the run *now* (status, phases, file list, preview,
//   queue); stored events at or below its `lastEventId` are history (a reconnect's replay): they
//   fill in file contents, the timeline's messages and written files, errors and chat, but never
//   move a status backwards;
// - every stored event is applied once: ids at or below the highest applied are duplicates;
// - a live event whose id skips ahead waits in `pending` until the gap is filled (or a `flush`
//   gives up waiting), so out-of-order delivery never applies a later event first;
// - `file_chunk` (never stored, no id) only feeds the live view of the file being written;
// - the run's token count is the snapshot's per-model totals plus the `usage` events after it
//   (events at or below the snapshot are already in its totals); a new run starts from zero.
import type { AgentEvent, CallUsage, ModelUsage, PhaseKind, PhaseStatus, RunOutcome, RunStatus, StateSnapshot } from "./events";
import { initialDeploy, reduceDeploy, type DeployAction, type DeployView } from "./deploy";

export interface TimelineEntry {
  key: string;
  name: string;
  kind?: PhaseKind;
  status: PhaseStatus;
  round?: number;
  message: string;
  /** The files the phase's plan names (empty until known; edits have none). */
  planned: string[];
  written: string[];
}

export interface FileView {
  path: string;
  bytes: number;
  /** Known content (from `file_generated`), or undefined until fetched. */
  content?: string;
  /** The content before the agent's last change to it (an edit's diff shows against it). */
  previous?: string;
}

export interface ErrorView {
  id?: number;
  code: string;
  message: string;
  recoverable: boolean;
}

export interface ChatEntry {
  key: string;
  role: "user" | "agent";
  text: string;
}

export interface WorkspaceState {
  appId: string | null;
  connected: boolean;
  /** A snapshot has arrived on this page (the state below is the server's, not a guess). */
  synced: boolean;
  status: RunStatus;
  title?: string;
  timeline: TimelineEntry[];
  currentPhase?: string;
  files: Record<string, FileView>;
  /** The file being written right now, as streamed so far. */
  live: { path: string; text: string } | null;
  previewUrl?: string;
  editing?: string;
  queued: number;
  version: number;
  /** Highest stored event id applied (a reconnect asks for events after it). */
  lastEventId: number;
  /** `lastEventId` of the newest snapshot. */
  snapshotId: number;
  pending: AgentEvent[];
  errors: ErrorView[];
  chat: ChatEntry[];
  outcome?: RunOutcome;
  /** Why the run failed, in words. */
  failure?: string;
  /** The tokens each model used in this run so far. */
  usage: ModelUsage[];
  /** The app's deployments (history and live progress; agent/deploy.ts). */
  deploy: DeployView;
}

export type Action =
  | { type: "event"; event: AgentEvent }
  | { type: "connected"; connected: boolean }
  | { type: "flush" }
  | { type: "sent"; text: string }
  | { type: "file_loaded"; path: string; content: string }
  | { type: "file_saved"; path: string; content: string }
  | { type: "deploy"; action: DeployAction };

export function initialState(appId: string | null = null): WorkspaceState {
  return {
    appId, connected: false, synced: false, status: "idle", timeline: [], files: {}, live: null, queued: 0,
    version: 0, lastEventId: 0, snapshotId: 0, pending: [], errors: [], chat: [], usage: [], deploy: initialDeploy(),
  };
}

const ACTIVE: PhaseStatus[] = ["implementing", "validating", "correcting"];

export function isRunning(s: WorkspaceState): boolean {
  return s.status === "planning" || s.status === "generating";
}

export function reduce(s: WorkspaceState, a: Action): WorkspaceState {
  switch (a.type) {
    case "connected":
      return { ...s, connected: a.connected };
    case "sent":
      return { ...s, chat: [...s.chat, { key: `local-${s.chat.length}`, role: "user", text: a.text }] };
    case "file_loaded": {
      const f = s.files[a.path];
      if (!f || f.content !== undefined) return s;
      return { ...s, files: { ...s.files, [a.path]: { ...f, content: a.content } } };
    }
    case "file_saved":
      return { ...s, files: { ...s.files, [a.path]: { path: a.path, bytes: new TextEncoder().encode(a.content).length, content: a.content } } };
    case "flush":
      return drain({ ...s }, true);
    case "event":
      return receive(s, a.event);
    case "deploy":
      return { ...s, deploy: reduceDeploy(s.deploy, a.action) };
  }
}

function receive(s: WorkspaceState, e: AgentEvent): WorkspaceState {
  if (e.type === "state") return drain(snapshot(s, e), false);
  if (e.id === undefined) return apply(s, e, true);
  if (e.id <= s.lastEventId) return s; // duplicate
  const floor = Math.max(s.lastEventId, s.snapshotId);
  if (e.id > floor + 1) {
    // Ahead of what we have: wait for the gap to fill.
    if (s.pending.some((p) => p.id === e.id)) return s;
    return { ...s, pending: [...s.pending, e].sort((x, y) => (x.id ?? 0) - (y.id ?? 0)) };
  }
  return drain(applyStored(s, e), false);
}

function applyStored(s: WorkspaceState, e: AgentEvent): WorkspaceState {
  const live = e.id! > s.snapshotId;
  const next = apply(s, e, live);
  return { ...next, lastEventId: Math.max(next.lastEventId, e.id!) };
}

/** Applies pending events that are now next in line (all of them, in order, when `force`). */
function drain(s: WorkspaceState, force: boolean): WorkspaceState {
  let out = { ...s, pending: s.pending.filter((p) => (p.id ?? 0) > s.lastEventId) };
  for (;;) {
    const first = out.pending[0];
    if (!first) return out;
    const floor = Math.max(out.lastEventId, out.snapshotId);
    if (!force && (first.id ?? 0) > floor + 1) return out;
    out = applyStored({ ...out, pending: out.pending.slice(1) }, first);
  }
}

function snapshot(s: WorkspaceState, snap: StateSnapshot): WorkspaceState {
  if (snap.lastEventId < s.lastEventId) {
    // Older than what we applied: only what events never carry.
    return { ...s, queued: snap.queuedMessages, editing: snap.editing ?? undefined, previewUrl: snap.previewUrl ?? s.previewUrl };
  }
  const files: Record<string, FileView> = {};
  for (const f of snap.files) {
    const known = s.files[f.path];
    files[f.path] = { path: f.path, bytes: f.bytes, content: known && known.bytes === f.bytes ? known.content : undefined };
  }
  // Timeline: blueprint phases from the snapshot (its statuses win); planning and edit entries
  // known from events stay where they were.
  let timeline = s.timeline.slice();
  for (const p of snap.phases) {
    const i = timeline.findIndex((t) => t.name === p.name && t.kind !== undefined);
    const i2 = i >= 0 ? i : timeline.findIndex((t) => t.name === p.name && t.name !== "edit" && t.name !== "planning");
    const known = i2 >= 0 ? timeline[i2]! : { key: `phase-${p.name}`, message: "", planned: [], written: [] };
    const entry: TimelineEntry = {
      ...known,
      name: p.name, kind: p.kind, status: p.status, round: p.status === "correcting" ? p.round : undefined,
      planned: p.plannedFiles ?? known.planned,
      written: p.writtenFiles ?? known.written,
    };
    if (i2 >= 0) timeline[i2] = entry; else timeline.push(entry);
  }
  if (snap.status !== "planning") {
    timeline = timeline.map((t) => (t.name === "planning" && ACTIVE.includes(t.status) ? { ...t, status: snap.phases.length ? "complete" : t.status } : t));
  }
  const stillLive = snap.status === "planning" || snap.status === "generating" ? s.live : null;
  return {
    ...s,
    appId: snap.appId,
    synced: true,
    status: snap.status,
    title: snap.title ?? s.title,
    timeline,
    currentPhase: snap.currentPhase ?? undefined,
    files,
    live: stillLive,
    previewUrl: snap.previewUrl ?? s.previewUrl,
    editing: snap.editing ?? undefined,
    queued: snap.queuedMessages,
    version: snap.version ?? s.version,
    usage: snap.usage ?? s.usage,
    snapshotId: snap.lastEventId,
    lastEventId: s.lastEventId,
    outcome: snap.status === "complete" ? "completed" : snap.status === "stopped" ? "stopped" : snap.status === "failed" ? "failed" : undefined,
  };
}

/** Applies one event; `live` says whether it may move statuses (it is newer than the snapshot). */
function apply(s: WorkspaceState, e: AgentEvent, live: boolean): WorkspaceState {
  switch (e.type) {
    case "phase_start": {
      const timeline = s.timeline.slice();
      const i = findEntry(timeline, e.phase);
      const open = i >= 0 && timeline[i]!.status !== "complete" && timeline[i]!.status !== "failed";
      // A phase (or planning) started again is the same entry; each follow-up is a new one.
      const reuse = i >= 0 && (e.phase !== "edit" || open);
      // A replayed start happened before the snapshot: its entry's status is the snapshot's, or
      // finished unless the snapshot says this is the work in progress.
      const current = e.phase === "planning" ? s.status === "planning" : e.phase === "edit" ? s.editing === e.message : s.currentPhase === e.phase;
      const replayed: PhaseStatus = current ? "implementing" : "complete";
      if (reuse) {
        const t = timeline[i]!;
        timeline[i] = { ...t, message: t.message || e.message, status: live ? "implementing" : t.kind ? t.status : replayed };
      } else {
        const entry: TimelineEntry = { key: `${e.phase}-${e.id ?? timeline.length}`, name: e.phase, status: live ? "implementing" : replayed, message: e.message, planned: [], written: [] };
        // Planning comes before every phase, even when the snapshot listed the phases first.
        if (e.phase === "planning") timeline.unshift(entry); else timeline.push(entry);
      }
      const chat = e.phase === "edit" && !e.message.startsWith("Resuming") ? addChat(s.chat, `edit-${e.id ?? s.chat.length}`, "user", e.message) : s.chat;
      if (!live) return { ...s, timeline, chat };
      return {
        ...s, timeline, chat, currentPhase: e.phase, outcome: undefined, failure: undefined,
        // Planning starts a new run, whose token count starts from zero.
        usage: e.phase === "planning" ? [] : s.usage,
        status: e.phase === "planning" ? "planning" : "generating",
        editing: e.phase === "edit" ? e.message : s.editing,
      };
    }
    case "phase_complete": {
      const timeline = s.timeline.slice();
      const i = findEntry(timeline, e.phase);
      if (i >= 0 && live) timeline[i] = { ...timeline[i]!, status: "complete" };
      // Every completed phase or edit is saved as a version (the next snapshot confirms the number).
      const version = live && e.phase !== "planning" ? s.version + 1 : s.version;
      return { ...s, timeline, version, currentPhase: live && s.currentPhase === e.phase ? undefined : s.currentPhase, editing: live && e.phase === "edit" ? undefined : s.editing };
    }
    case "phase_planned": {
      const timeline = s.timeline.slice();
      const i = findEntry(timeline, e.phase);
      if (i >= 0) timeline[i] = { ...timeline[i]!, planned: e.files };
      else timeline.push({ key: `phase-${e.phase}`, name: e.phase, status: live ? "implementing" : "complete", message: "", planned: e.files, written: [] });
      return { ...s, timeline };
    }
    case "usage":
      // Replayed ones are in the snapshot's totals already.
      return live ? { ...s, usage: addUsage(s.usage, e) } : s;
    case "file_chunk": {
      const text = s.live && s.live.path === e.path ? s.live.text + e.chunk : e.chunk;
      return { ...s, live: { path: e.path, text } };
    }
    case "file_generated": {
      const before = s.files[e.path]?.content;
      const previous = before !== undefined && before !== e.content ? before : s.files[e.path]?.previous;
      const files = { ...s.files, [e.path]: { path: e.path, bytes: new TextEncoder().encode(e.content).length, content: e.content, previous } };
      const timeline = s.timeline.slice();
      const phase = live ? s.currentPhase : undefined;
      const i = phase ? findEntry(timeline, phase) : lastEntry(timeline);
      if (i >= 0 && !timeline[i]!.written.includes(e.path)) timeline[i] = { ...timeline[i]!, written: [...timeline[i]!.written, e.path] };
      return { ...s, files, timeline, live: s.live?.path === e.path ? null : s.live };
    }
    case "file_deleted": {
      const files = { ...s.files };
      delete files[e.path];
      return { ...s, files };
    }
    case "error": {
      if (e.id !== undefined && s.errors.some((x) => x.id === e.id)) return s;
      const errors = [...s.errors, { id: e.id, code: e.code, message: e.message, recoverable: e.recoverable }];
      return { ...s, errors, failure: e.recoverable ? s.failure : e.message };
    }
    case "preview_ready":
      return { ...s, previewUrl: e.url };
    case "done": {
      const text = e.status === "completed" ? "Done: the app is ready." : e.status === "stopped" ? "Stopped. Resume to continue." : `Failed${s.failure ? `: ${s.failure}` : "."}`;
      const chat = addChat(s.chat, `done-${e.id ?? s.chat.length}`, "agent", text);
      if (!live) return { ...s, chat };
      const timeline = s.timeline.map((t) => (ACTIVE.includes(t.status) ? { ...t, status: e.status === "failed" ? ("failed" as const) : e.status === "completed" ? ("complete" as const) : t.status } : t));
      const status: RunStatus = e.status === "completed" ? "complete" : e.status;
      return { ...s, chat, timeline, status, outcome: e.status, currentPhase: undefined, live: null, editing: undefined };
    }
    case "state":
      return snapshot(s, e);
    // A replayed deploy event is history, which the deployments list already has.
    case "deploy_started":
    case "deploy_progress":
    case "deploy_complete":
    case "deploy_failed":
      return live ? { ...s, deploy: reduceDeploy(s.deploy, { type: "event", event: e }) } : s;
  }
}

/** Adds one call to the per-model totals (the server's `add_usage`, mirrored). */
export function addUsage(totals: ModelUsage[], u: CallUsage): ModelUsage[] {
  const i = totals.findIndex((m) => m.provider === u.provider && m.model === u.model);
  if (i < 0) return [...totals, { provider: u.provider, model: u.model, calls: 1, promptTokens: u.promptTokens, completionTokens: u.completionTokens, totalTokens: u.totalTokens }];
  return totals.map((m, j) => (j === i ? {
    ...m, calls: m.calls + 1, promptTokens: m.promptTokens + u.promptTokens,
    completionTokens: m.completionTokens + u.completionTokens, totalTokens: m.totalTokens + u.totalTokens,
  } : m));
}

function findEntry(t: TimelineEntry[], name: string): number {
  for (let i = t.length - 1; i >= 0; i--) if (t[i]!.name === name) return i;
  return -1;
}

function lastEntry(t: TimelineEntry[]): number {
  return t.length - 1;
}

function addChat(chat: ChatEntry[], key: string, role: ChatEntry["role"], text: string): ChatEntry[] {
  if (chat.some((c) => c.key === key)) return chat;
  // A message this client sent shows once, whether it came back as an edit or not.
  if (role === "user") {
    const i = chat.findIndex((c) => c.key.startsWith("local-") && c.text === text);
    if (i >= 0) return chat.map((c, j) => (j === i ? { ...c, key } : c));
  }
  return [...chat, { key, role, text }];
}

/** How far a phase is: the planned files written so far (a finished phase is whole). */
export function phaseProgress(t: TimelineEntry): { done: number; planned: number; extra: number; percent: number } {
  const done = t.planned.filter((p) => t.written.includes(p)).length;
  const extra = t.written.filter((p) => !t.planned.includes(p)).length;
  const finished = t.status === "complete";
  const percent = finished ? 100 : t.planned.length > 0 ? Math.round((done / t.planned.length) * 100) : 0;
  return { done, planned: t.planned.length, extra, percent };
}

/** The files as a sorted list of paths. */
export function filePaths(s: WorkspaceState): string[] {
  return Object.keys(s.files).sort();
}
