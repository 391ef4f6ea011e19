// The board: one column per ticket status. A card is dragged to another column, or moved with
// its status menu (the keyboard's way); either is offered only for the ticket's allowed
// transitions, and columns a dragged card may not go to are shown disabled.
import { useState, type DragEvent } from "react";
import { Link } from "react-router";
import { canMove, columns, dropTargets, DRAG_TYPE } from "../../orchestrator/board";
import { label, type Ticket, type TicketStatus } from "../../orchestrator/model";
import { hours, PriorityBadge } from "./Bits";

export function Board({ projectId, tickets, ready, me, onMove }: {
  projectId: string;
  tickets: Ticket[];
  ready: Set<string>;
  me: string | undefined;
  onMove: (t: Ticket, to: TicketStatus) => Promise<void>;
}) {
  const [dragging, setDragging] = useState<Ticket | null>(null);
  const [over, setOver] = useState<TicketStatus | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const move = async (t: Ticket, to: TicketStatus) => {
    if (!canMove(t, to)) return;
    setBusy(t.id);
    try { await onMove(t, to); } finally { setBusy(null); }
  };
  const allowed = (s: TicketStatus) => dragging !== null && canMove(dragging, s);
  const drop = (e: DragEvent, s: TicketStatus) => {
    e.preventDefault();
    const t = dragging;
    setDragging(null); setOver(null);
    if (t && e.dataTransfer.getData(DRAG_TYPE) === t.id) void move(t, s);
  };

  return (
    <div className="overflow-x-auto pb-2" data-testid="board">
      <div className="grid min-w-max auto-cols-[14rem] grid-flow-col gap-3">
        {columns(tickets).map((col) => {
          const target = allowed(col.status);
          const disabled = dragging !== null && !target && dragging.status !== col.status;
          return (
            <section key={col.status} aria-labelledby={`col-${col.status}`} data-testid="board-column" data-status={col.status}
              data-drop={dragging ? (target ? "allowed" : "disabled") : undefined} aria-disabled={disabled || undefined}
              onDragOver={(e) => { if (target) { e.preventDefault(); e.dataTransfer.dropEffect = "move"; setOver(col.status); } }}
              onDragLeave={() => setOver((o) => (o === col.status ? null : o))}
              onDrop={(e) => drop(e, col.status)}
              className={`flex flex-col rounded-lg border p-2 transition-colors ${
                over === col.status && target ? "border-indigo-600 bg-indigo-50 dark:bg-indigo-950"
                  : target ? "border-dashed border-indigo-500 bg-white dark:bg-slate-900"
                  : disabled ? "border-slate-200 bg-slate-100 opacity-50 dark:border-slate-800 dark:bg-slate-950"
                  : "border-slate-200 bg-slate-50 dark:border-slate-700 dark:bg-slate-900"}`}>
              <h3 id={`col-${col.status}`} className="mb-2 flex items-center text-sm font-semibold">
                {label(col.status)}<span className="ml-auto rounded bg-slate-200 px-1.5 text-xs dark:bg-slate-700" aria-label={`${col.tickets.length} tickets`}>{col.tickets.length}</span>
              </h3>
              <ul className="flex min-h-16 flex-col gap-2" aria-label={`${label(col.status)} tickets`}>
                {col.tickets.map((t) => (
                  <Card key={t.id} t={t} projectId={projectId} ready={ready.has(t.id)} mine={!!me && t.assigneeUserId === me} busy={busy === t.id}
                    onDragStart={(e) => { e.dataTransfer.setData(DRAG_TYPE, t.id); e.dataTransfer.effectAllowed = "move"; setDragging(t); }}
                    onDragEnd={() => { setDragging(null); setOver(null); }} move={(to) => move(t, to)} />
                ))}
              </ul>
            </section>
          );
        })}
      </div>
    </div>
  );
}

function Card({ t, projectId, ready, mine, busy, onDragStart, onDragEnd, move }: {
  t: Ticket; projectId: string; ready: boolean; mine: boolean; busy: boolean;
  onDragStart: (e: DragEvent) => void; onDragEnd: () => void; move: (to: TicketStatus) => void;
}) {
  const targets = dropTargets(t);
  const name = `#${t.number} ${t.title}`;
  return (
    <li draggable={targets.length > 0 && !busy} onDragStart={onDragStart} onDragEnd={onDragEnd} aria-busy={busy || undefined}
      data-testid="ticket-card" data-number={t.number} data-status={t.status} data-ready={ready || undefined}
      className={`rounded-md border bg-white p-2 text-sm shadow-sm dark:bg-slate-800 ${targets.length ? "cursor-grab select-none" : ""} ${ready ? "border-emerald-500" : "border-slate-200 dark:border-slate-600"}`}>
      <div className="flex items-start gap-1">
        <Link to={`/projects/${projectId}/tickets/${t.id}`} className="font-medium hover:underline" draggable={false}>
          <span className="muted">#{t.number}</span> {t.title}
        </Link>
      </div>
      <div className="mt-1 flex flex-wrap items-center gap-1 text-xs">
        <PriorityBadge priority={t.priority} />
        <span className="muted">{t.type}</span>
        <span className="muted">· {hours(t.estimatedHours)}</span>
        {ready && <span className="rounded bg-emerald-100 px-1 font-semibold text-emerald-950 dark:bg-emerald-900 dark:text-emerald-50">ready to start</span>}
        {mine && <span className="rounded bg-violet-100 px-1 text-violet-950 dark:bg-violet-900 dark:text-violet-50">yours</span>}
      </div>
      {targets.length > 0 && (
        <div className="mt-2">
          <label className="sr-only" htmlFor={`mv-${t.id}`}>Move {name} to</label>
          <select id={`mv-${t.id}`} className="input py-1 text-xs" value="" disabled={busy} onChange={(e) => { if (e.target.value) move(e.target.value as TicketStatus); }}>
            <option value="">Move to…</option>
            {targets.map((s) => <option key={s} value={s}>{label(s)}</option>)}
          </select>
        </div>
      )}
    </li>
  );
}
