// A ticket: its description, acceptance criteria, affected files, dependencies both ways,
// assignee (assign to me), hours (editable), status with its allowed transitions, and its
// branch and pull request when work has them, and Implement (the app's agent makes the change);
// kept current by the project's hub events.
import { useEffect, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { api } from "../api/client";
import { ApiError } from "../api/errors";
import { useAuth } from "../auth";
import { ErrorNote } from "../components/Layout";
import { hours, HubIndicator, PriorityBadge, StatusBadge } from "../components/orchestrator/Bits";
import { ImplementCard } from "../components/orchestrator/Implement";
import { dropTargets } from "../orchestrator/board";
import { label, type Ticket, type TicketStatus } from "../orchestrator/model";
import { useProject } from "../orchestrator/useProject";
import { LoadFailure, NotFound } from "./NotFound";

/** An hours field's value for the API: empty is null, else a whole number from 0 to 10000. */
export function parseHours(text: string): number | null | "invalid" {
  const t = text.trim();
  if (t === "") return null;
  const n = Number(t);
  return /^\d+$/.test(t) && n <= 10_000 ? n : "invalid";
}

/** GitHub for the ticket: a repository for the project, then the ticket's branch and pull request. */
function GitHubActions({ t, repoUrl, repoName, projectId, done }: {
  t: Ticket; repoUrl?: string | null; repoName?: string | null; projectId: string; done: () => void;
}) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState("");
  const run = async (f: () => Promise<string>) => {
    setError(null); setNote(""); setBusy(true);
    try { setNote(await f()); done(); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  if (["completed", "cancelled"].includes(t.status)) return null;
  return (
    <div className="card space-y-2 text-sm" data-testid="ticket-github">
      <h2 className="font-semibold">GitHub</h2>
      {!repoUrl ? (
        <>
          <p className="muted">The project has no repository yet.</p>
          <button type="button" className="btn-secondary" disabled={busy}
            onClick={() => void run(async () => `Created ${(await api.createProjectRepo(projectId)).repoName}.`)}>Create repository</button>
        </>
      ) : (
        <>
          <p><a className="underline" href={repoUrl} target="_blank" rel="noopener noreferrer">{repoName ?? repoUrl}</a></p>
          {!t.branchName && (
            <button type="button" className="btn-secondary" disabled={busy}
              onClick={() => void run(async () => `Branch ${(await api.createTicketBranch(t.id)).branchName} created.`)}>Create branch</button>
          )}
          {t.branchName && !t.prUrl && (
            <button type="button" className="btn-secondary" disabled={busy}
              onClick={() => void run(async () => `Pull request #${(await api.createTicketPr(t.id)).number} opened.`)}>Open PR</button>
          )}
        </>
      )}
      {note && <p role="status">{note}</p>}
      <ErrorNote error={error} />
    </div>
  );
}

export function TicketPage() {
  const { projectId = "", ticketId = "" } = useParams();
  const { state, dispatch, loadError, hub, retry } = useProject(projectId);
  const { user } = useAuth();
  const [error, setError] = useState<unknown>(null);
  const d = state.detail;
  if (!d) return loadError ? <LoadFailure error={loadError} what="ticket" retry={retry} /> : <p role="status" className="muted">Loading the ticket…</p>;
  const t = d.tickets.find((x) => x.id === ticketId);
  if (!t) return <NotFound what="ticket" />;

  const byId = new Map(d.tickets.map((x) => [x.id, x]));
  const needs = d.dependencies.filter((x) => x.ticketId === t.id);
  const neededBy = d.dependencies.filter((x) => x.dependsOnTicketId === t.id);
  const save = async (f: () => Promise<{ ticket: Ticket }>) => {
    setError(null);
    try { dispatch({ type: "ticket_saved", ticket: (await f()).ticket }); return true; } catch (e) { setError(e); return false; }
  };
  const mine = !!user && t.assigneeUserId === user.id;
  const depLink = (id: string) => {
    const o = byId.get(id);
    return o ? <><Link className="underline" to={`/projects/${d.id}/tickets/${o.id}`}>#{o.number} {o.title}</Link> <StatusBadge status={o.status} /></> : id;
  };

  return (
    <article aria-labelledby="tk-title" className="mx-auto max-w-4xl space-y-5" data-testid="ticket" data-status={t.status}>
      <nav aria-label="Breadcrumb" className="text-sm">
        <Link className="underline" to="/projects">Projects</Link> / <Link className="underline" to={`/projects/${d.id}`}>{d.title}</Link> / #{t.number}
      </nav>
      <header className="space-y-2">
        <div className="flex flex-wrap items-center gap-3">
          <h1 id="tk-title" className="text-2xl font-bold"><span className="muted">#{t.number}</span> {t.title}</h1>
          <span data-testid="ticket-status"><StatusBadge status={t.status} /></span>
          <span className="ml-auto"><HubIndicator status={hub} /></span>
        </div>
        <p className="flex flex-wrap items-center gap-2 text-sm">
          <PriorityBadge priority={t.priority} /> <span>{t.type}</span>
          {t.category && <span className="muted">· {t.category}</span>}
          {t.tags.map((x) => <span key={x} className="rounded bg-slate-100 px-1.5 text-xs dark:bg-slate-800">{x}</span>)}
          {d.plan.ready.includes(t.id) && <span className="rounded bg-emerald-100 px-1.5 text-xs font-semibold text-emerald-950">ready to start</span>}
        </p>
      </header>
      <ErrorNote error={error} />
      <div className="grid gap-5 md:grid-cols-[1fr_18rem]">
        <div className="space-y-5">
          <section aria-labelledby="tk-desc">
            <h2 id="tk-desc" className="mb-1 text-lg font-semibold">Description</h2>
            <p className="whitespace-pre-wrap text-sm">{t.description || <span className="muted">No description.</span>}</p>
          </section>
          <section aria-labelledby="tk-ac">
            <h2 id="tk-ac" className="mb-1 text-lg font-semibold">Acceptance criteria</h2>
            {t.acceptanceCriteria.length === 0 ? <p className="text-sm muted">None listed.</p> : (
              <ul className="list-disc space-y-1 pl-5 text-sm" data-testid="acceptance-criteria">{t.acceptanceCriteria.map((c, i) => <li key={i}>{c}</li>)}</ul>
            )}
          </section>
          <section aria-labelledby="tk-files">
            <h2 id="tk-files" className="mb-1 text-lg font-semibold">Affected files</h2>
            {t.affectedFiles.length === 0 ? <p className="text-sm muted">None listed.</p> : (
              <ul className="space-y-0.5 font-mono text-xs" data-testid="affected-files">{t.affectedFiles.map((f) => <li key={f}>{f}</li>)}</ul>
            )}
          </section>
          <section aria-labelledby="tk-deps">
            <h2 id="tk-deps" className="mb-1 text-lg font-semibold">Dependencies</h2>
            {needs.length === 0 && neededBy.length === 0 ? <p className="text-sm muted">This ticket depends on no other, and none depends on it.</p> : (
              <div className="space-y-2 text-sm">
                {needs.length > 0 && (
                  <div><h3 className="font-semibold">Depends on</h3>
                    <ul className="space-y-1" data-testid="depends-on">{needs.map((x) => <li key={`${x.dependsOnTicketId}-${x.type}`}>{depLink(x.dependsOnTicketId)} <span className="muted">({x.type.replace("_", " ")})</span></li>)}</ul>
                  </div>
                )}
                {neededBy.length > 0 && (
                  <div><h3 className="font-semibold">Needed by</h3>
                    <ul className="space-y-1" data-testid="needed-by">{neededBy.map((x) => <li key={`${x.ticketId}-${x.type}`}>{depLink(x.ticketId)} <span className="muted">({x.type.replace("_", " ")})</span></li>)}</ul>
                  </div>
                )}
              </div>
            )}
          </section>
        </div>
        <aside className="space-y-4" aria-label="Ticket details">
          <StatusControl t={t} save={(to) => save(() => api.updateTicket(t.id, { status: to }))} />
          <div className="card space-y-2">
            <h2 className="text-sm font-semibold">Assignee</h2>
            <p className="text-sm" data-testid="assignee">{t.assigneeUserId === null ? "Nobody yet" : mine ? "You" : "Another member"}</p>
            {!mine && !["completed", "cancelled"].includes(t.status) && (
              <button type="button" className="btn-secondary" onClick={() => void save(() => api.assignTicket(t.id))}>Assign to me</button>
            )}
          </div>
          <HoursForm t={t} save={async (patch) => dispatch({ type: "ticket_saved", ticket: (await api.updateTicket(t.id, patch)).ticket })} />
          <ImplementCard t={t} project={d} dependencies={d.dependencies} byId={byId}
            saved={(ticket) => dispatch({ type: "ticket_saved", ticket })} />
          <GitHubActions t={t} repoUrl={d.githubRepoUrl} repoName={d.githubRepoName} projectId={d.id}
            done={() => dispatch({ type: "reload" })} />
          {(t.branchName || t.prUrl || t.commitCount > 0) && (
            <div className="card space-y-1 text-sm" data-testid="ticket-git">
              <h2 className="font-semibold">Code</h2>
              {t.branchName && <p>Branch <code className="break-all">{t.branchName}</code></p>}
              {t.prUrl && <p><a className="underline" href={t.prUrl} target="_blank" rel="noopener noreferrer">Pull request</a></p>}
              <p className="muted">{t.commitCount} {t.commitCount === 1 ? "commit" : "commits"}</p>
            </div>
          )}
          <p className="text-xs muted">
            Created {new Date(t.createdAt * 1000).toLocaleString()}
            {t.startedAt ? <> · started {new Date(t.startedAt * 1000).toLocaleString()}</> : null}
            {t.completedAt ? <> · completed {new Date(t.completedAt * 1000).toLocaleString()}</> : null}
          </p>
        </aside>
      </div>
    </article>
  );
}

function StatusControl({ t, save }: { t: Ticket; save: (to: TicketStatus) => Promise<boolean> }) {
  const targets = dropTargets(t);
  const [busy, setBusy] = useState(false);
  return (
    <div className="card space-y-2">
      <h2 className="text-sm font-semibold">Status: {label(t.status)}</h2>
      {targets.length === 0 ? <p className="text-sm muted">No move is possible from here now.</p> : (
        <div className="flex flex-wrap gap-2" role="group" aria-label="Move the ticket">
          {targets.map((s) => (
            <button key={s} type="button" className="btn-secondary" disabled={busy}
              onClick={async () => { setBusy(true); await save(s); setBusy(false); }}>Move to {label(s)}</button>
          ))}
        </div>
      )}
    </div>
  );
}

function HoursForm({ t, save }: { t: Ticket; save: (p: { estimatedHours?: number | null; actualHours?: number | null }) => Promise<void> }) {
  const [est, setEst] = useState(t.estimatedHours?.toString() ?? "");
  const [act, setAct] = useState(t.actualHours?.toString() ?? "");
  const [fields, setFields] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState(false);
  const [error, setError] = useState<unknown>(null);
  // A change from elsewhere (the hub) shows up unless this form is being edited.
  const [dirty, setDirty] = useState(false);
  useEffect(() => { if (!dirty) { setEst(t.estimatedHours?.toString() ?? ""); setAct(t.actualHours?.toString() ?? ""); } }, [t.estimatedHours, t.actualHours, dirty]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setSaved(false);
    setError(null);
    const e1 = parseHours(est), a1 = parseHours(act);
    const bad: Record<string, string> = {};
    if (e1 === "invalid") bad.estimatedHours = "A whole number of hours from 0 to 10000.";
    if (a1 === "invalid") bad.actualHours = "A whole number of hours from 0 to 10000.";
    setFields(bad);
    if (Object.keys(bad).length) return;
    try {
      await save({ estimatedHours: e1 as number | null, actualHours: a1 as number | null });
      setDirty(false);
      setSaved(true);
    } catch (err) {
      if (err instanceof ApiError) setFields(err.fields);
      setError(err);
    }
  }
  const input = (id: string, name: "estimatedHours" | "actualHours", text: string, v: string, set: (s: string) => void) => (
    <div>
      <label htmlFor={id} className="label">{text}</label>
      <input id={id} className="input" inputMode="numeric" value={v} onChange={(e) => { set(e.target.value); setDirty(true); setSaved(false); }}
        aria-invalid={fields[name] ? true : undefined} aria-describedby={fields[name] ? `${id}-error` : undefined} />
      {fields[name] && <p id={`${id}-error`} className="mt-1 text-sm text-red-700 dark:text-red-300">{fields[name]}</p>}
    </div>
  );
  return (
    <form className="card space-y-2" onSubmit={submit} aria-labelledby="hours-title" noValidate>
      <h2 id="hours-title" className="text-sm font-semibold">Hours</h2>
      {input("h-est", "estimatedHours", "Estimated hours", est, setEst)}
      {input("h-act", "actualHours", "Actual hours", act, setAct)}
      <ErrorNote error={error} />
      <div className="flex items-center gap-2">
        <button type="submit" className="btn-secondary">Save hours</button>
        {saved && <span role="status" className="text-xs muted">Saved ({hours(t.estimatedHours)} estimated, {hours(t.actualHours)} actual)</span>}
      </div>
    </form>
  );
}
