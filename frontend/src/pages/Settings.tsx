// Own provider keys (only hints are ever shown), the model per operation, the last day's usage,
// and deleting the account.
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { api } from "../api/client";
import { useAuth } from "../auth";
import type { GitHubConnection, ModelsResponse, OperationModels, ProviderChoice, ProviderKey, ProviderName, UsageResponse } from "../api/types";
import { ErrorNote } from "../components/Layout";
import { AppsUsage } from "../components/AppUsage";

export function Settings() {
  return (
    <div className="space-y-6">
      <h1 className="text-2xl font-bold">Settings</h1>
      <Keys />
      <GitHub />
      <Models />
      <Usage />
      <AppsUsage />
      <DeleteAccount />
    </div>
  );
}

function GitHub() {
  const [conn, setConn] = useState<GitHubConnection | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => { api.github().then(setConn).catch(setError); }, []);
  useEffect(load, [load]);
  const disconnect = async () => {
    setError(null);
    try { await api.githubDisconnect(); load(); } catch (err) { setError(err); }
  };
  if (!conn?.configured) return null;
  return (
    <section aria-labelledby="github-title" className="card space-y-3">
      <h2 id="github-title" className="text-lg font-semibold">GitHub</h2>
      <p className="text-sm muted">Connect GitHub to export apps to repositories and push their changes. This is separate from signing in with GitHub; the token is stored encrypted.</p>
      {conn.connected ? (
        <div className="flex items-center gap-2 text-sm">
          <span>Connected as <strong data-testid="github-login">{conn.login}</strong>{conn.scopes && conn.scopes.length > 0 ? ` (${conn.scopes.join(", ")})` : ""}</span>
          <button type="button" className="btn-secondary ml-auto" onClick={disconnect}>Disconnect</button>
        </div>
      ) : (
        <a className="btn-primary inline-block" href={api.githubConnectUrl("/settings")}>Connect GitHub</a>
      )}
      <ErrorNote error={error} />
    </section>
  );
}

function Keys() {
  const [keys, setKeys] = useState<ProviderKey[] | null>(null);
  const [providers, setProviders] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [provider, setProvider] = useState("");
  const [value, setValue] = useState("");
  const [note, setNote] = useState("");
  const load = useCallback(() => {
    api.keys().then((r) => setKeys(r.keys)).catch((e) => { setKeys([]); setError(e); });
    api.models().then((m) => { setProviders(m.providers.map((p) => p.provider)); setProvider((p) => p || m.providers[0]?.provider || ""); }).catch(() => {});
  }, []);
  useEffect(load, [load]);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null); setNote("");
    try { const r = await api.putKey(provider, value.trim()); setValue(""); setNote(`Saved the ${r.provider} key (${r.hint}).`); load(); } catch (err) { setError(err); }
  };
  const remove = async (p: string) => {
    setError(null); setNote("");
    try { await api.deleteKey(p); setNote(`Removed the ${p} key.`); load(); } catch (err) { setError(err); }
  };
  return (
    <section aria-labelledby="keys-title" className="card space-y-3">
      <h2 id="keys-title" className="text-lg font-semibold">Your API keys</h2>
      <p className="text-sm muted">Your own key is used for your apps instead of the platform's. Keys are stored encrypted; only a hint is ever shown.</p>
      {keys && keys.length > 0 ? (
        <ul className="space-y-1 text-sm">
          {keys.map((k) => (
            <li key={k.provider} className="flex items-center gap-2">
              <span className="font-medium">{k.provider}</span><span className="font-mono muted">{k.hint}</span>
              <button type="button" className="btn-secondary ml-auto" onClick={() => remove(k.provider)} aria-label={`Remove the ${k.provider} key`}>Remove</button>
            </li>
          ))}
        </ul>
      ) : keys && <p className="text-sm muted">No keys yet.</p>}
      <form onSubmit={save} className="flex flex-wrap items-end gap-2">
        <div><label htmlFor="key-provider" className="label">Provider</label>
          <select id="key-provider" className="input" value={provider} onChange={(e) => setProvider(e.target.value)}>
            {providers.map((p) => <option key={p} value={p}>{p}</option>)}
          </select></div>
        <div className="min-w-48 flex-1"><label htmlFor="key-value" className="label">API key (adds or replaces)</label>
          <input id="key-value" className="input font-mono" type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} /></div>
        <button type="submit" className="btn-primary" disabled={!value.trim() || !provider}>Save key</button>
      </form>
      {note && <p role="status" className="text-sm">{note}</p>}
      <ErrorNote error={error} />
    </section>
  );
}

