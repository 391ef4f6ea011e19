import { describe, expect, it } from "vitest";
import { blocks, detail, ticket, tid } from "./fixtures";
import { COL_GAP, edgePath, layoutGraph, NODE_H, NODE_W, PAD, ROW_GAP } from "./graph";

describe("the dependency graph layout", () => {
  it("puts the plan's levels left to right and keeps the plan's order within a level", () => {
    const d = detail({
      tickets: [ticket(1), ticket(2), ticket(3), ticket(4)],
      dependencies: [blocks(3, 1), blocks(3, 2), blocks(4, 3)],
      plan: { order: [], levels: [[tid(2), tid(1)], [tid(3)], [tid(4)]], criticalPath: { ticketIds: [tid(1), tid(3), tid(4)], hours: 6 }, ready: [tid(1), tid(2)], cycle: null },
    });
    const g = layoutGraph(d.tickets, d.dependencies, d.plan);
    const at = (n: number) => g.nodes.find((x) => x.ticket.number === n)!;
    expect([at(2).level, at(2).row, at(1).level, at(1).row, at(3).level, at(4).level]).toEqual([0, 0, 0, 1, 1, 2]);
    expect(at(1).x).toBe(PAD);
    expect(at(1).y).toBe(PAD + NODE_H + ROW_GAP);
    expect(at(3).x).toBe(PAD + NODE_W + COL_GAP);
    expect(g.levels).toBe(3);
    expect(g.width).toBe(PAD * 2 + 3 * NODE_W + 2 * COL_GAP);
    expect(g.height).toBe(PAD * 2 + 2 * NODE_H + ROW_GAP);
    // Every blocks edge runs left to right.
    for (const e of g.edges) expect(g.nodes.find((n) => n.id === e.to)!.level).toBeGreaterThan(g.nodes.find((n) => n.id === e.from)!.level);
    // The critical path: its nodes and its consecutive edges only.
    expect(g.nodes.filter((n) => n.critical).map((n) => n.ticket.number).sort()).toEqual([1, 3, 4]);
    expect(g.edges.filter((e) => e.critical).map((e) => [e.from, e.to])).toEqual([[tid(1), tid(3)], [tid(3), tid(4)]]);
    expect(g.nodes.filter((n) => n.ready).map((n) => n.ticket.number)).toEqual([2, 1]);
  });

  it("gives tickets on a cycle a last column of their own, marked", () => {
    const d = detail({
      tickets: [ticket(1), ticket(2), ticket(3)],
      dependencies: [blocks(2, 3), blocks(3, 2)],
      plan: { order: [tid(1)], levels: [[tid(1)]], criticalPath: { ticketIds: [tid(1)], hours: 2 }, ready: [], cycle: [tid(2), tid(3)] },
    });
    const g = layoutGraph(d.tickets, d.dependencies, d.plan);
    expect(g.levels).toBe(2);
    expect(g.nodes.filter((n) => n.level === 1).map((n) => [n.ticket.number, n.inCycle])).toEqual([[2, true], [3, true]]);
    expect(g.edges).toHaveLength(2);
  });

  it("draws non-blocking edges and skips edges to unknown tickets", () => {
    const d = detail();
    const g = layoutGraph(d.tickets, [...d.dependencies, { ticketId: tid(1), dependsOnTicketId: tid(3), type: "related" }, blocks(1, 42)], d.plan);
    expect(g.edges.map((e) => e.type)).toEqual(["blocks", "blocks", "related"]);
    expect(g.edges[2]!.critical).toBe(false);
  });

  it("curves forward between columns and bows to the right within one", () => {
    expect(edgePath({ x: 0, y: 0 }, { x: 300, y: 100 })).toBe(`M${NODE_W},${NODE_H / 2} C${(NODE_W + 300) / 2},${NODE_H / 2} ${(NODE_W + 300) / 2},${100 + NODE_H / 2} 300,${100 + NODE_H / 2}`);
    expect(edgePath({ x: 0, y: 0 }, { x: 0, y: 100 })).toContain(`${NODE_W + COL_GAP / 2},`);
  });

  it("lays out an empty plan", () => {
    const g = layoutGraph([], [], { order: [], levels: [], criticalPath: { ticketIds: [], hours: 0 }, ready: [], cycle: null });
    expect(g.nodes).toEqual([]);
    expect(g.width).toBeGreaterThan(0);
  });
});
