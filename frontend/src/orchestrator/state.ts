// A project page's state: the project as last loaded, with the hub's events applied on top.
//
// Invariants: events of another project are ignored; an event is applied only to what it
// names (a ticket the page does not know, or data the event does not carry, such as a
// ticket's allowed transitions and the plan after a status change, asks for a reload by
// bumping `reload`, and a ticket whose status moved offers no move until then); a load that started before the last applied event asks for another load,
// so a snapshot read before a change can never be the last word.
import type { HubMessage, ProjectDetail, Ticket } from "./model";

export interface ProgressStep { step: string; message: string }

export interface ProjectState {
  projectId: string;
  detail: ProjectDetail | null;
  /** The generation's steps seen live, in order (cleared when a new generation starts). */
  progress: ProgressStep[];
  /** Bumped when the page should load the project again (the page watches it). */
  reload: number;
  /** Events applied so far; a load records the count it started at. */
  applied: number;
}

export type ProjectAction =
  | { type: "loaded"; detail: ProjectDetail; startedAt: number }
  | { type: "event"; event: HubMessage }
  | { type: "ticket_saved"; ticket: Ticket }
  | { type: "project_saved"; project: Partial<ProjectDetail> }
  | { type: "generation_started" }
  | { type: "reload" };

export function initialProjectState(projectId: string): ProjectState {
  return { projectId, detail: null, progress: [], reload: 0, applied: 0 };
}

const again = (s: ProjectState): ProjectState => ({ ...s, reload: s.reload + 1 });

function withTicket(d: ProjectDetail, id: string, f: (t: Ticket) => Ticket): ProjectDetail | null {
  const i = d.tickets.findIndex((t) => t.id === id);
  if (i < 0) return null;
  const tickets = d.tickets.slice();
  tickets[i] = f(tickets[i]!);
  return { ...d, tickets };
}

export function reduceProject(s: ProjectState, a: ProjectAction): ProjectState {
  switch (a.type) {
    case "loaded": {
      if (a.detail.id !== s.projectId) return s;
      const next = { ...s, detail: a.detail };
      if (a.detail.generation.state !== "running" && s.detail?.generation.state === "running") next.progress = [];
      return a.startedAt < s.applied ? again(next) : next;
    }
    case "reload":
      return again(s);
    case "generation_started":
      return generationStarted(s);
    case "ticket_saved": {
      if (!s.detail || a.ticket.projectId !== s.projectId) return s;
      const d = withTicket(s.detail, a.ticket.id, () => a.ticket);
      // A status change moves the plan (ready tickets, counts): read it again.
      const before = s.detail.tickets.find((t) => t.id === a.ticket.id);
      const next = { ...s, detail: d ?? s.detail };
      return !d || before?.status !== a.ticket.status ? again(next) : next;
    }
    case "project_saved":
      return s.detail ? { ...s, detail: { ...s.detail, ...a.project } } : s;
    case "event":
      return applyEvent(s, a.event);
  }
}

function applyEvent(s0: ProjectState, e: HubMessage): ProjectState {
  if (!("projectId" in e) || e.projectId !== s0.projectId || e.type === "subscribed" || e.type === "unsubscribed") return s0;
  const s = { ...s0, applied: s0.applied + 1 };
  const d = s.detail;
  switch (e.type) {
    case "ticket_updated": {
      if (!d) return again(s);
      const changed = withTicket(d, e.ticketId, (t) => {
        const next: Record<string, unknown> = { ...t };
        for (const c of e.changes) if (c.field in next && c.field !== "id" && c.field !== "projectId") next[c.field] = c.newValue;
        // The moves allowed from the new status come with the reload; none is offered until then.
        if (e.changes.some((c) => c.field === "status")) next.allowedTransitions = [];
        return next as unknown as Ticket;
      });
      if (!changed) return again(s);
      // A status change makes the allowed transitions and the plan stale.
      const statusMoved = e.changes.some((c) => c.field === "status");
      return statusMoved ? again({ ...s, detail: changed }) : { ...s, detail: changed };
    }
    case "ticket_status_changed": {
      if (!d) return again(s);
      const changed = withTicket(d, e.ticketId, (t) => (t.status === e.newStatus ? t : { ...t, status: e.newStatus, allowedTransitions: [] }));
      return again(changed ? { ...s, detail: changed } : s);
    }
    case "project_status_changed":
      // The actions allowed now come with the project: read it again.
      return again(d ? { ...s, detail: { ...d, status: e.newStatus } } : s);
    case "project_updated": {
      if (!d) return again(s);
      const next: Record<string, unknown> = { ...d };
      for (const c of e.changes) {
        if (c.field in next && !["id", "tickets", "dependencies", "plan"].includes(c.field)) next[c.field] = c.newValue;
      }
      return { ...s, detail: next as unknown as ProjectDetail };
    }
    case "analysis_progress": {
      const progress = s.progress.some((p) => p.step === e.step && p.message === e.message) ? s.progress : [...s.progress, { step: e.step, message: e.message }];
      const detail = d ? { ...d, generation: { state: "running" as const, step: e.step, error: null } } : d;
      return { ...s, progress, detail };
    }
    case "generation_failed": {
      const detail = d ? { ...d, generation: { state: "failed" as const, step: d.generation.step, error: { code: e.code, message: e.message } } } : d;
      return { ...s, detail };
    }
    case "tickets_generated":
      return again({ ...s, detail: d ? { ...d, totalTickets: e.totalTickets, generation: { state: "idle", step: null, error: null } } : d });
    default:
      return s0;
  }
}

/** The generation starting again (a retry or a regeneration): the old steps are cleared. */
function generationStarted(s: ProjectState): ProjectState {
  if (!s.detail) return s;
  return { ...s, progress: [], detail: { ...s.detail, generation: { state: "running", step: null, error: null } } };
}
