// The dependency graph: the plan's levels as columns (work that can run in parallel stacked in
// one column), edges by dependency type, the critical path highlighted with its length, ready
// tickets marked. The SVG is a picture; the same facts are listed in text beside it.
import { useMemo } from "react";
import { Link, useNavigate } from "react-router";
import { layoutGraph, NODE_H, NODE_W } from "../../orchestrator/graph";
import type { Dependency, Plan, Ticket } from "../../orchestrator/model";
import { hours } from "./Bits";

const EDGE: Record<string, { stroke: string; dash?: string; name: string }> = {
  blocks: { stroke: "stroke-slate-500", name: "blocks" },
  related: { stroke: "stroke-sky-500", dash: "4 4", name: "related" },
  file_conflict: { stroke: "stroke-amber-600", dash: "2 3", name: "same files" },
};

export function DependencyGraph({ projectId, tickets, dependencies, plan }: { projectId: string; tickets: Ticket[]; dependencies: Dependency[]; plan: Plan }) {
  const g = useMemo(() => layoutGraph(tickets, dependencies, plan), [tickets, dependencies, plan]);
  const navigate = useNavigate();
  const byId = new Map(tickets.map((t) => [t.id, t]));
  const name = (id: string) => { const t = byId.get(id); return t ? `#${t.number} ${t.title}` : id; };
  if (tickets.length === 0) return <p className="muted">No tickets yet.</p>;
  return (
    <div className="space-y-3" data-testid="dependency-graph">
      <p className="text-sm" data-testid="critical-path">
        <strong>Critical path: {hours(plan.criticalPath.hours)}</strong>
        {plan.criticalPath.ticketIds.length > 0 && <> — {plan.criticalPath.ticketIds.map(name).join(" → ")}</>}
      </p>
      <ul className="flex flex-wrap gap-4 text-xs muted" aria-label="Legend">
        <li className="flex items-center gap-1"><svg width="24" height="6" aria-hidden="true"><line x1="0" y1="3" x2="24" y2="3" className="stroke-slate-500" strokeWidth="2" /></svg>blocks</li>
        <li className="flex items-center gap-1"><svg width="24" height="6" aria-hidden="true"><line x1="0" y1="3" x2="24" y2="3" className="stroke-sky-500" strokeWidth="2" strokeDasharray="4 4" /></svg>related</li>
        <li className="flex items-center gap-1"><svg width="24" height="6" aria-hidden="true"><line x1="0" y1="3" x2="24" y2="3" className="stroke-amber-600" strokeWidth="2" strokeDasharray="2 3" /></svg>same files</li>
        <li className="flex items-center gap-1"><svg width="24" height="6" aria-hidden="true"><line x1="0" y1="3" x2="24" y2="3" className="stroke-red-600" strokeWidth="3" /></svg>critical path</li>
        <li className="flex items-center gap-1"><span className="inline-block h-3 w-4 rounded-sm border-2 border-emerald-600" aria-hidden="true" />ready to start</li>
      </ul>
      <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white dark:border-slate-700 dark:bg-slate-900">
        <svg width={g.width} height={g.height} viewBox={`0 0 ${g.width} ${g.height}`} role="img" aria-labelledby="graph-title" className="block">
          <title id="graph-title">{`Dependency graph: ${g.levels} work stream levels, ${tickets.length} tickets, ${g.edges.length} dependencies`}</title>
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" className="fill-slate-500" />
            </marker>
            <marker id="arrow-critical" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" className="fill-red-600" />
            </marker>
          </defs>
          {g.edges.map((e) => {
            const s = EDGE[e.type] ?? EDGE.blocks!;
            return (
              <path key={`${e.from}>${e.to}>${e.type}`} d={e.d} fill="none" data-edge={e.type} data-critical={e.critical || undefined}
                className={e.critical ? "stroke-red-600" : s.stroke} strokeWidth={e.critical ? 3 : 1.5} strokeDasharray={e.critical ? undefined : s.dash}
                markerEnd={e.type === "blocks" ? (e.critical ? "url(#arrow-critical)" : "url(#arrow)") : undefined} />
            );
          })}
          {g.nodes.map((n) => (
            <g key={n.id} transform={`translate(${n.x},${n.y})`} data-testid="graph-node" data-number={n.ticket.number}
              data-critical={n.critical || undefined} data-ready={n.ready || undefined} className="cursor-pointer"
              onClick={() => navigate(`/projects/${projectId}/tickets/${n.id}`)}>
              <rect width={NODE_W} height={NODE_H} rx="6"
                className={`${n.inCycle ? "fill-red-50 dark:fill-red-950" : "fill-white dark:fill-slate-800"} ${n.ready ? "stroke-emerald-600" : n.critical ? "stroke-red-600" : "stroke-slate-300 dark:stroke-slate-600"}`}
                strokeWidth={n.ready || n.critical ? 2.5 : 1} />
              <text x="8" y="20" className="fill-slate-900 text-xs font-semibold dark:fill-slate-100">{clip(`#${n.ticket.number} ${n.ticket.title}`, 26)}</text>
              <text x="8" y="40" className="fill-slate-600 text-xs dark:fill-slate-300">{`${n.ticket.status.replace(/_/g, " ")} · ${hours(n.ticket.estimatedHours)}${n.ready ? " · ready" : ""}`}</text>
            </g>
          ))}
        </svg>
      </div>
      <details className="text-sm">
        <summary className="cursor-pointer">Work streams as a list</summary>
        <ol className="mt-2 list-decimal space-y-1 pl-6" aria-label="Work stream levels">
          {g.nodes.reduce<string[][]>((acc, n) => { (acc[n.level] ??= []).push(n.id); return acc; }, []).map((ids, i) => (
            <li key={i}>
              {ids.map((id, k) => (
                <span key={id}>{k > 0 && "; "}<Link className="underline" to={`/projects/${projectId}/tickets/${id}`}>{name(id)}</Link>{plan.ready.includes(id) && " (ready)"}</span>
              ))}
            </li>
          ))}
        </ol>
      </details>
    </div>
  );
}

function clip(s: string, n: number) { return s.length <= n ? s : `${s.slice(0, n - 1)}…`; }
