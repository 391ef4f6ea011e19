// Small pieces the orchestrator screens share: status and priority badges, the tickets-done
// bar, and the hub connection's state.
import type { HubStatus } from "../../orchestrator/hub";
import { label, type Priority, type ProjectStatus, type TicketStatus } from "../../orchestrator/model";

const TONE: Record<string, string> = {
  analyzing: "bg-sky-100 text-sky-950 dark:bg-sky-900 dark:text-sky-50",
  review: "bg-amber-100 text-amber-950 dark:bg-amber-900 dark:text-amber-50",
  approved: "bg-indigo-100 text-indigo-950 dark:bg-indigo-900 dark:text-indigo-50",
  in_progress: "bg-blue-100 text-blue-950 dark:bg-blue-900 dark:text-blue-50",
  completed: "bg-green-100 text-green-950 dark:bg-green-900 dark:text-green-50",
  archived: "bg-slate-200 text-slate-900 dark:bg-slate-700 dark:text-slate-50",
  pending: "bg-slate-100 text-slate-900 dark:bg-slate-800 dark:text-slate-100",
  ready: "bg-emerald-100 text-emerald-950 dark:bg-emerald-900 dark:text-emerald-50",
  assigned: "bg-violet-100 text-violet-950 dark:bg-violet-900 dark:text-violet-50",
  blocked: "bg-red-100 text-red-950 dark:bg-red-900 dark:text-red-50",
  cancelled: "bg-slate-200 text-slate-800 line-through dark:bg-slate-700 dark:text-slate-200",
};

export function StatusBadge({ status }: { status: ProjectStatus | TicketStatus }) {
  return <span className={`rounded-full px-2 py-0.5 text-xs font-semibold ${TONE[status] ?? ""}`} data-testid="status-badge">{label(status)}</span>;
}

const PRIORITY_TONE: Record<Priority, string> = {
  critical: "border-red-600 text-red-800 dark:text-red-200",
  high: "border-orange-600 text-orange-900 dark:text-orange-200",
  medium: "border-slate-500 text-slate-800 dark:text-slate-200",
  low: "border-slate-400 text-slate-700 dark:text-slate-300",
};

export function PriorityBadge({ priority }: { priority: Priority }) {
  return <span className={`rounded border px-1.5 text-xs ${PRIORITY_TONE[priority]}`}>{priority}</span>;
}

export function TicketProgress({ done, total, name }: { done: number; total: number; name: string }) {
  const pct = total > 0 ? Math.round((done / total) * 100) : 0;
  return (
    <div className="space-y-1">
      <div role="progressbar" aria-label={`Tickets completed in ${name}`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct}
        className="h-1.5 overflow-hidden rounded bg-slate-200 dark:bg-slate-700">
        <div className="h-full bg-green-600" style={{ width: `${pct}%` }} />
      </div>
      <p className="text-xs muted" data-testid="ticket-count">{done} of {total} tickets completed</p>
    </div>
  );
}

export function HubIndicator({ status }: { status: HubStatus }) {
  const text = status === "live" ? "Live" : status === "connecting" ? "Connecting…" : "Offline, reconnecting";
  const dot = status === "live" ? "bg-green-600" : status === "connecting" ? "bg-amber-500" : "bg-red-600";
  return (
    <span role="status" className="inline-flex items-center gap-1 text-xs muted" data-testid="hub-status" data-state={status}>
      <span aria-hidden="true" className={`inline-block h-2 w-2 rounded-full ${dot}`} />{text}
    </span>
  );
}

export const hours = (h: number | null | undefined) => (h === null || h === undefined ? "—" : `${Number.isInteger(h) ? h : h.toFixed(1)} h`);
