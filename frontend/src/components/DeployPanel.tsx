// The workspace's Deploy panel: deploy the app, follow the deployment step by step (from the
// agent's events, with the history polled while one is building in case the socket is
// reconnecting), the live address (copy, open), a failure in words with the build's errors, and
// the history with rollback and undeploy.
import { useCallback, useEffect, useState } from "react";
import { api } from "../api/client";
import type { Deployment, DeployStatus } from "../api/types";
import { building, isPlaceholder, lastFailure, live, stepText } from "../agent/deploy";
import { isRunning, type Action, type WorkspaceState } from "../agent/reducer";
import { Modal } from "../pages/MyApps";
import { ErrorNote } from "./Layout";

/** How often the history is asked for while a deployment is building. */
const POLL_MS = 2000;

const STEPS = ["building", "storing", "publishing"] as const;

const STATUS_WORDS: Record<DeployStatus, string> = {
  building: "Building", live: "Live", superseded: "Superseded", undeployed: "Undeployed", failed: "Failed",
};

const STATUS_TONE: Record<DeployStatus, string> = {
  building: "bg-slate-200 text-slate-900", live: "bg-green-100 text-green-900", superseded: "bg-slate-100 text-slate-800",
  undeployed: "bg-slate-100 text-slate-800", failed: "bg-red-100 text-red-900",
};

