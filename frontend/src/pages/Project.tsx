// A project: its status and the actions its lifecycle allows now (the project's
// `allowedActions`: approve, regenerate with guidance, archive), the generation's progress (live) or its failure with a retry, the
// analysis summary, the board and the dependency graph; all of it kept current by the hub.
import { useState } from "react";
import { Link, useParams } from "react-router";
import { api } from "../api/client";
import { useAuth } from "../auth";
import { ErrorNote } from "../components/Layout";
import { Board } from "../components/orchestrator/Board";
import { DependencyGraph } from "../components/orchestrator/DependencyGraph";
import { HubIndicator, StatusBadge, TicketProgress } from "../components/orchestrator/Bits";
import type { ProjectAction, ProjectDetail, Ticket, TicketStatus } from "../orchestrator/model";
import type { ProgressStep } from "../orchestrator/state";
import { useProject } from "../orchestrator/useProject";
import { Modal } from "./MyApps";
import { LoadFailure } from "./NotFound";

export function ProjectPage() {
  const { id = "" } = useParams();
  const { state, dispatch, loadError, hub, retry } = useProject(id);
  const { user } = useAuth();
  const [error, setError] = useState<unknown>(null);
  const d = state.detail;
  if (!d) return loadError ? <LoadFailure error={loadError} what="project" retry={retry} /> : <p role="status" className="muted">Loading the project…</p>;

  const run = async (f: () => Promise<void>) => {
    setError(null);
    try { await f(); } catch (e) { setError(e); }
  };
  const move = (t: Ticket, to: TicketStatus) => run(async () => {
    const r = await api.updateTicket(t.id, { status: to });
    dispatch({ type: "ticket_saved", ticket: r.ticket });
  });
  const act = (action: ProjectAction, guidance?: string) => run(async () => {
    const r = await api.projectAction(d.id, action, guidance);
    dispatch({ type: "project_saved", project: r.project });
    if (action === "regenerate") dispatch({ type: "generation_started" });
    dispatch({ type: "reload" });
  });
  const generate = () => run(async () => {
    await api.generateTickets(d.id);
    dispatch({ type: "generation_started" });
  });

  return (
    <section aria-labelledby="pj-title" className="space-y-6" data-testid="project" data-status={d.status}>
      <nav aria-label="Breadcrumb" className="text-sm"><Link className="underline" to="/projects">Projects</Link> / {d.title}</nav>
      <header className="space-y-2">
        <div className="flex flex-wrap items-center gap-3">
          <h1 id="pj-title" className="text-2xl font-bold">{d.title}</h1>
          <span data-testid="project-status"><StatusBadge status={d.status} /></span>
          <span className="ml-auto"><HubIndicator status={hub} /></span>
        </div>
        {d.description && <p className="muted">{d.description}</p>}
        <p className="text-xs muted">
          {d.source === "github" && d.githubRepoUrl ? <>From <a className="underline" href={d.githubRepoUrl} target="_blank" rel="noopener noreferrer">{d.githubRepoName ?? d.githubRepoUrl}</a> ({d.githubDefaultBranch}) · </> : null}
          {d.source === "app" && d.appId ? <>From <Link className="underline" to={`/apps/${d.appId}`}>its app</Link> · </> : null}
          created {new Date(d.createdAt * 1000).toLocaleString()}
        </p>
        <div className="max-w-sm"><TicketProgress done={d.completedTickets} total={d.totalTickets} name={d.title} /></div>
        <Actions d={d} act={act} />
        <ErrorNote error={error} />
      </header>
      {(d.status === "analyzing" || d.generation.state !== "idle") && <Generation d={d} steps={state.progress} retry={generate} />}
      {d.plan.cycle && d.plan.cycle.length > 0 && (
        <div role="alert" className="rounded-md border border-red-300 bg-red-50 p-3 text-sm text-red-950 dark:border-red-800 dark:bg-red-950 dark:text-red-50" data-testid="cycle-warning">
          <strong>These tickets depend on each other in a circle</strong>, so none of them can start:{" "}
          {d.plan.cycle.map((id) => { const t = d.tickets.find((x) => x.id === id); return t ? `#${t.number} ${t.title}` : id; }).join(" → ")}.
          Regenerate the tickets, or change their dependencies.
        </div>
      )}
      {d.analysisResult && <Analysis a={d.analysisResult} />}
      {d.tickets.length > 0 && (
        <>
          <section aria-labelledby="board-title" className="space-y-2">
            <h2 id="board-title" className="text-xl font-semibold">Board</h2>
            <p className="text-sm muted">Drag a ticket to another column, or use its “Move to” menu. Only the moves its lifecycle allows are offered.</p>
            <Board projectId={d.id} tickets={d.tickets} ready={new Set(d.plan.ready)} me={user?.id} onMove={move} />
          </section>
          <section aria-labelledby="graph-title-h" className="space-y-2">
            <h2 id="graph-title-h" className="text-xl font-semibold">Dependencies</h2>
            <DependencyGraph projectId={d.id} tickets={d.tickets} dependencies={d.dependencies} plan={d.plan} />
          </section>
        </>
      )}
    </section>
  );
}

