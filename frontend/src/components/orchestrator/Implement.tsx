// "Implement": the ticket becomes a follow-up edit of the project's app, made by the app's agent
// (POST /api/orchestrator/tickets/:id/implement). Disabled with the reason when the ticket cannot
// start; while the run works, a link to the app's workspace where its events stream; the outcome
// (in review with its pull request, or the failure) arrives through the project's hub.
import { useState } from "react";
import { Link } from "react-router";
import { api } from "../../api/client";
import type { Dependency, Ticket } from "../../orchestrator/model";
import { ErrorNote } from "../Layout";

/** Why the ticket cannot be implemented now, or null when it can. */
export function implementBlockReason(
  t: Ticket,
  project: { status: string; appId?: string | null },
  dependencies: Dependency[],
  byId: Map<string, Ticket>,
): string | null {
  if (!project.appId) return "The project has no app to change.";
  if (!["approved", "in_progress"].includes(project.status)) return "Approve the project's plan first.";
  if (["completed", "cancelled"].includes(t.status)) return `The ticket is ${t.status}.`;
  if (t.implementation?.state === "running") return "The app's agent is working on it.";
  const open = dependencies
    .filter((d) => d.ticketId === t.id && d.type === "blocks")
    .map((d) => byId.get(d.dependsOnTicketId))
    .filter((b): b is Ticket => !!b && b.status !== "completed");
  if (open.length > 0 || t.status === "pending") {
    return `Blocked by ${open.map((b) => `#${b.number}`).join(", ") || "unfinished tickets"}, not completed yet.`;
  }
  return null;
}

export function ImplementCard({ t, project, dependencies, byId, saved }: {
  t: Ticket;
  project: { status: string; appId?: string | null };
  dependencies: Dependency[];
  byId: Map<string, Ticket>;
  saved: (t: Ticket) => void;
}) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const reason = implementBlockReason(t, project, dependencies, byId);
  const state = t.implementation?.state;
  const workspace = project.appId ? `/apps/${project.appId}` : null;
  const start = async () => {
    setError(null); setBusy(true);
    try { saved((await api.implementTicket(t.id)).ticket); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  return (
    <div className="card space-y-2 text-sm" data-testid="ticket-implement" data-state={state ?? "none"}>
      <h2 className="font-semibold">Implement with the agent</h2>
      {state === "running" && (
        <p role="status">
          The app's agent is making this change{workspace && <> — <Link className="underline" to={workspace}>watch it in the workspace</Link></>}.
        </p>
      )}
      {state === "succeeded" && <p role="status">Implemented{t.prUrl ? "; review the pull request." : "."}</p>}
      {state === "failed" && (
        <p role="alert" className="text-red-700 dark:text-red-300" data-testid="implement-error">
          The last run failed: {t.implementation?.error ?? "unknown error"}
        </p>
      )}
      <button type="button" className="btn-primary" disabled={busy || reason !== null}
        aria-describedby={reason ? `implement-why-${t.id}` : undefined} onClick={() => void start()}>
        {state === "failed" ? "Implement again" : "Implement"}
      </button>
      {reason && <p id={`implement-why-${t.id}`} className="muted">{reason}</p>}
      {workspace && state !== "running" && <p><Link className="underline" to={workspace}>Open the app's workspace</Link></p>}
      <ErrorNote error={error} />
    </div>
  );
}
