import { describe, expect, it } from "vitest";
import type { Deployment } from "../api/types";
import { building, initialDeploy, isPlaceholder, lastFailure, live, reduceDeploy, type DeployAction, type DeployView } from "./deploy";
import type { AgentEvent, DeployEvent } from "./events";
import { parseEvent } from "./events";
import { initialState, reduce, type WorkspaceState } from "./reducer";

const URL1 = "http://0123456789abcdef0123456789abcdef.apps.localhost:8787/";

const dep = (number: number, over: Partial<Deployment> = {}): Deployment => ({
  id: `dep_${number}`, appId: "app_1", number, sourceVersion: number, rollbackOf: null, status: "building", url: null,
  size: 0, contentHash: null, error: null, createdAt: 1_700_000_000 + number, updatedAt: 1_700_000_000 + number, ...over,
});
const ev = (event: DeployEvent): DeployAction => ({ type: "event", event });
const history = (deployments: Deployment[]): DeployAction => ({ type: "history", deployments });
const fold = (actions: DeployAction[], v: DeployView = initialDeploy()) => actions.reduce(reduceDeploy, v);
const statuses = (v: DeployView) => v.deployments?.map((d) => [d.number, d.status]);

describe("deploy view", () => {
  it("follows a deployment from the button to live: placeholder, steps, url, record", () => {
    let v = fold([history([]), ev({ type: "deploy_started", deployment: 1 })]);
    expect(building(v)?.number).toBe(1);
    expect(isPlaceholder(v.deployments![0]!)).toBe(true);
    // The POST's answer replaces the placeholder with the record.
    v = fold([{ type: "started", deployment: dep(1) }, ev({ type: "deploy_progress", deployment: 1, step: "building" })], v);
    expect(isPlaceholder(v.deployments![0]!)).toBe(false);
    expect(v.steps).toEqual({ 1: "building" });
    v = fold([ev({ type: "deploy_progress", deployment: 1, step: "storing" }), ev({ type: "deploy_progress", deployment: 1, step: "publishing" })], v);
    expect(v.steps).toEqual({ 1: "publishing" });
    v = fold([ev({ type: "deploy_complete", deployment: 1, url: URL1 })], v);
    expect(building(v)).toBeUndefined();
    expect(live(v)?.url).toBe(URL1);
    expect(v.steps).toEqual({});
    expect(v.seen).toBe(5);
  });

  it("never moves a deployment back: a history answer older than an event keeps the event's status", () => {
    let v = fold([history([dep(1)]), ev({ type: "deploy_complete", deployment: 1, url: URL1 })]);
    // This answer left the server before the deployment went live.
    v = fold([history([dep(1)])], v);
    expect(statuses(v)).toEqual([[1, "live"]]);
    expect(live(v)?.url).toBe(URL1);
    // A newer answer brings the record's facts (its size) and keeps the status.
    v = fold([history([dep(1, { status: "live", url: URL1, size: 2048 })])], v);
    expect(v.deployments![0]!.size).toBe(2048);
    // A late progress event shows no step for a deployment already live.
    v = fold([ev({ type: "deploy_progress", deployment: 1, step: "publishing" })], v);
    expect(statuses(v)).toEqual([[1, "live"]]);
    expect(v.steps).toEqual({});
  });

  it("a new live deployment supersedes only older ones", () => {
    let v = fold([history([dep(2, { status: "live", url: URL1 }), dep(1, { status: "superseded" })])]);
    v = fold([ev({ type: "deploy_started", deployment: 3 }), ev({ type: "deploy_complete", deployment: 3, url: URL1 })], v);
    expect(statuses(v)).toEqual([[3, "live"], [2, "superseded"], [1, "superseded"]]);
    // A late completion of an older deployment takes nothing down.
    v = fold([ev({ type: "deploy_complete", deployment: 2, url: URL1 })], v);
    expect(statuses(v)).toEqual([[3, "live"], [2, "superseded"], [1, "superseded"]]);
  });

  it("a failed build keeps the previous deployment live and says why, with the build's errors", () => {
    const errors = [{ file: "src/App.tsx", line: 3, column: 7, message: "Cannot find name 'x'", kind: "typescript" }];
    let v = fold([history([dep(1, { status: "live", url: URL1 })]), ev({ type: "deploy_started", deployment: 2 })]);
    v = fold([ev({ type: "deploy_failed", deployment: 2, code: "E007", message: "the build failed", errors })], v);
    expect(statuses(v)).toEqual([[2, "failed"], [1, "live"]]);
    expect(lastFailure(v)?.error).toEqual({ message: "the build failed", errors });
    expect(live(v)?.number).toBe(1);
    // The record from the history keeps the failure (and a later success makes it history).
    v = fold([history([dep(2, { status: "failed", error: { message: "the build failed", errors } }), dep(1, { status: "live", url: URL1 })])], v);
    expect(lastFailure(v)?.number).toBe(2);
    v = fold([ev({ type: "deploy_started", deployment: 3 }), ev({ type: "deploy_complete", deployment: 3, url: URL1 })], v);
    expect(lastFailure(v)).toBeUndefined();
  });

  it("undeploy takes the live deployment down; a rollback is a new deployment", () => {
    let v = fold([history([dep(2, { status: "live", url: URL1 }), dep(1, { status: "superseded" })])]);
    v = fold([{ type: "started", deployment: dep(3, { rollbackOf: 1 }) }], v);
    expect(building(v)?.rollbackOf).toBe(1);
    v = fold([ev({ type: "deploy_complete", deployment: 3, url: URL1 }), { type: "undeployed" }], v);
    expect(statuses(v)).toEqual([[3, "undeployed"], [2, "superseded"], [1, "superseded"]]);
    expect(live(v)).toBeUndefined();
  });

  it("the history polled while building catches up on events missed while reconnecting", () => {
    let v = fold([history([]), ev({ type: "deploy_started", deployment: 1 }), ev({ type: "deploy_progress", deployment: 1, step: "building" })]);
    // The socket dropped; the poll brings the outcome.
    v = fold([history([dep(1, { status: "live", url: URL1, size: 10 })])], v);
    expect(building(v)).toBeUndefined();
    expect(live(v)?.url).toBe(URL1);
    expect(v.steps).toEqual({});
  });
});

