// The workspace's GitHub panel: the app's repository (a link), the last pushed commit and a Push
// button; without a repository, a small form that creates one on the connected account and
// pushes the app's files; without a connection, a link to connect GitHub. A push that finds the
// branch moved on says so (nothing on GitHub is overwritten).
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api } from "../api/client";
import type { GitHubConnection, GitHubPushResult, GitHubRepository } from "../api/types";
import { ErrorNote } from "./Layout";

export function GitHubPanel({ appId, title, refreshKey }: { appId: string; title: string; refreshKey?: unknown }) {
  const [conn, setConn] = useState<GitHubConnection | null>(null);
  const [repo, setRepo] = useState<GitHubRepository | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState("");
  const [name, setName] = useState(() => title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60) || "byte-app");
  const [priv, setPriv] = useState(true);

  const load = useCallback(() => {
    api.github().then((c) => {
      setConn(c);
      if (c.configured) api.appGithub(appId).then((r) => setRepo(r.repository ?? null)).catch(setError);
    }).catch(setError);
  }, [appId]);
  useEffect(load, [load, refreshKey]);

  const report = (r: GitHubPushResult) => {
    setRepo(r.repository);
    const p = r.push;
    setNote(p.committed
      ? `Pushed ${p.commitSha.slice(0, 7)}: ${p.written.length} file(s) written, ${p.deleted.length} deleted.`
      : "Nothing changed since the last push.");
  };
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null); setNote(""); setBusy(true);
    try { report(await api.createAppRepo(appId, { name: name.trim(), private: priv })); } catch (err) { setError(err); } finally { setBusy(false); }
  };
  const push = async () => {
    setError(null); setNote(""); setBusy(true);
    try { report(await api.pushApp(appId)); } catch (err) { setError(err); } finally { setBusy(false); }
  };

  if (!conn || !conn.configured) return null;
  return (
    <section aria-labelledby="gh-title" className="card space-y-2">
      <h2 id="gh-title" className="text-lg font-semibold">GitHub</h2>
      {!conn.connected ? (
        <p className="text-sm">
          <a className="underline" href={api.githubConnectUrl(`/apps/${appId}`)}>Connect GitHub</a> to export this app to a repository.
        </p>
      ) : repo ? (
        <div className="space-y-2 text-sm">
          <p>Repository: <a className="underline" href={repo.url} target="_blank" rel="noreferrer" data-testid="github-repo-link">{repo.fullName}</a> ({repo.branch})</p>
          <p>
            Last pushed commit:{" "}
            {repo.lastCommitSha && repo.lastCommitUrl
              ? <a className="font-mono underline" href={repo.lastCommitUrl} target="_blank" rel="noreferrer" data-testid="github-last-commit">{repo.lastCommitSha.slice(0, 7)}</a>
              : <span className="muted">none yet</span>}
          </p>
          <button type="button" className="btn-primary" onClick={push} disabled={busy}>{busy ? "Pushing…" : "Push"}</button>
        </div>
      ) : (
        <form onSubmit={create} className="flex flex-wrap items-end gap-2">
          <div className="min-w-48 flex-1"><label htmlFor="gh-name" className="label">New repository on {conn.login}</label>
            <input id="gh-name" className="input font-mono" value={name} onChange={(e) => setName(e.target.value)} /></div>
          <label className="flex items-center gap-1 text-sm"><input type="checkbox" checked={priv} onChange={(e) => setPriv(e.target.checked)} /> Private</label>
          <button type="submit" className="btn-primary" disabled={busy || !name.trim()}>{busy ? "Creating…" : "Create repository and push"}</button>
        </form>
      )}
      {note && <p role="status" className="text-sm">{note}</p>}
      <ErrorNote error={error} />
    </section>
  );
}
