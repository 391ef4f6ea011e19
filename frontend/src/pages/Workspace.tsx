// The workspace: chat, the live timeline, files with the editor, the preview, errors, versions.
import { lazy, Suspense, useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { api } from "../api/client";
import { ApiError } from "../api/errors";
import type { AppDetail, SandboxError, VersionSummary } from "../api/types";
import { isRunning, filePaths, phaseProgress, type WorkspaceState } from "../agent/reducer";
import type { ModelUsage } from "../agent/events";
import { useAgent } from "../agent/socket";
import { DeployPanel } from "../components/DeployPanel";
import { ErrorNote, useTheme } from "../components/Layout";
import { AppUsage } from "../components/AppUsage";
import { GitHubPanel } from "../components/GitHubPanel";
import { startKey } from "./Home";
import { LoadFailure } from "./NotFound";

const CodeEditor = lazy(() => import("../components/CodeEditor"));

type Tab = "preview" | "code" | "errors" | "versions";
const TABS: Tab[] = ["preview", "code", "errors", "versions"];

export function Workspace() {
  const { id = "" } = useParams();
  const [app, setApp] = useState<AppDetail | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    setLoadError(null);
    api.app(id).then(setApp).catch((e: unknown) => setLoadError(e instanceof ApiError ? e : new ApiError(0, "E000", String(e))));
  }, [id, attempt]);

  if (loadError) return <LoadFailure error={loadError} what="app" retry={() => setAttempt((n) => n + 1)} />;
  if (!app) return <p role="status" className="muted">Loading the app…</p>;
  if (!app.isOwner) {
    return (
      <section className="mx-auto max-w-2xl py-8">
        <h1 className="text-2xl font-bold">{app.title}</h1>
        <p className="mt-2 muted">{app.description}</p>
        <p className="mt-4 text-sm">This is someone else's public app: only its owner can open its workspace.</p>
      </section>
    );
  }
  return <Live app={app} />;
}

