// Projects: the orchestrator's projects the user may see (status filter and search in the URL),
// their totals, and the form that starts a new one from an app, a GitHub repository or nothing.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api } from "../api/client";
import { ApiError } from "../api/errors";
import type { AppSummary } from "../api/types";
import { ErrorNote } from "../components/Layout";
import { StatusBadge, TicketProgress } from "../components/orchestrator/Bits";
import { label, PROJECT_STATUSES, type NewProject, type Project, type ProjectSource, type ProjectStatus } from "../orchestrator/model";

export function Projects() {
  const [params, setParams] = useSearchParams();
  const status = (params.get("status") ?? "") as ProjectStatus | "";
  const search = params.get("search") ?? "";
  const [text, setText] = useState(search);
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [creating, setCreating] = useState(params.get("new") === "1");
  const first = useRef(true);

  useEffect(() => {
    setError(null);
    api.projects({ status: status || undefined, search: search || undefined })
      .then((r) => setProjects(r.projects)).catch((e: unknown) => { setError(e); setProjects([]); });
  }, [status, search]);

  useEffect(() => {
    if (first.current) { first.current = false; return; }
    const t = setTimeout(() => set({ search: text.trim() }), 300);
    return () => clearTimeout(t);
  }, [text]); // eslint-disable-line react-hooks/exhaustive-deps

  function set(changes: Record<string, string>) {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) { if (v) next.set(k, v); else next.delete(k); }
    setParams(next, { replace: true });
  }

  const totals = (projects ?? []).reduce((a, p) => ({ total: a.total + p.totalTickets, done: a.done + p.completedTickets }), { total: 0, done: 0 });
  return (
    <section aria-labelledby="p-title" className="space-y-4">
      <div className="flex flex-wrap items-center gap-2">
        <h1 id="p-title" className="text-2xl font-bold">Projects</h1>
        <button type="button" className="btn-primary ml-auto" aria-expanded={creating} aria-controls="new-project"
          onClick={() => setCreating((c) => !c)}>{creating ? "Close the form" : "New project"}</button>
      </div>
      <p className="text-sm muted">
        A project turns an app into a plan: the AI analyses it and proposes tickets with their dependencies; you review, approve and
        work through them on the board.
      </p>
      {creating && <NewProjectForm close={() => setCreating(false)} />}
      <form role="search" className="flex flex-wrap items-end gap-2" onSubmit={(e) => { e.preventDefault(); set({ search: text.trim() }); }}>
        <div className="min-w-48 flex-1">
          <label htmlFor="p-search" className="label">Search</label>
          <input id="p-search" type="search" className="input" value={text} maxLength={200} onChange={(e) => setText(e.target.value)} />
        </div>
        <div>
          <label htmlFor="p-status" className="label">Status</label>
          <select id="p-status" className="input" value={status} onChange={(e) => set({ status: e.target.value })}>
            <option value="">All</option>
            {PROJECT_STATUSES.map((s) => <option key={s} value={s}>{label(s)}</option>)}
          </select>
        </div>
      </form>
      <ErrorNote error={error} />
      {projects === null ? <p role="status" className="muted">Loading…</p> : (
        <>
          <p className="text-sm" data-testid="project-totals">
            {projects.length} {projects.length === 1 ? "project" : "projects"} · {totals.done} of {totals.total} tickets completed
          </p>
          {projects.length === 0 ? <p className="muted">{search || status ? "No projects match." : "No projects yet. Start one with “New project”."}</p> : (
            <ul className="grid gap-3 sm:grid-cols-2 lg:grid-cols-3" aria-label="Projects">
              {projects.map((p) => (
                <li key={p.id} className="card flex flex-col gap-2" data-testid="project-card" data-status={p.status}>
                  <div className="flex items-start gap-2">
                    <Link to={`/projects/${p.id}`} className="font-semibold hover:underline">{p.title}</Link>
                    <span className="ml-auto"><StatusBadge status={p.status} /></span>
                  </div>
                  {p.description && <p className="line-clamp-2 text-sm muted">{p.description}</p>}
                  <p className="text-xs muted">{sourceText(p)} · updated {new Date(p.updatedAt * 1000).toLocaleDateString()}</p>
                  <TicketProgress done={p.completedTickets} total={p.totalTickets} name={p.title} />
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

function sourceText(p: Project): string {
  if (p.source === "github") return p.githubRepoName ? `GitHub: ${p.githubRepoName}` : "GitHub";
  if (p.source === "app") return "From an app";
  return "New app";
}

const GITHUB = /^https:\/\/github\.com\/[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}\/?$/;

/** What is wrong with the form before it is sent, per field (the server checks again). */
export function projectProblems(p: NewProject): Record<string, string> {
  const out: Record<string, string> = {};
  if (p.source === "app" && !p.appId) out.appId = "Choose one of your apps.";
  if (p.source === "github") {
    if (!p.githubUrl?.trim()) out.githubUrl = "Enter the repository's address.";
    else if (!GITHUB.test(p.githubUrl.trim())) out.githubUrl = "Use a repository address like https://github.com/owner/repo.";
  }
  if (p.source === "new" && !p.title?.trim()) out.title = "A new project needs a title.";
  if ((p.title ?? "").trim().length > 200) out.title = "At most 200 characters.";
  if ((p.description ?? "").trim().length > 1000) out.description = "At most 1000 characters.";
  return out;
}

function NewProjectForm({ close }: { close: () => void }) {
  const navigate = useNavigate();
  const [source, setSource] = useState<ProjectSource>("app");
  const [apps, setApps] = useState<AppSummary[] | null>(null);
  const [appId, setAppId] = useState("");
  const [githubUrl, setGithubUrl] = useState("");
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [fields, setFields] = useState<Record<string, string>>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.apps({ sort: "updated", limit: 100 }).then((r) => setApps(r.apps)).catch((e: unknown) => { setApps([]); setError(e); });
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const body: NewProject = {
      source,
      ...(source === "app" ? { appId } : {}),
      ...(source === "github" ? { githubUrl: githubUrl.trim() } : {}),
      ...(title.trim() ? { title: title.trim() } : {}),
      ...(description.trim() ? { description: description.trim() } : {}),
    };
    const problems = projectProblems(body);
    setFields(problems);
    setError(null);
    if (Object.keys(problems).length) return;
    setBusy(true);
    try {
      const r = await api.createProject(body);
      navigate(`/projects/${r.project.id}`);
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && Object.keys(err.fields).length) setFields(err.fields);
      setError(err);
    }
  }

  const field = (name: string) => fields[name] ? { "aria-invalid": true as const, "aria-describedby": `np-${name}-error` } : {};
  const note = (name: string) => fields[name] ? <p id={`np-${name}-error`} className="mt-1 text-sm text-red-700 dark:text-red-300">{fields[name]}</p> : null;
  return (
    <form id="new-project" onSubmit={submit} className="card space-y-3" aria-labelledby="np-title" noValidate>
      <h2 id="np-title" className="text-lg font-semibold">New project</h2>
      <fieldset>
        <legend className="label">Start from</legend>
        <div className="flex flex-wrap gap-4 text-sm">
          {([["app", "One of my apps"], ["github", "A GitHub repository"], ["new", "A new app"]] as const).map(([v, text]) => (
            <label key={v} className="inline-flex items-center gap-1">
              <input type="radio" name="np-source" value={v} checked={source === v} onChange={() => { setSource(v); setFields({}); }} /> {text}
            </label>
          ))}
        </div>
        {note("source")}
      </fieldset>
      {source === "app" && (
        <div>
          <label htmlFor="np-app" className="label">App</label>
          <select id="np-app" className="input" value={appId} onChange={(e) => setAppId(e.target.value)} {...field("appId")}>
            <option value="">{apps === null ? "Loading your apps…" : apps.length === 0 ? "You have no apps yet" : "Choose an app"}</option>
            {(apps ?? []).map((a) => <option key={a.id} value={a.id}>{a.title}</option>)}
          </select>
          {note("appId")}
        </div>
      )}
      {source === "github" && (
        <div>
          <label htmlFor="np-github" className="label">Repository address</label>
          <input id="np-github" className="input" type="url" inputMode="url" placeholder="https://github.com/owner/repo" value={githubUrl}
            onChange={(e) => setGithubUrl(e.target.value)} {...field("githubUrl")} />
          {note("githubUrl")}
        </div>
      )}
      <div>
        <label htmlFor="np-name" className="label">Title{source === "new" ? "" : " (optional: the app's or repository's name otherwise)"}</label>
        <input id="np-name" className="input" value={title} maxLength={200} onChange={(e) => setTitle(e.target.value)} {...field("title")} />
        {note("title")}
      </div>
      <div>
        <label htmlFor="np-description" className="label">Description (optional)</label>
        <textarea id="np-description" className="input min-h-20" value={description} maxLength={1000} onChange={(e) => setDescription(e.target.value)} {...field("description")} />
        {note("description")}
      </div>
      <ErrorNote error={error} />
      <div className="flex justify-end gap-2">
        <button type="button" className="btn-secondary" onClick={close}>Cancel</button>
        <button type="submit" className="btn-primary" disabled={busy}>{busy ? "Creating…" : "Create and analyse"}</button>
      </div>
    </form>
  );
}
