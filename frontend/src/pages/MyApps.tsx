import { useRef, useState } from "react";
import { api } from "../api/client";
import type { AppSummary } from "../api/types";
import { AppBrowser } from "../components/AppList";
import { ErrorNote } from "../components/Layout";

export function MyApps() {
  const [reload, setReload] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [renaming, setRenaming] = useState<AppSummary | null>(null);
  const [deleting, setDeleting] = useState<AppSummary | null>(null);
  const act = async (f: () => Promise<unknown>) => {
    setError(null);
    try { await f(); setReload((n) => n + 1); } catch (e) { setError(e); }
  };
  return (
    <section aria-labelledby="m-title" className="space-y-3">
      <h1 id="m-title" className="text-2xl font-bold">My apps</h1>
      <ErrorNote error={error} />
      <AppBrowser load={api.apps} withVisibility reloadKey={reload} label="My apps" actions={(a) => (
        <>
          <button type="button" className="btn-secondary" onClick={() => setRenaming(a)} aria-label={`Rename ${a.title}`}>Rename</button>
          <button type="button" className="btn-secondary" aria-label={`Make ${a.title} ${a.visibility === "public" ? "private" : "public"}`}
            onClick={() => act(() => api.updateApp(a.id, { visibility: a.visibility === "public" ? "private" : "public" }))}>
            Make {a.visibility === "public" ? "private" : "public"}
          </button>
          <button type="button" className="btn-danger" onClick={() => setDeleting(a)} aria-label={`Delete ${a.title}`}>Delete</button>
        </>
      )} />
      {renaming && <RenameDialog app={renaming} close={() => setRenaming(null)} save={(t) => act(() => api.updateApp(renaming.id, { title: t })).then(() => setRenaming(null))} />}
      {deleting && (
        <Modal title={`Delete “${deleting.title}”?`} close={() => setDeleting(null)}>
          <p className="text-sm">The app, its files and its versions are removed. This cannot be undone.</p>
          <div className="mt-4 flex justify-end gap-2">
            <button type="button" className="btn-secondary" onClick={() => setDeleting(null)}>Cancel</button>
            <button type="button" className="btn-danger" onClick={() => act(() => api.deleteApp(deleting.id)).then(() => setDeleting(null))}>Delete</button>
          </div>
        </Modal>
      )}
    </section>
  );
}

function RenameDialog({ app, close, save }: { app: AppSummary; close: () => void; save: (t: string) => void }) {
  const [title, setTitle] = useState(app.title);
  return (
    <Modal title="Rename app" close={close}>
      <form onSubmit={(e) => { e.preventDefault(); if (title.trim()) save(title.trim()); }}>
        <label htmlFor="new-title" className="label">Title</label>
        <input id="new-title" className="input" value={title} onChange={(e) => setTitle(e.target.value)} maxLength={200} autoFocus />
        <div className="mt-4 flex justify-end gap-2">
          <button type="button" className="btn-secondary" onClick={close}>Cancel</button>
          <button type="submit" className="btn-primary">Save</button>
        </div>
      </form>
    </Modal>
  );
}

export function Modal({ title, close, children }: { title: string; close: () => void; children: React.ReactNode }) {
  const ref = useRef<HTMLDialogElement>(null);
  return (
    <dialog ref={(d) => { ref.current = d; if (d && !d.open) d.showModal(); }} aria-labelledby="modal-title" onCancel={close}
      className="m-auto w-[min(28rem,92vw)] rounded-lg border border-slate-300 bg-white p-4 text-slate-900 backdrop:bg-black/40 dark:border-slate-600 dark:bg-slate-900 dark:text-slate-100">
      <h2 id="modal-title" className="mb-2 text-lg font-semibold">{title}</h2>
      {children}
      <ErrorNote error={null} />
    </dialog>
  );
}
