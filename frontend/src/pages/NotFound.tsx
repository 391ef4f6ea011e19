import { Link } from "react-router";
import { ApiError } from "../api/errors";
import { ErrorNote } from "../components/Layout";

/** What a screen shows when the request that loads it fails: not found, forbidden (any 403),
 * offline (with a retry), or the error in words. */
export function LoadFailure({ error, what = "page", retry }: { error: unknown; what?: string; retry: () => void }) {
  if (error instanceof ApiError) {
    if (error.code === "E002" || error.status === 404) return <NotFound what={what} />;
    if (error.status === 403) return <Forbidden detail={error.detail} />;
    if (error.code === "network") return <Offline retry={retry} />;
  }
  return <ErrorNote error={error} />;
}

export function NotFound({ what = "page" }: { what?: string }) {
  return (
    <section className="mx-auto max-w-lg py-16 text-center" aria-labelledby="nf-title">
      <h1 id="nf-title" className="text-2xl font-bold">Not found</h1>
      <p className="mt-2 muted">
        This {what} does not exist, or it is not shared with you.
      </p>
      <p className="mt-6"><Link className="btn-primary" to="/">Go home</Link></p>
    </section>
  );
}

export function Forbidden({ detail }: { detail?: string }) {
  return (
    <section className="mx-auto max-w-lg py-16 text-center" aria-labelledby="fb-title" data-testid="forbidden">
      <h1 id="fb-title" className="text-2xl font-bold">Not allowed</h1>
      <p className="mt-2 muted">Your account may not do this. Sign in with another account, or ask an administrator.</p>
      {detail && <p className="mt-2 text-sm">The server said: {detail}</p>}
      <p className="mt-6"><Link className="btn-primary" to="/">Go home</Link></p>
    </section>
  );
}

export function Offline({ retry }: { retry: () => void }) {
  return (
    <section className="mx-auto max-w-lg py-16 text-center" aria-labelledby="off-title">
      <h1 id="off-title" className="text-2xl font-bold">Cannot reach the server</h1>
      <p className="mt-2 muted">You may be offline, or the server is restarting.</p>
      <p className="mt-6"><button type="button" className="btn-primary" onClick={retry}>Try again</button></p>
    </section>
  );
}
