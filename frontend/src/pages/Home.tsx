import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { api } from "../api/client";
import type { AppSummary, ModelConfig, ModelsResponse, Template } from "../api/types";
import { ErrorNote } from "../components/Layout";

const EXAMPLES = [
  "A todo list with due dates and a dark mode",
  "A pomodoro timer that logs finished sessions",
  "A recipe box where I can search by ingredient",
  "A landing page for a neighbourhood bakery",
];

/** Where a new app's prompt waits until its workspace is connected (survives a reload). */
export const startKey = (id: string) => `byte-start-${id}`;

/**
 * Whether the models that plan and write an app can answer: each one's provider (or its
 * fallback's) has a platform key, an own key, the gateway, or (`custom`) an OpenAI-compatible server.
 */
export function modelConfigured(m: ModelsResponse): boolean {
  // The server says which providers it can call for this user (keys, gateway, base URL).
  const usable = (c: ModelConfig | null | undefined) => !!c && m.providers.some((x) => x.provider === c.provider && x.usable);
  const ops = ["blueprint", "implementation"].map((op) => m.operations[op]).filter((o) => o !== undefined);
  return ops.length > 0 && ops.every((o) => usable(o.primary) || usable(o.fallback));
}

export function titleFrom(prompt: string): string {
  const t = prompt.trim().replace(/\s+/g, " ");
  return t.length <= 60 ? t : `${t.slice(0, 57)}…`;
}

export function Home() {
  const navigate = useNavigate();
  const [prompt, setPrompt] = useState("");
  const [template, setTemplate] = useState("");
  const [templates, setTemplates] = useState<Template[]>([]);
  const [recent, setRecent] = useState<AppSummary[] | null>(null);
  const [models, setModels] = useState<ModelsResponse | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.templates().then((r) => setTemplates(Array.isArray(r) ? r : r.templates)).catch(() => {});
    api.apps({ sort: "updated", limit: 6 }).then((r) => setRecent(r.apps)).catch(() => setRecent([]));
    api.models().then(setModels).catch(() => {});
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const text = prompt.trim();
    if (!text) return;
    setBusy(true);
    setError(null);
    try {
      const app = await api.createApp({ title: titleFrom(text), description: text, visibility: "private", ...(template ? { config: { template } } : {}) });
      const full = template ? `${text}\n\nUse the "${template}" starter template.` : text;
      sessionStorage.setItem(startKey(app.id), full);
      navigate(`/apps/${app.id}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  const noModel = models !== null && !modelConfigured(models);
  return (
    <div className="space-y-8">
      <section aria-labelledby="home-title" className="mx-auto max-w-3xl pt-6">
        <h1 id="home-title" className="mb-4 text-center text-3xl font-bold sm:text-4xl">What do you want to build?</h1>
        {noModel && (
          <div role="note" className="mb-4 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-950 dark:border-amber-700 dark:bg-amber-950 dark:text-amber-100">
            No AI model is configured yet, so nothing can be generated. Add your own provider key in{" "}
            <Link className="underline" to="/settings">Settings</Link>, or point the server at a local OpenAI-compatible model
            (see the README, section Configuration: <code>OPENAI_COMPATIBLE_BASE_URL</code>).
          </div>
        )}
        <form onSubmit={submit} className="space-y-3">
          <label htmlFor="prompt" className="sr-only">Describe the app you want</label>
          <textarea
            id="prompt"
            className="input min-h-32 text-base"
            placeholder="Describe your app in a sentence or two…"
            value={prompt}
            onChange={(e) => setPrompt(e.target.value)}
            onKeyDown={(e) => { if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) submit(e); }}
            maxLength={10000}
          />
          <div className="flex flex-wrap items-end gap-3">
            <div>
              <label htmlFor="template" className="label">Starter template</label>
              <select id="template" className="input" value={template} onChange={(e) => setTemplate(e.target.value)}>
                <option value="">Let the agent choose</option>
                {templates.map((t) => <option key={t.name} value={t.name}>{t.name} — {t.description}</option>)}
              </select>
            </div>
            <button type="submit" className="btn-primary ml-auto px-5 py-2 text-base" disabled={busy || !prompt.trim()}>
              {busy ? "Creating…" : "Build it"}
            </button>
          </div>
          <ErrorNote error={error} />
        </form>
        <div className="mt-4">
          <h2 className="mb-2 text-sm font-semibold muted">Try one of these</h2>
          <ul className="flex flex-wrap gap-2">
            {EXAMPLES.map((x) => (
              <li key={x}><button type="button" className="btn-secondary" onClick={() => setPrompt(x)}>{x}</button></li>
            ))}
          </ul>
        </div>
      </section>
      <section aria-labelledby="recent-title">
        <div className="mb-2 flex items-center">
          <h2 id="recent-title" className="text-xl font-semibold">Recent apps</h2>
          <Link to="/apps" className="ml-auto text-sm underline">All my apps</Link>
        </div>
        {recent === null ? <p className="muted">Loading…</p> : recent.length === 0 ? <p className="muted">No apps yet. Describe one above.</p> : (
          <ul className="grid gap-3 sm:grid-cols-2 lg:grid-cols-3">
            {recent.map((a) => (
              <li key={a.id} className="card">
                <Link to={`/apps/${a.id}`} className="font-semibold underline-offset-2 hover:underline">{a.title}</Link>
                <p className="mt-1 line-clamp-2 text-sm muted">{a.description}</p>
                <p className="mt-2 text-xs muted">{a.visibility} · updated {a.updatedAt ? new Date(a.updatedAt).toLocaleString() : "—"}</p>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}
