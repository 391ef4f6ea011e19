// The page a verification link opens: `/verify-email#token=…` (the token rides in the fragment,
// so it reaches no server log); it is posted to the API once, and the outcome said in words.
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import { useAuth } from "../auth";
import { ErrorNote } from "../components/Layout";

type Outcome = { kind: "working" } | { kind: "done"; email: string } | { kind: "failed"; error: unknown } | { kind: "missing" };

export function VerifyEmail() {
  const { user, refresh } = useAuth();
  const [outcome, setOutcome] = useState<Outcome>({ kind: "working" });
  const sent = useRef(false);
  useEffect(() => {
    if (sent.current) return; // a link is single use: post it once, even under StrictMode
    sent.current = true;
    const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
    if (!token) { setOutcome({ kind: "missing" }); return; }
    // The token leaves the address bar once read.
    window.history.replaceState(null, "", window.location.pathname);
    api.verifyEmail(token)
      .then(async (r) => {
        setOutcome({ kind: "done", email: r.user.email });
        // Whoever is signed in here (the page may have loaded before the session was read)
        // sees the verified account from now on.
        await refresh().catch(() => {});
      })
      .catch((error: unknown) => setOutcome({ kind: "failed", error }));
  }, [refresh]);
  return (
    <section className="mx-auto max-w-lg space-y-4 py-16 text-center" aria-labelledby="verify-title">
      <h1 id="verify-title" className="text-2xl font-bold">
        {outcome.kind === "done" ? "Email address verified" : outcome.kind === "working" ? "Verifying your address…" : "This link did not work"}
      </h1>
      {outcome.kind === "done" && <p className="muted">{outcome.email} is now confirmed for your account.</p>}
      {outcome.kind === "missing" && <p className="muted">The link has no token. Open the whole link from the mail, or ask for a new one from the banner once signed in.</p>}
      {outcome.kind === "failed" && (
        <>
          <ErrorNote error={outcome.error} />
          <p className="muted">Links work once and for 24 hours; only the newest one sent works. Sign in and ask for a new one.</p>
        </>
      )}
      <p><Link className="btn-primary" to={user ? "/" : "/signin"}>{user ? "Go home" : "Sign in"}</Link></p>
    </section>
  );
}
