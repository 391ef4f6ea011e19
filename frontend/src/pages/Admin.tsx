// The operator's view (admin role, `ADMIN_EMAILS`): every account, a page at a time (page in the
// URL), over `GET /api/admin/users`. The server decides who may see it: anyone else gets its 403
// as the forbidden page, whatever the menu showed.
import { useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { api } from "../api/client";
import type { UserList } from "../api/types";
import { LoadFailure } from "./NotFound";

const when = (t: string | null | undefined) => (t ? new Date(t).toLocaleString() : "—");

export function Admin() {
  const [params, setParams] = useSearchParams();
  const page = Math.max(1, Number(params.get("page")) || 1);
  const [data, setData] = useState<UserList | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    setError(null);
    api.adminUsers(page).then(setData).catch(setError);
  }, [page, attempt]);
  if (error) return <LoadFailure error={error} retry={() => setAttempt((n) => n + 1)} />;
  if (!data) return <p role="status" className="muted">Loading the accounts…</p>;
  const go = (n: number) => setParams(n > 1 ? { page: String(n) } : {});
  return (
    <section aria-labelledby="admin-title" className="space-y-3">
      <h1 id="admin-title" className="text-2xl font-bold">Administration</h1>
      <p className="text-sm muted">{data.total.toLocaleString()} account{data.total === 1 ? "" : "s"} on this deployment.</p>
      <div className="card overflow-x-auto">
        <table className="w-full text-left text-sm" data-testid="admin-users">
          <caption className="sr-only">Accounts, page {data.page} of {Math.max(1, data.totalPages)}</caption>
          <thead>
            <tr>
              <th scope="col" className="py-1 pr-2">Email</th><th scope="col" className="pr-2">Name</th><th scope="col" className="pr-2">Role</th>
              <th scope="col" className="pr-2">Sign-in</th><th scope="col" className="pr-2">Verified</th><th scope="col" className="pr-2">Created</th><th scope="col">Last sign-in</th>
            </tr>
          </thead>
          <tbody>
            {data.users.map((u) => (
              <tr key={u.id} className="border-t border-slate-200 dark:border-slate-700">
                <td className="py-1 pr-2 font-mono text-xs">{u.email}</td>
                <td className="pr-2">{u.displayName}</td>
                <td className="pr-2">{u.role}</td>
                <td className="pr-2">{u.provider ?? "—"}</td>
                <td className="pr-2">{u.emailVerified ? "yes" : "no"}</td>
                <td className="pr-2 text-xs">{when(u.createdAt)}</td>
                <td className="text-xs">{when(u.lastLogin)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav aria-label="Pages" className="flex items-center gap-2 text-sm">
        <button type="button" className="btn-secondary" disabled={page <= 1} onClick={() => go(page - 1)}>Previous</button>
        <span>Page {data.page} of {Math.max(1, data.totalPages)}</span>
        <button type="button" className="btn-secondary" disabled={page >= data.totalPages} onClick={() => go(page + 1)}>Next</button>
      </nav>
      <p><Link className="underline" to="/">Back home</Link></p>
    </section>
  );
}
