// Model usage per app (GET /api/apps/:id/usage): tokens per operation with the part served from
// the provider's prompt cache, for the workspace; and a short per-app list for settings.
import { useEffect, useState } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import type { AppSummary, AppUsageResponse } from "../api/types";
import { ErrorNote } from "./Layout";

const OP_NAMES: Record<string, string> = {
  blueprint: "Planning", phase_planning: "Phase planning", implementation: "Writing code", error_correction: "Fixing errors",
  chat_edit: "Follow-up changes", ticket_generation: "Tickets",
};

/** One app's usage; `refreshKey` reloads it (e.g. when a version is saved). */
export function AppUsage({ appId, refreshKey = 0 }: { appId: string; refreshKey?: number }) {
  const [u, setU] = useState<AppUsageResponse | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    api.appUsage(appId).then((r) => { if (live) { setU(r); setError(null); } }).catch((e) => { if (live) setError(e); });
    return () => { live = false; };
  }, [appId, refreshKey]);
  return (
    <section aria-labelledby="app-usage-title" className="card space-y-2">
      <h2 id="app-usage-title" className="font-semibold">Model usage</h2>
      <ErrorNote error={error} />
      {u && (u.operations.length === 0 ? <p className="text-sm muted">No model calls yet.</p> : (
        <table className="w-full text-sm">
          <caption className="sr-only">Tokens per operation for this app</caption>
          <thead><tr className="muted text-left"><th scope="col">Operation</th><th scope="col" className="text-right">Calls</th><th scope="col" className="text-right">Tokens</th><th scope="col" className="text-right">Cached</th></tr></thead>
          <tbody>
            {u.operations.map((o) => (
              <tr key={o.operation}>
                <th scope="row" className="py-1 pr-2 text-left font-normal">{(o.operation && OP_NAMES[o.operation]) ?? o.operation}</th>
                <td className="text-right">{o.requests}</td>
                <td className="text-right">{o.totalTokens.toLocaleString()}</td>
                <td className="text-right muted">{o.cachedTokens.toLocaleString()}</td>
              </tr>
            ))}
            <tr className="font-medium">
              <th scope="row" className="py-1 pr-2 text-left">Total</th>
              <td className="text-right">{u.total.requests}</td>
              <td className="text-right">{u.total.totalTokens.toLocaleString()}</td>
              <td className="text-right">{u.total.cachedTokens.toLocaleString()}</td>
            </tr>
          </tbody>
        </table>
      ))}
    </section>
  );
}

/** Settings: the total of the most recently updated apps. */
export function AppsUsage() {
  const [rows, setRows] = useState<{ app: AppSummary; tokens: number; cached: number }[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    api.apps({ sort: "updated", limit: 10 })
      .then((list) => Promise.all(list.apps.map(async (app) => {
        const u = await api.appUsage(app.id);
        return { app, tokens: u.total.totalTokens, cached: u.total.cachedTokens };
      })))
      .then((r) => { if (live) setRows(r); })
      .catch((e) => { if (live) setError(e); });
    return () => { live = false; };
  }, []);
  return (
    <section aria-labelledby="apps-usage-title" className="card space-y-3">
      <h2 id="apps-usage-title" className="text-lg font-semibold">Usage per app</h2>
      <ErrorNote error={error} />
      {rows && (rows.length === 0 ? <p className="text-sm muted">No apps yet.</p> : (
        <ul className="space-y-1 text-sm" aria-label="Tokens per app">
          {rows.map(({ app, tokens, cached }) => (
            <li key={app.id} className="flex gap-2">
              <Link to={`/apps/${encodeURIComponent(app.id)}`} className="underline">{app.title}</Link>
              <span className="ml-auto muted">{tokens.toLocaleString()} tokens{cached > 0 ? ` (${cached.toLocaleString()} cached)` : ""}</span>
            </li>
          ))}
        </ul>
      ))}
    </section>
  );
}