function Live({ app }: { app: AppDetail }) {
  const { state, send, dispatch } = useAgent(app.id, true);
  const [tab, setTab] = useState<Tab>("preview");
  const [selected, setSelected] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  const [line, setLine] = useState<number | undefined>();
  const [dark] = useTheme();
  const started = useRef(false);
  const [saves, setSaves] = useState(0);

  // A new app's prompt (left by the home screen) starts generation once, when the agent is idle.
  useEffect(() => {
    if (!state.synced || !state.connected || started.current) return;
    const prompt = sessionStorage.getItem(startKey(app.id));
    if (!prompt) return;
    started.current = true;
    sessionStorage.removeItem(startKey(app.id));
    if (state.status === "idle" && state.timeline.length === 0) {
      dispatch({ type: "sent", text: prompt });
      send({ type: "generate", prompt });
    }
  }, [state.synced, state.connected, state.status, state.timeline.length, app.id, send, dispatch]);

  // A finished app without a running preview asks for one.
  useEffect(() => {
    if (state.synced && state.connected && state.status === "complete" && !state.previewUrl) send({ type: "preview" });
  }, [state.synced, state.connected, state.status, state.previewUrl, send]);

  // Follow the file being written.
  useEffect(() => {
    if (follow && state.live) setSelected(state.live.path);
  }, [follow, state.live?.path]); // eslint-disable-line react-hooks/exhaustive-deps

  const running = isRunning(state);
  return (
    <div className="space-y-3">
      <div className="flex flex-wrap items-center gap-2">
        <h1 className="text-xl font-bold">{state.title ?? app.title}</h1>
        <StatusBadge state={state} />
        {!state.connected && <span role="status" className="text-sm text-amber-700 dark:text-amber-300">Reconnecting…</span>}
      </div>
      <div className="grid gap-3 lg:grid-cols-[minmax(280px,360px)_1fr]">
        <div className="space-y-3">
          <Chat app={app} state={state} send={send} onSent={(t) => dispatch({ type: "sent", text: t })} running={running} />
          <Timeline state={state} />
          <DeployPanel appId={app.id} state={state} dispatch={dispatch} open={(f, l) => { setFollow(false); setSelected(f); setLine(l); setTab("code"); }} />
          <AppUsage appId={app.id} refreshKey={state.version} />
          <GitHubPanel appId={app.id} title={app.title} refreshKey={state.version} />
        </div>
        <div className="min-w-0">
          <div role="tablist" aria-label="Workspace panels" className="mb-2 flex flex-wrap gap-1"
            onKeyDown={(e) => {
              // Arrow keys move between tabs (the tab pattern); Tab leaves the list.
              const i = TABS.indexOf(tab);
              const next = e.key === "ArrowRight" ? TABS[(i + 1) % TABS.length] : e.key === "ArrowLeft" ? TABS[(i + TABS.length - 1) % TABS.length] : undefined;
              if (next) { e.preventDefault(); setTab(next); document.getElementById(`tab-${next}`)?.focus(); }
            }}>
            {TABS.map((t) => (
              <button key={t} role="tab" type="button" aria-selected={tab === t} aria-controls={`panel-${t}`} id={`tab-${t}`} tabIndex={tab === t ? 0 : -1}
                className={tab === t ? "btn-primary" : "btn-secondary"} onClick={() => setTab(t)}>
                {t === "preview" ? "Preview" : t === "code" ? `Code (${Object.keys(state.files).length})` : t === "errors" ? `Errors (${state.errors.length})` : "Versions"}
              </button>
            ))}
          </div>
          <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} className="card min-h-[60vh] p-2">
            {tab === "preview" && <Preview state={state} reloadKey={state.version + saves * 1000} requestPreview={() => send({ type: "preview" })} />}
            {tab === "code" && (
              <Code appId={app.id} state={state} selected={selected} dark={dark} line={line} running={running}
                select={(p) => { setFollow(false); setSelected(p); setLine(undefined); }}
                follow={follow} setFollow={setFollow} loaded={(path, content) => dispatch({ type: "file_loaded", path, content })}
                saved={(path, content) => { dispatch({ type: "file_saved", path, content }); setSaves((n) => n + 1); }} />
            )}
            {tab === "errors" && <Errors appId={app.id} state={state} open={(f, l) => { setFollow(false); setSelected(f); setLine(l); setTab("code"); }} />}
            {tab === "versions" && <Versions appId={app.id} state={state} dark={dark} />}
          </div>
        </div>
      </div>
    </div>
  );
}

function StatusBadge({ state }: { state: WorkspaceState }) {
  const words: Record<string, string> = { idle: "Idle", planning: "Planning…", generating: "Writing code…", stopped: "Stopped", complete: "Ready", failed: "Failed" };
  const tone = state.status === "failed" ? "bg-red-100 text-red-900" : state.status === "complete" ? "bg-green-100 text-green-900" : "bg-slate-200 text-slate-900";
  return <span data-testid="run-status" className={`rounded-full px-2 py-0.5 text-xs font-semibold ${tone}`}>{words[state.status]}</span>;
}