describe("deploy events in the workspace", () => {
  const snap = (lastEventId: number): AgentEvent => ({
    type: "state", appId: "a1", status: "complete", phases: [], files: [], queuedMessages: 0, version: 2, lastEventId,
  });
  const run = (events: AgentEvent[], s: WorkspaceState = initialState("a1")) =>
    events.reduce((st, event) => reduce(st, { type: "event", event }), s);

  it("parses the four deploy events", () => {
    for (const type of ["deploy_started", "deploy_progress", "deploy_complete", "deploy_failed"]) {
      expect(parseEvent(JSON.stringify({ type, deployment: 1 }))?.type).toBe(type);
    }
  });

  it("applies live deploy events and leaves replayed ones to the history", () => {
    // Replayed (at or below the snapshot): an old deployment's story is not news.
    let s = run([snap(3), { id: 2, type: "deploy_started", deployment: 1 }, { id: 3, type: "deploy_complete", deployment: 1, url: URL1 }]);
    expect(s.deploy.deployments).toBeNull();
    expect(s.lastEventId).toBe(3);
    // Live: the deployment shows up and moves.
    s = run([{ id: 4, type: "deploy_started", deployment: 2 }, { id: 5, type: "deploy_progress", deployment: 2, step: "storing" }], s);
    expect(building(s.deploy)?.number).toBe(2);
    expect(s.deploy.steps).toEqual({ 2: "storing" });
    // Duplicates are dropped like any stored event's.
    s = run([{ id: 5, type: "deploy_progress", deployment: 2, step: "building" }], s);
    expect(s.deploy.steps).toEqual({ 2: "storing" });
    s = reduce(s, { type: "deploy", action: history([dep(2, { status: "live", url: URL1 })]) });
    expect(live(s.deploy)?.number).toBe(2);
    // The run's own state is untouched by deployments.
    expect(s.status).toBe("complete");
    expect(s.version).toBe(2);
  });
});