const OP_NAMES: Record<string, string> = {
  blueprint: "Planning", phase_planning: "Phase planning", implementation: "Writing code", error_correction: "Fixing errors",
  chat_edit: "Follow-up changes", ticket_generation: "Tickets",
};

function describeModel(m: { provider?: string; model?: string } | null | undefined): string {
  if (!m) return "—";
  return [m.provider, m.model].filter(Boolean).join(" / ") || "—";
}

/** The server's rule for a model id (src/domain/codegen/models.rs `check_model_name`). */
const MODEL_ID = /^[A-Za-z0-9\-._/:@+]{1,200}$/;
const OTHER = "__other__";

/** Why a model choice cannot be saved, or null. */
export function modelProblem(provider: string, model: string): string | null {
  if (!provider) return "Choose a provider.";
  if (!model.trim()) return "Choose a model, or type its id.";
  if (!MODEL_ID.test(model.trim())) return "A model id has at most 200 letters, digits and - . _ / : @ +.";
  return null;
}

function Models() {
  const [m, setM] = useState<ModelsResponse | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => { api.models().then(setM).catch(setError); }, []);
  useEffect(load, [load]);
  const usable = m?.providers.filter((p) => p.usable) ?? [];
  return (
    <section aria-labelledby="models-title" className="card space-y-3">
      <h2 id="models-title" className="text-lg font-semibold">Models</h2>
      <p className="text-sm muted">
        The model each step uses. Providers listed are the ones this server can call for you
        {usable.length > 0 ? ` (${usable.map((p) => p.provider).join(", ")})` : ""}; add your own key above for more.
      </p>
      <ErrorNote error={error} />
      {!m ? <p className="muted">Loading…</p> : (
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm">
            <thead><tr><th scope="col" className="py-1">Operation</th><th scope="col">In use</th><th scope="col">Your choice</th></tr></thead>
            <tbody>
              {Object.entries(m.operations).map(([op, o]) => <ModelRow key={op} op={op} o={o} providers={m.providers} saved={load} />)}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ModelRow({ op, o, providers, saved }: { op: string; o: OperationModels; providers: ProviderChoice[]; saved: () => void }) {
  const name = OP_NAMES[op] ?? op;
  const current = o.override?.provider ?? o.primary.provider;
  const [provider, setProvider] = useState<string>(current);
  const [choice, setChoice] = useState<string>("");
  const [typed, setTyped] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState("");
  // Usable providers, plus the one in use (so the form shows what is set even if it is not).
  const offered = providers.filter((p) => p.usable || p.provider === current);
  const models = providers.find((p) => p.provider === provider)?.models ?? [];
  const model = choice === OTHER || models.length === 0 ? typed : choice;
  const pickProvider = (p: string) => { setProvider(p); setChoice(""); setTyped(""); setProblem(null); };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null); setNote("");
    const why = modelProblem(provider, model);
    setProblem(why);
    if (why) return;
    try {
      await api.setModel(op, { provider: provider as ProviderName, model: model.trim() });
      setNote(`${name} now uses ${provider} / ${model.trim()}.`);
      setChoice(""); setTyped("");
      saved();
    } catch (err) { setError(err); }
  };
  const reset = async () => {
    setError(null); setNote("");
    try { await api.resetModel(op); setNote(`${name} uses the default again.`); pickProvider(o.default?.provider ?? current); saved(); } catch (err) { setError(err); }
  };
  const id = `model-${op}`;
  return (
    <tr className="border-t border-slate-200 align-top dark:border-slate-700" data-testid={`model-row-${op}`}>
      <th scope="row" className="py-2 pr-2 font-medium">{name}</th>
      <td className="py-2 pr-2 text-xs">
        <span className="font-mono" data-testid="model-in-use">{describeModel(o.primary)}</span>
        {o.fallback ? <><br /><span className="muted">fallback {describeModel(o.fallback)}</span></> : null}
        <br /><span className="muted" data-testid="model-default">default {describeModel(o.default)}</span>
        {o.override ? <><br /><span>yours: <span className="font-mono">{describeModel(o.override)}</span></span></> : null}
        {o.overrideError && <p className="text-red-800 dark:text-red-300">{Object.values(o.overrideError).join("; ")}</p>}
      </td>
      <td className="py-2">
        <form className="flex flex-wrap items-end gap-1" onSubmit={submit} noValidate>
          <div>
            <label className="sr-only" htmlFor={`${id}-provider`}>Provider for {name}</label>
            <select id={`${id}-provider`} className="input py-1" value={provider} onChange={(e) => pickProvider(e.target.value)}>
              {offered.map((p) => <option key={p.provider} value={p.provider}>{p.provider}{p.usable ? "" : " (not available)"}</option>)}
            </select>
          </div>
          {models.length > 0 && (
            <div>
              <label className="sr-only" htmlFor={`${id}-model`}>Model for {name}</label>
              <select id={`${id}-model`} className="input py-1" value={choice} onChange={(e) => { setChoice(e.target.value); setProblem(null); }}
                aria-invalid={problem ? true : undefined} aria-describedby={problem ? `${id}-problem` : undefined}>
                <option value="">Choose a model…</option>
                {models.map((mm) => <option key={mm} value={mm}>{mm}</option>)}
                <option value={OTHER}>Other…</option>
              </select>
            </div>
          )}
          {(choice === OTHER || models.length === 0) && (
            <div>
              <label className="sr-only" htmlFor={`${id}-typed`}>Model id for {name}</label>
              <input id={`${id}-typed`} className="input w-40 py-1" placeholder="model id" value={typed}
                onChange={(e) => { setTyped(e.target.value); setProblem(null); }}
                aria-invalid={problem ? true : undefined} aria-describedby={problem ? `${id}-problem` : undefined} />
            </div>
          )}
          <button type="submit" className="btn-secondary">Set</button>
          {o.override && <button type="button" className="btn-secondary" onClick={reset}>Use default</button>}
        </form>
        {problem && <p id={`${id}-problem`} role="alert" className="mt-1 text-xs text-red-800 dark:text-red-300">{problem}</p>}
        {note && <p role="status" className="mt-1 text-xs">{note}</p>}
        <ErrorNote error={error} />
      </td>
    </tr>
  );
}

function Usage() {
  const [u, setU] = useState<UsageResponse | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => { api.usage().then(setU).catch(setError); }, []);
  const max = Math.max(1, ...(u?.operations.map((o) => o.totalTokens) ?? [1]));
  return (
    <section aria-labelledby="usage-title" className="card space-y-3">
      <h2 id="usage-title" className="text-lg font-semibold">Usage, last 24 hours</h2>
      <ErrorNote error={error} />
      {u && (u.operations.length === 0 ? <p className="text-sm muted">No model calls yet.</p> : (
        <ul className="space-y-2 text-sm" aria-label="Tokens per operation">
          {u.operations.map((o) => (
            <li key={o.operation ?? "other"}>
              <div className="flex"><span>{OP_NAMES[o.operation ?? ""] ?? o.operation}</span><span className="ml-auto muted">{o.totalTokens.toLocaleString()} tokens · {o.requests} calls</span></div>
              <div className="h-2 rounded bg-slate-200 dark:bg-slate-700" aria-hidden="true"><div className="h-2 rounded bg-indigo-600" style={{ width: `${(o.totalTokens / max) * 100}%` }} /></div>
            </li>
          ))}
          <li className="font-medium">Total: {u.total.totalTokens.toLocaleString()} tokens in {u.total.requests} calls</li>
        </ul>
      ))}
    </section>
  );
}