function Chat({ app, state, send, onSent, running }: { app: AppDetail; state: WorkspaceState; send: (c: import("../agent/events").ClientCommand) => void; onSent: (t: string) => void; running: boolean }) {
  const [text, setText] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const t = text.trim();
    if (!t) return;
    onSent(t);
    send({ type: "message", text: t });
    setText("");
  };
  const hasApp = Object.keys(state.files).length > 0;
  return (
    <section aria-labelledby="chat-title" className="card space-y-2">
      <h2 id="chat-title" className="font-semibold">Chat</h2>
      {app.description && <p className="rounded-md bg-slate-100 p-2 text-sm dark:bg-slate-800"><span className="sr-only">Your prompt: </span>{app.description}</p>}
      <ol className="max-h-56 space-y-1 overflow-auto text-sm" aria-label="Messages" aria-live="polite">
        {state.chat.filter((c) => c.text !== app.description && !c.text.startsWith(`${app.description ?? ""}\n`)).map((c) => (
          <li key={c.key} className={c.role === "user" ? "rounded-md bg-indigo-50 p-2 dark:bg-indigo-950" : "p-2 muted"}>{c.text}</li>
        ))}
      </ol>
      {state.queued > 0 && <p role="status" data-testid="queued" className="text-sm">{state.queued} message{state.queued === 1 ? "" : "s"} queued</p>}
      {state.failure && state.status !== "failed" && <p role="alert" className="text-sm text-red-800 dark:text-red-300">{state.failure}</p>}
      <form onSubmit={submit} className="space-y-2">
        <label htmlFor="chat-input" className="sr-only">Ask for a change</label>
        <textarea id="chat-input" className="input" rows={2} placeholder={hasApp ? "Ask for a change…" : "Describe the app…"} value={text}
          onChange={(e) => setText(e.target.value)} onKeyDown={(e) => { if (e.key === "Enter" && !e.shiftKey) submit(e); }} />
        <div className="flex flex-wrap gap-2">
          <button type="submit" className="btn-primary" disabled={!text.trim()}>{running ? "Queue message" : "Send"}</button>
          {running && <button type="button" className="btn-secondary" onClick={() => send({ type: "stop" })}>Stop</button>}
          {state.status === "stopped" && <button type="button" className="btn-secondary" onClick={() => send({ type: "resume" })}>Resume</button>}
          {(state.status === "complete" || state.status === "failed" || state.status === "stopped") && (
            <button type="button" className="btn-secondary" onClick={() => { if (confirm("Plan and write the app again from its prompt?")) send({ type: "generate" }); }}>Regenerate</button>
          )}
        </div>
      </form>
    </section>
  );
}

function Timeline({ state }: { state: WorkspaceState }) {
  return (
    <section aria-labelledby="tl-title" className="card">
      <h2 id="tl-title" className="mb-2 font-semibold">Progress</h2>
      {state.timeline.length === 0 ? <p className="text-sm muted">{state.synced ? "Nothing has run yet." : "Connecting…"}</p> : (
        <ol className="space-y-2" aria-label="Phases" data-testid="timeline">
          {state.timeline.map((t) => {
            const done = t.status === "complete";
            const active = ["implementing", "validating", "correcting"].includes(t.status);
            const label = t.name === "planning" ? "Planning" : t.name === "edit" ? "Change" : t.name;
            const p = phaseProgress(t);
            const files = p.planned > 0
              ? `${p.done} of ${p.planned} planned file${p.planned === 1 ? "" : "s"} written${p.extra > 0 ? ` (+${p.extra} more)` : ""}`
              : t.written.length > 0 ? `${t.written.length} file${t.written.length === 1 ? "" : "s"} written` : "";
            return (
              <li key={t.key} className="text-sm" data-phase={t.name} data-status={t.status}>
                <div className="flex items-center gap-2">
                  <span aria-hidden="true">{done ? "✓" : t.status === "failed" ? "✗" : active ? "●" : "○"}</span>
                  <span className="font-medium">{label}</span>
                  <span className="ml-auto text-xs muted">{t.status === "correcting" ? `fixing errors, round ${t.round ?? 1}` : t.status}</span>
                </div>
                {t.message && <p className="ml-6 text-xs muted">{t.message}</p>}
                {files && <p className="ml-6 text-xs" data-testid="phase-files">{files}</p>}
                {t.name !== "planning" && (
                  <div className="ml-6 mt-1 h-1.5 rounded bg-slate-200 dark:bg-slate-700" role="progressbar" aria-label={`${label}: planned files written`}
                    aria-valuemin={0} aria-valuemax={100} aria-valuenow={p.percent} aria-valuetext={files || t.status}>
                    <div className={`h-1.5 rounded ${t.status === "failed" ? "bg-red-600" : "bg-indigo-600"}`} style={{ width: `${p.percent}%` }} />
                  </div>
                )}
                {t.planned.length > 0 && (
                  <details className="ml-6 mt-1 text-xs">
                    <summary className="cursor-pointer muted">Files of {label}</summary>
                    <ul className="mt-1 space-y-0.5 font-mono" aria-label={`Files of ${label}`}>
                      {[...t.planned, ...t.written.filter((w) => !t.planned.includes(w))].map((f) => (
                        <li key={f}>{t.written.includes(f) ? "✓ " : "· "}{f}{t.planned.includes(f) ? "" : " (not planned)"}<span className="sr-only">{t.written.includes(f) ? ", written" : ", not written yet"}</span></li>
                      ))}
                    </ul>
                  </details>
                )}
              </li>
            );
          })}
        </ol>
      )}
      <p className="mt-2 text-xs muted">Version {state.version}</p>
      <RunUsage usage={state.usage} />
    </section>
  );
}