function Actions({ d, act }: { d: ProjectDetail; act: (a: ProjectAction, guidance?: string) => Promise<void> }) {
  const allowed = d.allowedActions;
  const [guidance, setGuidance] = useState("");
  const [archiving, setArchiving] = useState(false);
  const [busy, setBusy] = useState(false);
  const running = d.generation.state === "running";
  const go = async (a: ProjectAction, g?: string) => { setBusy(true); try { await act(a, g); } finally { setBusy(false); } };
  if (allowed.length === 0) return null;
  return (
    <div className="flex flex-wrap items-start gap-3" data-testid="project-actions">
      {allowed.includes("approve") && (
        <button type="button" className="btn-primary" disabled={busy || running} onClick={() => go("approve")}>Approve the plan</button>
      )}
      {allowed.includes("regenerate") && (
        <form className="flex min-w-72 flex-1 flex-col gap-1" onSubmit={(e) => { e.preventDefault(); void go("regenerate", guidance.trim() || undefined).then(() => setGuidance("")); }}>
          <label htmlFor="guidance" className="label">Guidance for a new set of tickets (optional)</label>
          <textarea id="guidance" className="input min-h-16" maxLength={2000} value={guidance} onChange={(e) => setGuidance(e.target.value)}
            placeholder="e.g. Split the authentication work into smaller tickets" />
          <div><button type="submit" className="btn-secondary" disabled={busy || running}>Regenerate tickets</button></div>
        </form>
      )}
      {allowed.includes("archive") && (
        <button type="button" className="btn-danger" disabled={busy} onClick={() => setArchiving(true)}>Archive</button>
      )}
      {archiving && (
        <Modal title="Archive this project?" close={() => setArchiving(false)}>
          <p className="text-sm">Its tickets stay readable, but the project leaves the active ones and no more work is planned in it.</p>
          <div className="mt-4 flex justify-end gap-2">
            <button type="button" className="btn-secondary" onClick={() => setArchiving(false)}>Cancel</button>
            <button type="button" className="btn-danger" onClick={() => { setArchiving(false); void go("archive"); }}>Archive</button>
          </div>
        </Modal>
      )}
    </div>
  );
}

function Generation({ d, steps, retry }: { d: ProjectDetail; steps: ProgressStep[]; retry: () => Promise<void> }) {
  const g = d.generation;
  return (
    <section aria-labelledby="gen-title" className="card space-y-2" data-testid="generation" data-state={g.state}>
      <h2 id="gen-title" className="text-lg font-semibold">
        {g.state === "failed" ? "Ticket generation failed" : g.state === "running" ? "Analysing the app and writing tickets…" : "Waiting for the analysis to start"}
      </h2>
      {steps.length > 0 ? (
        <ol className="space-y-1 text-sm" aria-label="Generation steps" aria-live="polite">
          {steps.map((s, i) => (
            <li key={`${s.step}-${i}`} data-step={s.step} className="flex gap-2">
              <span aria-hidden="true">{i === steps.length - 1 && g.state === "running" ? "⏳" : "✓"}</span>
              <span><strong>{s.step}</strong>: {s.message}</span>
            </li>
          ))}
        </ol>
      ) : g.state === "running" && <p className="text-sm muted" role="status">{g.step ? `Step: ${g.step}` : "Starting…"}</p>}
      {g.state === "failed" && (
        <div className="space-y-2">
          <p role="alert" className="text-sm text-red-800 dark:text-red-200" data-testid="generation-error">{g.error?.message ?? "The generation stopped."}{g.error?.code ? ` (${g.error.code})` : ""}</p>
          <button type="button" className="btn-primary" onClick={() => void retry()}>Try again</button>
        </div>
      )}
      {g.state === "idle" && d.status === "analyzing" && (
        <button type="button" className="btn-primary" onClick={() => void retry()}>Start the analysis</button>
      )}
    </section>
  );
}

function Analysis({ a }: { a: NonNullable<ProjectDetail["analysisResult"]> }) {
  const list = (title: string, items: string[], testid: string) => (
    <div>
      <h3 className="text-sm font-semibold">{title} <span className="muted">({items.length})</span></h3>
      {items.length === 0 ? <p className="text-sm muted">None found.</p> : (
        <ul className="mt-1 flex flex-wrap gap-1 text-xs" data-testid={testid} aria-label={title}>
          {items.map((x) => <li key={x} className="rounded bg-slate-100 px-1.5 py-0.5 font-mono dark:bg-slate-800">{x}</li>)}
        </ul>
      )}
    </div>
  );
  return (
    <section aria-labelledby="an-title" className="card space-y-3" data-testid="analysis">
      <h2 id="an-title" className="text-lg font-semibold">Analysis</h2>
      <p className="text-sm">{a.summary}</p>
      <p className="text-xs muted">{a.fileCount} files</p>
      <div className="grid gap-3 md:grid-cols-2">
        {list("Stack", a.stack, "analysis-stack")}
        {list("Dependencies", a.dependencies.map((x) => `${x.name}@${x.version}`), "analysis-dependencies")}
        {list("Components", a.components, "analysis-components")}
        {list("Routes", a.routes, "analysis-routes")}
        {list("API endpoints", a.apiEndpoints, "analysis-endpoints")}
      </div>
    </section>
  );
}
