import { describe, expect, it } from "vitest";
import { implementBlockReason } from "../components/orchestrator/Implement";
import { blocks, ticket } from "./fixtures";
import type { Ticket } from "./model";

const approved = { status: "in_progress", appId: "app_1" };
const byId = (ts: Ticket[]) => new Map(ts.map((t) => [t.id, t]));

describe("Implement", () => {
  it("is allowed for an open ticket whose blockers are completed, in an approved project with an app", () => {
    const ts = [ticket(1, { status: "completed" }), ticket(2, { status: "ready" })];
    expect(implementBlockReason(ts[1]!, approved, [blocks(2, 1)], byId(ts))).toBeNull();
    expect(implementBlockReason(ticket(3, { status: "in_progress", implementation: { state: "failed", error: "x" } }), approved, [], byId(ts))).toBeNull();
  });

  it("says why not: blockers, status, a run in progress, the project", () => {
    const ts = [ticket(1, { status: "in_progress" }), ticket(2, { status: "pending" })];
    expect(implementBlockReason(ts[1]!, approved, [blocks(2, 1)], byId(ts))).toMatch(/Blocked by #1/);
    expect(implementBlockReason(ticket(4, { status: "completed" }), approved, [], byId(ts))).toMatch(/completed/);
    expect(implementBlockReason(ticket(5, { status: "in_progress", implementation: { state: "running", error: null } }), approved, [], byId(ts))).toMatch(/working on it/);
    expect(implementBlockReason(ticket(6, { status: "ready" }), { status: "review", appId: "app_1" }, [], byId(ts))).toMatch(/Approve/);
    expect(implementBlockReason(ticket(6, { status: "ready" }), { status: "approved", appId: null }, [], byId(ts))).toMatch(/no app/);
  });
});