/** The models this run used and their tokens so far (the snapshot's totals plus live `usage` events). */
function RunUsage({ usage }: { usage: ModelUsage[] }) {
  if (usage.length === 0) return null;
  const total = usage.reduce((n, m) => n + m.totalTokens, 0);
  return (
    <div className="mt-1 text-xs" data-testid="run-usage">
      <p className="font-medium">This run: {total.toLocaleString()} tokens</p>
      <ul className="muted" aria-label="Tokens per model in this run">
        {usage.map((m) => (
          <li key={`${m.provider}/${m.model}`}>
            <span className="font-mono">{m.provider}/{m.model}</span>: {m.totalTokens.toLocaleString()} tokens ({m.promptTokens.toLocaleString()} in, {m.completionTokens.toLocaleString()} out) in {m.calls} call{m.calls === 1 ? "" : "s"}
          </li>
        ))}
      </ul>
    </div>
  );
}

const WIDTHS = { phone: 390, tablet: 768, desktop: 0 } as const;

function Preview({ state, requestPreview, reloadKey }: { state: WorkspaceState; requestPreview: () => void; reloadKey: number }) {
  const [width, setWidth] = useState<keyof typeof WIDTHS>("desktop");
  const [nonce, setNonce] = useState(0);
  // A new saved version, or a file saved by hand, reloads the preview (Vite's HMR usually got
  // there first).
  useEffect(() => { setNonce((n) => n + 1); }, [reloadKey]);
  if (!state.previewUrl) {
    return (
      <div className="p-4 text-sm muted">
        <p>{isRunning(state) ? "The preview appears once the first files are running." : "No preview is running."}</p>
        {!isRunning(state) && Object.keys(state.files).length > 0 && <button type="button" className="btn-secondary mt-2" onClick={requestPreview}>Start preview</button>}
      </div>
    );
  }
  const w = WIDTHS[width];
  return (
    <div className="flex h-full flex-col gap-2">
      <div className="flex flex-wrap items-center gap-2">
        <fieldset className="flex gap-1">
          <legend className="sr-only">Preview width</legend>
          {(Object.keys(WIDTHS) as (keyof typeof WIDTHS)[]).map((k) => (
            <button key={k} type="button" aria-pressed={width === k} className={width === k ? "btn-primary" : "btn-secondary"} onClick={() => setWidth(k)}>{k}</button>
          ))}
        </fieldset>
        <button type="button" className="btn-secondary" onClick={() => setNonce((n) => n + 1)}>Reload</button>
        <a className="btn-secondary" href={state.previewUrl} target="_blank" rel="noopener noreferrer">Open in new tab</a>
      </div>
      <div className="flex flex-1 justify-center overflow-auto">
        <iframe key={nonce} title="App preview" src={state.previewUrl} data-testid="preview"
          className="h-[65vh] rounded border border-slate-300 bg-white dark:border-slate-600" style={{ width: w ? `${w}px` : "100%" }}
          sandbox="allow-scripts allow-same-origin allow-forms allow-popups allow-modals" />
      </div>
    </div>
  );
}

