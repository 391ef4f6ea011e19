import { describe, expect, it } from "vitest";
import { canMove, columns, dropTargets } from "./board";
import { ticket } from "./fixtures";
import { TICKET_STATUSES } from "./model";

describe("the board", () => {
  it("has a column per status in lifecycle order, cards by order index then number", () => {
    const cols = columns([
      ticket(3, { status: "ready", orderIndex: 2 }), ticket(1, { status: "ready", orderIndex: 2 }),
      ticket(2, { status: "ready", orderIndex: 1 }), ticket(4, { status: "completed" }),
    ]);
    expect(cols.map((c) => c.status)).toEqual([...TICKET_STATUSES]);
    expect(cols.find((c) => c.status === "ready")!.tickets.map((t) => t.number)).toEqual([2, 1, 3]);
    expect(cols.find((c) => c.status === "completed")!.tickets.map((t) => t.number)).toEqual([4]);
    expect(cols.find((c) => c.status === "pending")!.tickets).toEqual([]);
  });

  it("offers only the ticket's allowed transitions, never its own column", () => {
    const t = ticket(1, { status: "in_progress", allowedTransitions: ["review", "blocked", "in_progress"] });
    expect(dropTargets(t)).toEqual(["review", "blocked"]);
    expect(canMove(t, "review")).toBe(true);
    expect(canMove(t, "completed")).toBe(false);
    expect(canMove(t, "in_progress")).toBe(false);
    expect(dropTargets(ticket(2, { status: "completed", allowedTransitions: [] }))).toEqual([]);
  });

  it("lists targets in lifecycle order whatever order the server sent", () => {
    expect(dropTargets(ticket(1, { status: "review", allowedTransitions: ["completed", "in_progress"] }))).toEqual(["in_progress", "completed"]);
  });
});
