import { useEffect, useState, type ReactNode } from "react";
import { Link, NavLink, Navigate, Outlet, useLocation, useNavigate } from "react-router";
import { api } from "../api/client";
import { useAuth } from "../auth";

/** The theme (class `dark` on <html>, saved in localStorage); every user of the hook follows a toggle. */
export function useTheme(): [boolean, () => void] {
  const [dark, setDark] = useState(() => document.documentElement.classList.contains("dark"));
  useEffect(() => {
    const sync = () => setDark(document.documentElement.classList.contains("dark"));
    window.addEventListener("byte-theme", sync);
    return () => window.removeEventListener("byte-theme", sync);
  }, []);
  const toggle = () => {
    const next = !document.documentElement.classList.contains("dark");
    document.documentElement.classList.toggle("dark", next);
    localStorage.setItem("byte-theme", next ? "dark" : "light");
    window.dispatchEvent(new Event("byte-theme"));
  };
  return [dark, toggle];
}

export function useOnline(): boolean {
  const [online, setOnline] = useState(() => navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(true);
    const off = () => setOnline(false);
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => { window.removeEventListener("online", on); window.removeEventListener("offline", off); };
  }, []);
  return online;
}

const navClass = ({ isActive }: { isActive: boolean }) =>
  `rounded px-2 py-1 text-sm ${isActive ? "bg-slate-200 font-semibold dark:bg-slate-800" : "hover:bg-slate-100 dark:hover:bg-slate-800"}`;

export function Layout() {
  const { user, signOut } = useAuth();
  const [dark, toggle] = useTheme();
  const online = useOnline();
  const navigate = useNavigate();
  return (
    <div className="flex min-h-screen flex-col">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:p-2 focus:text-slate-900">Skip to content</a>
      <header className="border-b border-slate-200 dark:border-slate-800">
        <div className="mx-auto flex max-w-7xl flex-wrap items-center gap-2 px-3 py-2">
          <Link to="/" className="mr-2 text-lg font-bold">Byte</Link>
          <nav aria-label="Main" className="flex flex-wrap gap-1">
            {user && <NavLink to="/" end className={navClass}>Home</NavLink>}
            {user && <NavLink to="/apps" end className={navClass}>My apps</NavLink>}
            {user && <NavLink to="/projects" className={navClass}>Projects</NavLink>}
            <NavLink to="/discover" className={navClass}>Discover</NavLink>
            {user && <NavLink to="/settings" className={navClass}>Settings</NavLink>}
            {user?.role === "admin" && <NavLink to="/admin" className={navClass}>Admin</NavLink>}
          </nav>
          <div className="ml-auto flex items-center gap-2">
            <button type="button" className="btn-secondary" onClick={toggle} aria-label={dark ? "Switch to light theme" : "Switch to dark theme"}>
              {dark ? "☀" : "☾"}
            </button>
            {user ? (
              <>
                <span className="hidden text-sm sm:inline muted" data-testid="whoami">{user.displayName || user.email}</span>
                <button type="button" className="btn-secondary" onClick={async () => { await signOut(); navigate("/signin"); }}>Sign out</button>
              </>
            ) : (
              <Link to="/signin" className="btn-primary">Sign in</Link>
            )}
          </div>
        </div>
      </header>
      {!online && (
        <div role="status" className="bg-amber-100 px-3 py-2 text-center text-sm text-amber-900">
          You are offline. Changes will not be saved until the connection comes back.
        </div>
      )}
      {user && user.emailVerified === false && <VerifyBanner email={user.pendingEmail ?? user.email} />}
      <main id="main" className="mx-auto w-full max-w-7xl flex-1 px-3 py-4">
        <Outlet />
      </main>
    </div>
  );
}

export function RequireAuth({ children }: { children: ReactNode }) {
  const { user, loading } = useAuth();
  const loc = useLocation();
  if (loading) return <p role="status" className="muted">Loading…</p>;
  if (!user) return <Navigate to={`/signin?next=${encodeURIComponent(loc.pathname + loc.search)}`} replace />;
  return <>{children}</>;
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const text = error instanceof Error ? error.message : String(error);
  return <p role="alert" className="rounded-md border border-red-300 bg-red-50 p-2 text-sm text-red-900 dark:border-red-800 dark:bg-red-950 dark:text-red-100">{text}</p>;
}

/** Until the address is verified: where the link went, and a way to send another. */
function VerifyBanner({ email }: { email: string }) {
  const [note, setNote] = useState("");
  const [error, setError] = useState<unknown>(null);
  const resend = async () => {
    setNote(""); setError(null);
    try { const r = await api.resendVerification(); setNote(`A new link is on its way to ${r.to}.`); } catch (e) { setError(e); }
  };
  return (
    <div role="status" data-testid="verify-banner" className="bg-sky-50 px-3 py-2 text-center text-sm text-sky-950 dark:bg-sky-950 dark:text-sky-50">
      Confirm your address: we sent a link to <strong>{email}</strong>.{" "}
      <button type="button" className="underline" onClick={resend}>Send another link</button>
      {note && <span className="ml-2">{note}</span>}
      <ErrorNote error={error} />
    </div>
  );
}