function Code({ appId, state, selected, select, dark, line, running, follow, setFollow, loaded, saved }: {
  appId: string; state: WorkspaceState; selected: string | null; select: (p: string) => void; dark: boolean; line?: number; running: boolean;
  follow: boolean; setFollow: (f: boolean) => void; loaded: (path: string, content: string) => void; saved: (path: string, content: string) => void;
}) {
  const paths = filePaths(state);
  const livePath = state.live?.path;
  const all = livePath && !paths.includes(livePath) ? [...paths, livePath].sort() : paths;
  const file = selected ? state.files[selected] : undefined;
  const [draft, setDraft] = useState<string | null>(null);
  const [showDiff, setShowDiff] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [saving, setSaving] = useState(false);
  useEffect(() => { setDraft(null); setError(null); }, [selected]);
  useEffect(() => {
    if (selected && file && file.content === undefined && selected !== livePath) {
      api.readFile(appId, selected).then((r) => loaded(selected, r.content)).catch(setError);
    }
  }, [appId, selected, file, livePath, loaded]);
  const streaming = selected !== null && selected === livePath;
  const value = streaming ? state.live!.text : draft ?? file?.content ?? "";
  const save = async () => {
    if (!selected || draft === null) return;
    setSaving(true);
    try { await api.writeFiles(appId, [{ path: selected, content: draft }]); saved(selected, draft); setDraft(null); setError(null); }
    catch (e) { setError(e); } finally { setSaving(false); }
  };
  return (
    <div className="grid h-full gap-2 md:grid-cols-[220px_1fr]">
      <nav aria-label="Files" className="max-h-[65vh] overflow-auto text-sm">
        <label className="mb-2 flex items-center gap-1 text-xs"><input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow the agent</label>
        {all.length === 0 ? <p className="muted">No files yet.</p> : (
          <ul data-testid="file-tree">
            {all.map((p) => (
              <li key={p}>
                <button type="button" onClick={() => select(p)} aria-current={p === selected ? "true" : undefined}
                  className={`w-full truncate rounded px-1 py-0.5 text-left font-mono text-xs ${p === selected ? "bg-indigo-100 dark:bg-indigo-900" : "hover:bg-slate-100 dark:hover:bg-slate-800"}`}>
                  {p}{p === livePath ? " ✎" : ""}
                </button>
              </li>
            ))}
          </ul>
        )}
      </nav>
      <div className="flex min-h-[50vh] flex-col gap-2">
        {selected ? (
          <>
            <div className="flex flex-wrap items-center gap-2 text-sm">
              <span className="font-mono">{selected}</span>
              {streaming && <span role="status" className="text-xs text-indigo-700 dark:text-indigo-300">being written…</span>}
              {file?.previous !== undefined && !streaming && draft === null && (
                <label className="flex items-center gap-1 text-xs"><input type="checkbox" checked={showDiff} onChange={(e) => setShowDiff(e.target.checked)} /> Show the last change</label>
              )}
              {draft !== null && !streaming && <button type="button" className="btn-primary ml-auto" onClick={save} disabled={saving || running}>{saving ? "Saving…" : "Save to sandbox"}</button>}
            </div>
            <ErrorNote error={error} />
            <div className="min-h-[50vh] flex-1">
              <Suspense fallback={<p role="status" className="muted">Loading the editor…</p>}>
                {showDiff && file?.previous !== undefined && !streaming && draft === null
                  ? <CodeEditor path={selected} original={file.previous} value={value} readOnly dark={dark} />
                  : <CodeEditor path={selected} value={value} readOnly={streaming || running} dark={dark} line={line} onChange={(v) => { if (!streaming) setDraft(v); }} />}
              </Suspense>
            </div>
          </>
        ) : <p className="muted">Choose a file.</p>}
      </div>
    </div>
  );
}

