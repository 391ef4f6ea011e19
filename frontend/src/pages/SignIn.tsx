import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { api } from "../api/client";
import type { Providers } from "../api/types";
import { useAuth } from "../auth";
import { ErrorNote } from "../components/Layout";

export function SignIn({ mode }: { mode: "signin" | "signup" }) {
  const { signIn, signUp } = useAuth();
  const [params] = useSearchParams();
  const next = params.get("next")?.startsWith("/") ? params.get("next")! : "/";
  const navigate = useNavigate();
  const [providers, setProviders] = useState<Providers | null>(null);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => { api.providers().then(setProviders).catch(() => setProviders(null)); }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === "signup") await signUp(email, password, name || undefined);
      else await signIn(email, password);
      navigate(next, { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const title = mode === "signup" ? "Create your account" : "Sign in";
  return (
    <section className="mx-auto max-w-sm py-8" aria-labelledby="auth-title">
      <h1 id="auth-title" className="mb-4 text-2xl font-bold">{title}</h1>
      <form onSubmit={submit} className="space-y-3" noValidate>
        {mode === "signup" && (
          <div>
            <label className="label" htmlFor="name">Name (optional)</label>
            <input id="name" className="input" value={name} onChange={(e) => setName(e.target.value)} autoComplete="name" />
          </div>
        )}
        <div>
          <label className="label" htmlFor="email">Email</label>
          <input id="email" className="input" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="email" />
        </div>
        <div>
          <label className="label" htmlFor="password">Password</label>
          <input id="password" className="input" type="password" required minLength={8} value={password} onChange={(e) => setPassword(e.target.value)} autoComplete={mode === "signup" ? "new-password" : "current-password"} />
        </div>
        <ErrorNote error={error} />
        <button type="submit" className="btn-primary w-full" disabled={busy}>{busy ? "Please wait…" : title}</button>
      </form>
      {(providers?.google || providers?.github) && (
        <div className="mt-4 space-y-2">
          <p className="text-center text-sm muted">or</p>
          {providers.google && <a className="btn-secondary w-full" href={api.oauthUrl("google", next)}>Continue with Google</a>}
          {providers.github && <a className="btn-secondary w-full" href={api.oauthUrl("github", next)}>Continue with GitHub</a>}
        </div>
      )}
      <p className="mt-4 text-sm">
        {mode === "signup" ? (
          <>Already have an account? <Link className="underline" to={`/signin?next=${encodeURIComponent(next)}`}>Sign in</Link></>
        ) : (
          <>New here? <Link className="underline" to={`/signup?next=${encodeURIComponent(next)}`}>Create an account</Link></>
        )}
      </p>
    </section>
  );
}