/** Deleting the account: everything it owns goes (apps, previews, keys, sessions). A password
 * account confirms with its password; an account without one must have signed in recently. */
function DeleteAccount() {
  const { user, forget } = useAuth();
  const navigate = useNavigate();
  const [password, setPassword] = useState("");
  const [sure, setSure] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const passwordAccount = user?.provider === "email";
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null); setBusy(true);
    try {
      await api.deleteAccount(passwordAccount ? password : undefined);
      forget();
      navigate("/signin", { replace: true });
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  return (
    <section aria-labelledby="delete-title" className="card space-y-3">
      <h2 id="delete-title" className="text-lg font-semibold">Delete your account</h2>
      <p className="text-sm muted">Your apps, their previews and saved versions, your keys and settings are erased. This cannot be undone.</p>
      <form className="space-y-2" onSubmit={submit}>
        {passwordAccount ? (
          <label className="block text-sm">Current password
            <input type="password" autoComplete="current-password" required className="input mt-1 w-full" value={password} onChange={(e) => setPassword(e.target.value)} />
          </label>
        ) : (
          <p className="text-sm muted">Accounts without a password confirm by having signed in within the last ten minutes.</p>
        )}
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={sure} onChange={(e) => setSure(e.target.checked)} />
          I understand that everything is erased
        </label>
        <ErrorNote error={error} />
        <button type="submit" className="btn-danger" disabled={!sure || busy}>Delete my account</button>
      </form>
    </section>
  );
}
