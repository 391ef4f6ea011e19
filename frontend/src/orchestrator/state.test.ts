import { describe, expect, it } from "vitest";
import { detail, PID, ticket, tid } from "./fixtures";
import type { HubMessage } from "./model";
import { initialProjectState, reduceProject, type ProjectAction, type ProjectState } from "./state";

const run = (actions: ProjectAction[], s: ProjectState = initialProjectState(PID)) => actions.reduce(reduceProject, s);
const ev = (event: HubMessage): ProjectAction => ({ type: "event", event });
const loaded = (startedAt = 0) => ({ type: "loaded" as const, detail: detail(), startedAt });

describe("project page state", () => {
  it("applies a ticket's field changes in place, and asks for a reload when its status moved", () => {
    let s = run([loaded()]);
    const before = s.reload;
    s = run([ev({ type: "ticket_updated", projectId: PID, ticketId: tid(2), changes: [
      { field: "title", oldValue: "Ticket 2", newValue: "Checkout" },
      { field: "estimatedHours", oldValue: 5, newValue: 8 },
    ] })], s);
    const t2 = s.detail!.tickets.find((t) => t.id === tid(2))!;
    expect([t2.title, t2.estimatedHours]).toEqual(["Checkout", 8]);
    expect(s.reload).toBe(before);
    s = run([ev({ type: "ticket_updated", projectId: PID, ticketId: tid(1), changes: [{ field: "status", oldValue: "ready", newValue: "assigned" }] }),
      ev({ type: "ticket_status_changed", projectId: PID, ticketId: tid(1), oldStatus: "ready", newStatus: "assigned" })], s);
    expect(s.detail!.tickets[0]!.status).toBe("assigned");
    // The moves it allowed as `ready` are stale: none is offered until the reload.
    expect(s.detail!.tickets[0]!.allowedTransitions).toEqual([]);
    expect(s.reload).toBeGreaterThan(before);
  });

  it("ignores another project's events and keeps unknown fields out", () => {
    const s0 = run([loaded()]);
    const s = run([
      ev({ type: "ticket_status_changed", projectId: "prj_other", ticketId: tid(1), oldStatus: "ready", newStatus: "cancelled" }),
      ev({ type: "project_status_changed", projectId: "prj_other", oldStatus: "review", newStatus: "archived" }),
      ev({ type: "ticket_updated", projectId: PID, ticketId: tid(3), changes: [{ field: "nonsense", oldValue: null, newValue: 1 }, { field: "id", oldValue: tid(3), newValue: "x" }] }),
    ], s0);
    expect(s.detail!.status).toBe("review");
    expect(s.detail!.tickets[0]!.status).toBe("ready");
    expect(s.detail!.tickets[2]).toEqual(s0.detail!.tickets[2]);
    expect(s.reload).toBe(s0.reload);
  });

  it("reloads for a ticket it does not know, and for tickets_generated", () => {
    const s0 = run([loaded()]);
    const s1 = run([ev({ type: "ticket_updated", projectId: PID, ticketId: tid(99), changes: [{ field: "title", oldValue: "a", newValue: "b" }] })], s0);
    expect(s1.reload).toBe(s0.reload + 1);
    const s2 = run([ev({ type: "tickets_generated", projectId: PID, totalTickets: 7 })], s1);
    expect(s2.reload).toBe(s1.reload + 1);
    expect(s2.detail!.totalTickets).toBe(7);
    expect(s2.detail!.generation.state).toBe("idle");
  });

  it("follows a generation live: progress steps, then a failure, then a retry clears the steps", () => {
    let s = run([{ type: "loaded", detail: detail({ status: "analyzing", tickets: [], dependencies: [] }), startedAt: 0 }]);
    s = run([
      ev({ type: "analysis_progress", projectId: PID, step: "analyze", message: "Reading 12 files" }),
      ev({ type: "analysis_progress", projectId: PID, step: "analyze", message: "Reading 12 files" }),
      ev({ type: "analysis_progress", projectId: PID, step: "tickets", message: "Writing tickets" }),
    ], s);
    expect(s.progress.map((p) => p.step)).toEqual(["analyze", "tickets"]);
    expect(s.detail!.generation).toEqual({ state: "running", step: "tickets", error: null });
    s = run([ev({ type: "generation_failed", projectId: PID, code: "E005", message: "the model answered nonsense twice" })], s);
    expect(s.detail!.generation.state).toBe("failed");
    expect(s.detail!.generation.error).toEqual({ code: "E005", message: "the model answered nonsense twice" });
    s = run([{ type: "generation_started" }], s);
    expect(s.progress).toEqual([]);
    expect(s.detail!.generation).toEqual({ state: "running", step: null, error: null });
  });

  it("applies project status and field changes, reading the project again for its allowed actions", () => {
    const s0 = run([loaded()]);
    const s = run([
      ev({ type: "project_status_changed", projectId: PID, oldStatus: "review", newStatus: "approved" }),
      ev({ type: "project_updated", projectId: PID, changes: [{ field: "completedTickets", oldValue: 0, newValue: 2 }, { field: "tickets", oldValue: null, newValue: [] }] }),
    ], s0);
    expect(s.detail!.status).toBe("approved");
    expect(s.detail!.completedTickets).toBe(2);
    expect(s.detail!.tickets).toHaveLength(3);
    expect(s.reload).toBe(s0.reload + 1);
  });

  it("loads again when an event arrived while a load was under way", () => {
    let s = run([loaded()]);
    const startedAt = s.applied;
    s = run([ev({ type: "ticket_updated", projectId: PID, ticketId: tid(2), changes: [{ field: "title", oldValue: "Ticket 2", newValue: "New" }] })], s);
    const r = s.reload;
    // The snapshot was read before that event: it may not include it, so another load follows.
    s = reduceProject(s, { type: "loaded", detail: detail(), startedAt });
    expect(s.reload).toBe(r + 1);
    // A load started after every applied event is the last word.
    s = reduceProject(s, { type: "loaded", detail: detail(), startedAt: s.applied });
    expect(s.reload).toBe(r + 1);
  });

  it("takes a saved ticket from a PATCH answer, reloading the plan when its status changed", () => {
    const s0 = run([loaded()]);
    const s1 = reduceProject(s0, { type: "ticket_saved", ticket: ticket(2, { actualHours: 3 }) });
    expect(s1.detail!.tickets[1]!.actualHours).toBe(3);
    expect(s1.reload).toBe(s0.reload);
    const s2 = reduceProject(s1, { type: "ticket_saved", ticket: ticket(1, { status: "assigned" }) });
    expect(s2.detail!.tickets[0]!.status).toBe("assigned");
    expect(s2.reload).toBe(s1.reload + 1);
  });

  it("asks for a load when events come before the first one", () => {
    const s = run([ev({ type: "ticket_status_changed", projectId: PID, ticketId: tid(1), oldStatus: "ready", newStatus: "assigned" })]);
    expect(s.detail).toBeNull();
    expect(s.reload).toBe(1);
  });
});
