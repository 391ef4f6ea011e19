// The app list of My apps and Discover: search, sort, visibility and page live in the URL.
import { useEffect, useRef, useState, type ReactNode } from "react";
import { Link, useSearchParams } from "react-router";
import type { AppList, AppSummary, ListQuery, Sort, VisibilityFilter } from "../api/types";
import { ErrorNote } from "./Layout";

export function AppBrowser({ load, withVisibility, actions, reloadKey = 0, label }: {
  load: (q: ListQuery) => Promise<AppList>;
  withVisibility: boolean;
  actions?: (a: AppSummary) => ReactNode;
  reloadKey?: number;
  label: string;
}) {
  const [params, setParams] = useSearchParams();
  const search = params.get("search") ?? "";
  const sort = (params.get("sort") as Sort) || "updated";
  const visibility = (params.get("visibility") as VisibilityFilter) || "all";
  const page = Math.max(1, Number(params.get("page")) || 1);
  const [data, setData] = useState<AppList | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [text, setText] = useState(search);
  const first = useRef(true);

  useEffect(() => {
    setError(null);
    load({ search: search || undefined, sort, visibility: withVisibility ? visibility : undefined, page, limit: 12 })
      .then(setData).catch(setError);
  }, [search, sort, visibility, page, reloadKey, load, withVisibility]);

  // Typing searches after a short pause.
  useEffect(() => {
    if (first.current) { first.current = false; return; }
    const t = setTimeout(() => set({ search: text, page: "" }), 300);
    return () => clearTimeout(t);
  }, [text]); // eslint-disable-line react-hooks/exhaustive-deps

  function set(changes: Record<string, string>) {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) { if (v) next.set(k, v); else next.delete(k); }
    setParams(next, { replace: true });
  }

  return (
    <div className="space-y-3">
      <form role="search" className="flex flex-wrap items-end gap-2" onSubmit={(e) => { e.preventDefault(); set({ search: text, page: "" }); }}>
        <div className="min-w-48 flex-1">
          <label htmlFor="search" className="label">Search</label>
          <input id="search" type="search" className="input" value={text} onChange={(e) => setText(e.target.value)} />
        </div>
        <div>
          <label htmlFor="sort" className="label">Sort by</label>
          <select id="sort" className="input" value={sort} onChange={(e) => set({ sort: e.target.value, page: "" })}>
            <option value="updated">Recently updated</option>
            <option value="date">Newest</option>
            <option value="name">Name</option>
          </select>
        </div>
        {withVisibility && (
          <div>
            <label htmlFor="visibility" className="label">Visibility</label>
            <select id="visibility" className="input" value={visibility} onChange={(e) => set({ visibility: e.target.value === "all" ? "" : e.target.value, page: "" })}>
              <option value="all">All</option>
              <option value="private">Private</option>
              <option value="public">Public</option>
            </select>
          </div>
        )}
      </form>
      <ErrorNote error={error} />
      {data === null ? <p role="status" className="muted">Loading…</p> : data.apps.length === 0 ? <p className="muted">No apps match.</p> : (
        <ul className="grid gap-3 sm:grid-cols-2 lg:grid-cols-3" aria-label={label}>
          {data.apps.map((a) => (
            <li key={a.id} className="card flex flex-col gap-1" data-testid="app-card">
              <Link to={`/apps/${a.id}`} className="font-semibold hover:underline">{a.title}</Link>
              <p className="line-clamp-2 text-sm muted">{a.description}</p>
              <p className="text-xs muted">{a.visibility} · updated {a.updatedAt ? new Date(a.updatedAt).toLocaleDateString() : "—"}</p>
              {a.isDeployed && a.deployUrl ? (
                <p className="text-xs" data-testid="app-deployed">
                  <span className="rounded-full bg-green-100 px-2 py-0.5 font-semibold text-green-900">Live</span>{" "}
                  <a className="break-all underline" href={a.deployUrl} target="_blank" rel="noopener noreferrer" aria-label={`${a.title}, deployed at ${a.deployUrl}`}>{a.deployUrl}</a>
                </p>
              ) : <p className="text-xs muted">Not deployed</p>}
              {actions && <div className="mt-auto flex flex-wrap gap-2 pt-2">{actions(a)}</div>}
            </li>
          ))}
        </ul>
      )}
      {data && data.totalPages > 1 && (
        <nav aria-label="Pages" className="flex items-center justify-center gap-2">
          <button type="button" className="btn-secondary" disabled={page <= 1} onClick={() => set({ page: String(page - 1) })}>Previous</button>
          <span className="text-sm">Page {page} of {data.totalPages}</span>
          <button type="button" className="btn-secondary" disabled={page >= data.totalPages} onClick={() => set({ page: String(page + 1) })}>Next</button>
        </nav>
      )}
    </div>
  );
}
