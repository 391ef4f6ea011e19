import { api } from "../api/client";
import { AppBrowser } from "../components/AppList";

export function Discover() {
  return (
    <section aria-labelledby="d-title" className="space-y-3">
      <h1 id="d-title" className="text-2xl font-bold">Discover</h1>
      <p className="muted">Apps people have made public.</p>
      <AppBrowser load={api.publicApps} withVisibility={false} label="Public apps" />
    </section>
  );
}