function Errors({ appId, state, open }: { appId: string; state: WorkspaceState; open: (file: string, line: number) => void }) {
  const [found, setFound] = useState<SandboxError[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = () => { setError(null); api.sandboxErrors(appId).then((r) => setFound(r.errors)).catch((e) => { setFound([]); setError(e); }); };
  useEffect(load, [appId, state.version]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <div className="space-y-3 p-2 text-sm">
      <div className="flex items-center"><h2 className="font-semibold">Build and runtime errors</h2><button type="button" className="btn-secondary ml-auto" onClick={load}>Refresh</button></div>
      {error instanceof ApiError && error.code === "E006" ? <p className="muted">The sandbox is not running, so there is nothing to check.</p> : <ErrorNote error={error} />}
      {found && found.length === 0 && !error && <p className="muted">No errors.</p>}
      <ul className="space-y-1">
        {found?.map((e, i) => (
          <li key={i}>
            {/* A diagnostic without a file (a failed install's summary, a runtime error) has no place to open. */}
            {e.file ? <button type="button" className="font-mono underline" onClick={() => open(e.file!, e.line ?? 1)}>{[e.file, e.line, e.column].filter((x) => x !== null && x !== undefined).join(":")}</button> : null}
            {" "}<span className="muted">[{e.kind}]</span> {e.message}
          </li>
        ))}
      </ul>
      <h2 className="font-semibold">Agent messages</h2>
      {state.errors.length === 0 ? <p className="muted">None.</p> : (
        <ul className="space-y-1">{state.errors.map((e, i) => <li key={e.id ?? `x${i}`}><span className="font-mono">{e.code}</span> {e.message}{e.recoverable ? " (the run continued)" : ""}</li>)}</ul>
      )}
    </div>
  );
}

function Versions({ appId, state, dark }: { appId: string; state: WorkspaceState; dark: boolean }) {
  const [versions, setVersions] = useState<VersionSummary[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [a, setA] = useState<number | null>(null);
  const [b, setB] = useState<number | null>(null);
  const [path, setPath] = useState<string>("");
  const [diff, setDiff] = useState<{ left: string; right: string } | null>(null);
  useEffect(() => { api.versions(appId).then((r) => setVersions(r.versions)).catch(setError); }, [appId, state.version]);
  const paths = useMemo(() => filePaths(state), [state]);
  const compare = async () => {
    if (a === null || !path) return;
    setError(null);
    const get = (n: number | null) => (n === null ? Promise.resolve(state.files[path]?.content ?? "") : api.versionFile(appId, n, path).catch(() => ""));
    try { const [left, right] = await Promise.all([get(a), get(b)]); setDiff({ left, right }); } catch (e) { setError(e); }
  };
  return (
    <div className="space-y-3 p-2 text-sm">
      <ErrorNote error={error} />
      {versions === null ? <p className="muted">Loading…</p> : versions.length === 0 ? <p className="muted">No saved versions yet.</p> : (
        <ol className="space-y-1" aria-label="Saved versions">
          {versions.map((v) => (
            <li key={v.version} className="flex flex-wrap items-center gap-2">
              <span className="font-semibold">v{v.version}</span>
              <span>{v.label}</span>
              <span className="muted">{v.files ?? "?"} files{v.createdAt ? ` · ${new Date(v.createdAt * (v.createdAt < 1e12 ? 1000 : 1)).toLocaleString()}` : ""}</span>
            </li>
          ))}
        </ol>
      )}
      {versions && versions.length > 0 && (
        <div className="flex flex-wrap items-end gap-2">
          <div><label className="label" htmlFor="v-a">From</label>
            <select id="v-a" className="input" value={a ?? ""} onChange={(e) => setA(e.target.value ? Number(e.target.value) : null)}>
              <option value="">Choose…</option>{versions.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}
            </select></div>
          <div><label className="label" htmlFor="v-b">To</label>
            <select id="v-b" className="input" value={b ?? ""} onChange={(e) => setB(e.target.value ? Number(e.target.value) : null)}>
              <option value="">Current files</option>{versions.map((v) => <option key={v.version} value={v.version}>v{v.version}</option>)}
            </select></div>
          <div><label className="label" htmlFor="v-file">File</label>
            <select id="v-file" className="input" value={path} onChange={(e) => setPath(e.target.value)}>
              <option value="">Choose…</option>{paths.map((p) => <option key={p} value={p}>{p}</option>)}
            </select></div>
          <button type="button" className="btn-secondary" onClick={compare} disabled={a === null || !path}>Compare</button>
        </div>
      )}
      {diff && (
        <div className="h-[45vh]">
          <Suspense fallback={<p className="muted">Loading the editor…</p>}>
            <CodeEditor path={path} original={diff.left} value={diff.right} readOnly dark={dark} />
          </Suspense>
        </div>
      )}
      <p><Link className="underline" to="/apps">Back to my apps</Link></p>
    </div>
  );
}
