// The dependency graph's layout: the plan's levels become columns left to right (a ticket's
// `blocks` prerequisites are always in columns to its left), tickets within a level keep the
// plan's order top to bottom; tickets on a cycle (absent from the levels) get a last column of
// their own. Edges run from the prerequisite to the dependent ticket; an edge between two
// consecutive tickets of the critical path is marked critical.
import type { Dependency, DependencyType, Plan, Ticket } from "./model";

export const NODE_W = 180;
export const NODE_H = 56;
export const COL_GAP = 72;
export const ROW_GAP = 20;
export const PAD = 16;

export interface GraphNode {
  id: string;
  ticket: Ticket;
  level: number;
  row: number;
  x: number;
  y: number;
  critical: boolean;
  ready: boolean;
  inCycle: boolean;
}

export interface GraphEdge {
  from: string;
  to: string;
  type: DependencyType;
  critical: boolean;
  /** An SVG path from the prerequisite's right edge to the dependent's left edge. */
  d: string;
}

export interface GraphLayout { nodes: GraphNode[]; edges: GraphEdge[]; width: number; height: number; levels: number }

export function layoutGraph(tickets: Ticket[], dependencies: Dependency[], plan: Plan): GraphLayout {
  const byId = new Map(tickets.map((t) => [t.id, t]));
  const columns: string[][] = plan.levels.map((l) => l.filter((id) => byId.has(id)));
  const placed = new Set(columns.flat());
  const rest = [...(plan.cycle ?? []), ...tickets.map((t) => t.id)].filter((id, i, all) => !placed.has(id) && byId.has(id) && all.indexOf(id) === i);
  if (rest.length) columns.push(rest);
  const critical = new Set(plan.criticalPath.ticketIds);
  const ready = new Set(plan.ready);
  const cycle = new Set(plan.cycle ?? []);

  const nodes: GraphNode[] = [];
  const at = new Map<string, GraphNode>();
  columns.forEach((col, level) => col.forEach((id, row) => {
    const n: GraphNode = {
      id, ticket: byId.get(id)!, level, row,
      x: PAD + level * (NODE_W + COL_GAP), y: PAD + row * (NODE_H + ROW_GAP),
      critical: critical.has(id), ready: ready.has(id), inCycle: cycle.has(id),
    };
    nodes.push(n);
    at.set(id, n);
  }));

  const path = plan.criticalPath.ticketIds;
  const criticalEdge = new Set(path.slice(1).map((id, i) => `${path[i]}>${id}`));
  const edges: GraphEdge[] = [];
  for (const dep of dependencies) {
    const from = at.get(dep.dependsOnTicketId);
    const to = at.get(dep.ticketId);
    if (!from || !to || from === to) continue;
    edges.push({
      from: from.id, to: to.id, type: dep.type,
      critical: dep.type === "blocks" && criticalEdge.has(`${from.id}>${to.id}`),
      d: edgePath(from, to),
    });
  }
  const rows = Math.max(1, ...columns.map((c) => c.length));
  return {
    nodes, edges, levels: columns.length,
    width: PAD * 2 + Math.max(1, columns.length) * NODE_W + Math.max(0, columns.length - 1) * COL_GAP,
    height: PAD * 2 + rows * NODE_H + (rows - 1) * ROW_GAP,
  };
}

/** A curve from a's right edge to b's left edge; between tickets of one column, a loop on the right. */
export function edgePath(a: Pick<GraphNode, "x" | "y">, b: Pick<GraphNode, "x" | "y">): string {
  const ay = a.y + NODE_H / 2;
  const by = b.y + NODE_H / 2;
  if (b.x > a.x) {
    const x1 = a.x + NODE_W;
    const x2 = b.x;
    const mid = (x1 + x2) / 2;
    return `M${x1},${ay} C${mid},${ay} ${mid},${by} ${x2},${by}`;
  }
  // Same column (or leftwards, for `related` / `file_conflict` ties): bow out to the right.
  const x1 = a.x + NODE_W;
  const x2 = b.x + NODE_W;
  const bow = Math.max(x1, x2) + COL_GAP / 2;
  return `M${x1},${ay} C${bow},${ay} ${bow},${by} ${x2},${by}`;
}
