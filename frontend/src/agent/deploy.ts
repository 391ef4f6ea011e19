// The app's deployments as the workspace draws them: the server's history
// (`GET /api/apps/:id/deployments`) with the live deploy events folded in. Pure: (view, action) → view.
//
// Invariants:
// - a deployment's status only moves forward (building → live | failed → superseded | undeployed),
//   so a history answer that left the server before an event arrived never moves one back, and
//   events and answers may land in any order;
// - a deployment going live supersedes only older live ones (a late event never takes down a newer
//   deployment);
// - the step shown is only ever that of a deployment still building;
// - a deployment only known from an event (its record not fetched yet) is a placeholder (`id` ""),
//   replaced by the record when the history brings it.
import type { Deployment, DeployStatus, DeployStep } from "../api/types";
import type { DeployEvent } from "./events";

export interface DeployView {
  /** Newest first; null until the history has loaded. */
  deployments: Deployment[] | null;
  /** The step each building deployment reached, from events. */
  steps: Record<number, DeployStep>;
  /** Live events applied so far (the panel fetches the full records after each). */
  seen: number;
}

export type DeployAction =
  | { type: "history"; deployments: Deployment[] }
  /** The answer to a deploy or a rollback. */
  | { type: "started"; deployment: Deployment }
  /** The answer to an undeploy. */
  | { type: "undeployed" }
  | { type: "event"; event: DeployEvent };

export function initialDeploy(): DeployView {
  return { deployments: null, steps: {}, seen: 0 };
}

const RANK: Record<DeployStatus, number> = { building: 0, live: 1, failed: 1, superseded: 2, undeployed: 2 };

/** A deployment known only by its number (from an event). */
export function placeholder(number: number): Deployment {
  return {
    id: "", appId: "", number, sourceVersion: 0, rollbackOf: null, status: "building", url: null, size: 0,
    contentHash: null, error: null, createdAt: 0, updatedAt: 0,
  };
}

export function isPlaceholder(d: Deployment): boolean {
  return d.id === "";
}

/** `incoming` over `known` (same number): the record's facts, the furthest status of the two. */
function merge(known: Deployment | undefined, incoming: Deployment): Deployment {
  if (!known) return incoming;
  const base = isPlaceholder(incoming) && !isPlaceholder(known) ? known : incoming;
  if (RANK[known.status] > RANK[incoming.status]) {
    return { ...base, status: known.status, url: known.url ?? base.url, error: known.error ?? base.error };
  }
  return { ...base, status: incoming.status, url: incoming.url ?? known.url, error: incoming.error ?? known.error };
}

function upsert(list: Deployment[], d: Deployment): Deployment[] {
  const known = list.find((x) => x.number === d.number);
  const next = known ? list.map((x) => (x.number === d.number ? merge(x, d) : x)) : [...list, d];
  return next.sort((a, b) => b.number - a.number);
}

/** Drops the steps of deployments no longer building. */
function prune(steps: Record<number, DeployStep>, list: Deployment[]): Record<number, DeployStep> {
  const out: Record<number, DeployStep> = {};
  for (const d of list) if (d.status === "building" && steps[d.number]) out[d.number] = steps[d.number]!;
  return out;
}

function withList(v: DeployView, list: Deployment[], steps = v.steps): DeployView {
  return { ...v, deployments: list, steps: prune(steps, list) };
}

export function reduceDeploy(v: DeployView, a: DeployAction): DeployView {
  const list = v.deployments ?? [];
  switch (a.type) {
    case "history": {
      let next = list.filter((d) => isPlaceholder(d) && !a.deployments.some((x) => x.number === d.number));
      for (const d of a.deployments) next = upsert(next, merge(list.find((x) => x.number === d.number), d));
      return withList(v, next);
    }
    case "started":
      return withList(v, upsert(list, a.deployment));
    case "undeployed":
      return withList(v, list.map((d) => (d.status === "live" ? { ...d, status: "undeployed" as const } : d)));
    case "event":
      return { ...event(v, list, a.event), seen: v.seen + 1 };
  }
}

function event(v: DeployView, list: Deployment[], e: DeployEvent): DeployView {
  const n = e.deployment;
  const at = (status: DeployStatus, more: Partial<Deployment> = {}) => {
    const known = list.find((d) => d.number === n);
    return upsert(list, { ...(known ?? placeholder(n)), status, ...more });
  };
  switch (e.type) {
    case "deploy_started":
      return withList(v, at("building"));
    case "deploy_progress":
      return withList(v, at("building"), { ...v.steps, [n]: e.step });
    case "deploy_complete": {
      const next = at("live", { url: e.url }).map((d) => (d.status === "live" && d.number < n ? { ...d, status: "superseded" as const } : d));
      return withList(v, next);
    }
    case "deploy_failed":
      return withList(v, at("failed", { error: { message: e.message, errors: e.errors ?? [] } }));
  }
}

/** The newest deployment still building, if any. */
export function building(v: DeployView): Deployment | undefined {
  return v.deployments?.find((d) => d.status === "building");
}

/** The deployment serving the app, if any. */
export function live(v: DeployView): Deployment | undefined {
  return v.deployments?.find((d) => d.status === "live");
}

/** The newest deployment, when it failed (an older failure is history, not news). */
export function lastFailure(v: DeployView): Deployment | undefined {
  const newest = v.deployments?.[0];
  return newest?.status === "failed" ? newest : undefined;
}

/** What a building deployment is doing, in words. */
export function stepText(step: DeployStep | undefined): string {
  switch (step) {
    case "building": return "Building the app…";
    case "storing": return "Storing the build…";
    case "publishing": return "Publishing…";
    default: return "Starting…";
  }
}