export function DeployPanel({ appId, state, dispatch, open }: {
  appId: string;
  state: WorkspaceState;
  dispatch: (a: Action) => void;
  /** Opens a file at a line in the editor (a build error's place). */
  open?: (file: string, line: number) => void;
}) {
  const view = state.deploy;
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [copied, setCopied] = useState(false);

  const load = useCallback(() => {
    api.deployments(appId)
      .then((r) => dispatch({ type: "deploy", action: { type: "history", deployments: r.deployments } }))
      .catch(setError);
  }, [appId, dispatch]);

  // The history on opening, on every (re)connection, and shortly after each deploy event (the
  // event carries the number; the record has the size, version and times).
  useEffect(() => { if (state.connected || view.deployments === null) load(); }, [load, state.connected]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    if (view.seen === 0) return;
    const t = setTimeout(load, 250);
    return () => clearTimeout(t);
  }, [load, view.seen]);

  const current = building(view);
  // While a deployment builds, the history is polled too: events missed while the socket was
  // reconnecting are only in it.
  const buildingNumber = current?.number;
  useEffect(() => {
    if (buildingNumber === undefined) return;
    const t = setInterval(load, POLL_MS);
    return () => clearInterval(t);
  }, [buildingNumber, load]);

  const act = async (f: () => Promise<void>) => {
    setError(null);
    setBusy(true);
    try { await f(); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  const deploy = () => act(async () => { const d = await api.deploy(appId); dispatch({ type: "deploy", action: { type: "started", deployment: d } }); });
  const rollback = (n: number) => act(async () => { const d = await api.rollback(appId, n); dispatch({ type: "deploy", action: { type: "started", deployment: d } }); });
  const undeploy = () => act(async () => {
    await api.undeploy(appId);
    dispatch({ type: "deploy", action: { type: "undeployed" } });
    setConfirming(false);
    load();
  });

  const serving = live(view);
  const failed = lastFailure(view);
  const agentBusy = isRunning(state);
  const reason = agentBusy ? "The agent is still writing the app: deploy it when the run has finished."
    : current ? `Deployment #${current.number} is under way.`
    : Object.keys(state.files).length === 0 && state.synced ? "There is nothing to deploy yet: describe the app first." : undefined;
  const copy = async () => {
    if (!serving?.url) return;
    try { await navigator.clipboard.writeText(serving.url); setCopied(true); setTimeout(() => setCopied(false), 2000); } catch (e) { setError(e); }
  };
  const stepIndex = current ? Math.max(0, STEPS.indexOf(view.steps[current.number] ?? "building")) : 0;

  return (
    <section aria-labelledby="deploy-title" className="card space-y-2" data-testid="deploy-panel">
      <div className="flex items-center gap-2">
        <h2 id="deploy-title" className="font-semibold">Deploy</h2>
        <span data-testid="deploy-state" className="ml-auto text-xs muted">
          {current ? `Deploying #${current.number}` : serving ? `Live (#${serving.number})` : failed ? "Last deployment failed" : view.deployments === null ? "Loading…" : "Not deployed"}
        </span>
      </div>
      <div className="flex flex-wrap items-center gap-2">
        <button type="button" className="btn-primary" onClick={deploy} disabled={busy || reason !== undefined}
          aria-describedby={reason ? "deploy-reason" : undefined}>Deploy</button>
        {reason && <p id="deploy-reason" className="text-xs muted">{reason}</p>}
      </div>

      {current && (
        <div role="status" data-testid="deploy-progress" data-step={view.steps[current.number] ?? "starting"} className="space-y-1 text-sm">
          <p>Deployment #{current.number}: {stepText(view.steps[current.number])}</p>
          <div className="h-1.5 rounded bg-slate-200 dark:bg-slate-700" role="progressbar" aria-label={`Deployment #${current.number} progress`}
            aria-valuemin={0} aria-valuemax={STEPS.length} aria-valuenow={view.steps[current.number] ? stepIndex + 1 : 0}>
            <div className="h-1.5 rounded bg-indigo-600" style={{ width: `${((view.steps[current.number] ? stepIndex + 1 : 0.3) / STEPS.length) * 100}%` }} />
          </div>
        </div>
      )}

      {serving?.url && (
        <div className="space-y-1 text-sm" data-testid="deploy-live">
          <p>Live at <a className="break-all font-mono underline" href={serving.url} target="_blank" rel="noopener noreferrer" data-testid="deploy-url">{serving.url}</a></p>
          <div className="flex flex-wrap items-center gap-2">
            <button type="button" className="btn-secondary" onClick={copy}>Copy address</button>
            <a className="btn-secondary" href={serving.url} target="_blank" rel="noopener noreferrer">Open the deployed app</a>
            {copied && <span role="status" className="text-xs">Copied</span>}
          </div>
        </div>
      )}

      {failed && !current && <Failure d={failed} open={open} />}
      <ErrorNote error={error} />
      <History view={view.deployments} busy={busy} rollback={rollback} undeploy={() => setConfirming(true)} />

      {confirming && serving && (
        <Modal title="Take the app down?" close={() => setConfirming(false)}>
          <p className="text-sm">
            {serving.url} will answer “Nothing is deployed here” until you deploy again. The history stays, so a
            deployment can be published again later.
          </p>
          <ErrorNote error={error} />
          <div className="mt-4 flex justify-end gap-2">
            <button type="button" className="btn-secondary" onClick={() => setConfirming(false)}>Cancel</button>
            <button type="button" className="btn-danger" onClick={undeploy} disabled={busy}>Undeploy</button>
          </div>
        </Modal>
      )}
    </section>
  );
}

function Failure({ d, open }: { d: Deployment; open?: (file: string, line: number) => void }) {
  const errors = d.error?.errors ?? [];
  return (
    <div role="alert" data-testid="deploy-failure" className="space-y-1 rounded-md border border-red-300 bg-red-50 p-2 text-sm text-red-900 dark:border-red-800 dark:bg-red-950 dark:text-red-100">
      <p>Deployment #{d.number} failed{d.error?.message ? `: ${d.error.message}` : "."} The previous deployment, if any, is still serving.</p>
      {errors.length > 0 && (
        <ul className="space-y-1" aria-label="Build errors">
          {errors.map((e, i) => {
            const place = e.file ? `${e.file}${e.line ? `:${e.line}${e.column ? `:${e.column}` : ""}` : ""}` : null;
            return (
              <li key={i}>
                {place && (e.file && e.line && open
                  ? <button type="button" className="font-mono underline" onClick={() => open(e.file!, e.line!)}>{place}</button>
                  : <span className="font-mono">{place}</span>)}{" "}
                <span>[{e.kind}]</span> {e.message}
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}

function History({ view, busy, rollback, undeploy }: { view: Deployment[] | null; busy: boolean; rollback: (n: number) => void; undeploy: () => void }) {
  if (view === null || view.length === 0) return null;
  return (
    <details open className="text-sm">
      <summary className="cursor-pointer font-medium">History ({view.length})</summary>
      <ol className="mt-1 space-y-1" aria-label="Deployments" data-testid="deploy-history">
        {view.map((d) => (
          <li key={d.number} className="flex flex-wrap items-center gap-x-2 gap-y-1" data-number={d.number} data-status={d.status}>
            <span className="font-semibold">#{d.number}</span>
            <span className={`rounded-full px-2 py-0.5 text-xs font-semibold ${STATUS_TONE[d.status]}`}>{STATUS_WORDS[d.status]}</span>
            <span className="text-xs muted">
              {isPlaceholder(d) ? "just now" : [
                new Date(d.createdAt * 1000).toLocaleString(),
                d.sourceVersion > 0 ? `from v${d.sourceVersion}` : null,
                d.rollbackOf ? `rollback of #${d.rollbackOf}` : null,
                d.size > 0 ? formatSize(d.size) : null,
              ].filter(Boolean).join(" · ")}
            </span>
            {d.status === "superseded" && (
              <button type="button" className="btn-secondary ml-auto" disabled={busy} onClick={() => rollback(d.number)}
                aria-label={`Roll back to deployment #${d.number}`}>Rollback</button>
            )}
            {d.status === "live" && (
              <button type="button" className="btn-danger ml-auto" disabled={busy} onClick={undeploy}>Undeploy</button>
            )}
          </li>
        ))}
      </ol>
    </details>
  );
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
