import { describe, expect, it } from "vitest";
import type { AgentEvent, StateSnapshot } from "./events";
import { initialState, phaseProgress, reduce, type WorkspaceState } from "./reducer";

const snap = (over: Partial<StateSnapshot> = {}): AgentEvent => ({
  type: "state", appId: "a1", status: "idle", phases: [], files: [], queuedMessages: 0, version: 0, lastEventId: 0, ...over,
});
const run = (events: AgentEvent[], s: WorkspaceState = initialState("a1")) =>
  events.reduce((st, event) => reduce(st, { type: "event", event }), s);

// One whole run as the server stores it (ids 1..9), chunks in between (no ids).
const RUN: AgentEvent[] = [
  { id: 1, type: "phase_start", phase: "planning", message: "Planning the app" },
  { id: 2, type: "phase_complete", phase: "planning", message: "Planned" },
  { id: 3, type: "phase_start", phase: "Foundation", message: "the greeting component" },
  { type: "file_chunk", path: "src/Hello.tsx", chunk: "export default " },
  { type: "file_chunk", path: "src/Hello.tsx", chunk: "function Hello() {}" },
  { id: 4, type: "file_generated", path: "src/Hello.tsx", content: "export default function Hello() {}\n" },
  { id: 5, type: "phase_complete", phase: "Foundation", message: "done" },
  { id: 6, type: "phase_start", phase: "Core", message: "the page" },
  { id: 7, type: "file_generated", path: "src/App.tsx", content: "app\n" },
  { id: 8, type: "phase_complete", phase: "Core", message: "done" },
  { id: 9, type: "done", status: "completed" },
];

describe("agent reducer", () => {
  it("follows a run live: phases, streamed file, written files, done", () => {
    let s = run([snap(), ...RUN.slice(0, 5)]);
    expect(s.status).toBe("generating");
    expect(s.live).toEqual({ path: "src/Hello.tsx", text: "export default function Hello() {}" });
    s = run(RUN.slice(5), s);
    expect(s.live).toBeNull();
    expect(s.files["src/Hello.tsx"]?.content).toContain("Hello");
    expect(s.timeline.map((t) => [t.name, t.status, t.written])).toEqual([
      ["planning", "complete", []],
      ["Foundation", "complete", ["src/Hello.tsx"]],
      ["Core", "complete", ["src/App.tsx"]],
    ]);
    expect(s.status).toBe("complete");
    expect(s.outcome).toBe("completed");
    expect(s.lastEventId).toBe(9);
    expect(s.version).toBe(2);
  });

  it("ignores duplicate events", () => {
    const once = run([snap(), ...RUN]);
    const twice = run([snap(), ...RUN, ...RUN.filter((e) => e.id !== undefined)]);
    expect(twice.timeline).toEqual(once.timeline);
    expect(twice.chat).toEqual(once.chat);
    expect(twice.errors).toEqual(once.errors);
  });

  it("holds an event that arrives ahead of its predecessor until the gap fills", () => {
    const base = run([snap(), ...RUN.slice(0, 6)]); // up to id 4
    let s = run([RUN[8]!], base); // id 7 before 5 and 6
    expect(s.files["src/App.tsx"]).toBeUndefined();
    expect(s.pending.map((e) => e.id)).toEqual([7]);
    s = run([RUN[6]!], s); // id 5
    expect(s.pending.map((e) => e.id)).toEqual([7]);
    s = run([RUN[7]!], s); // id 6: 6 then 7 apply
    expect(s.pending).toEqual([]);
    expect(s.lastEventId).toBe(7);
    expect(s.timeline.find((t) => t.name === "Core")?.written).toEqual(["src/App.tsx"]);
  });

  it("applies waiting events in order on flush when a gap never fills", () => {
    let s = run([snap(), RUN[0]!, { id: 5, type: "preview_ready", url: "http://p" }]);
    expect(s.previewUrl).toBeUndefined();
    s = reduce(s, { type: "flush" });
    expect(s.previewUrl).toBe("http://p");
    expect(s.lastEventId).toBe(5);
  });

  it("replays after a reconnect without losing or doubling anything", () => {
    // First connection saw ids 1..4, then dropped.
    const before = run([snap(), ...RUN.slice(0, 6)]);
    expect(before.lastEventId).toBe(4);
    // Reconnect with since=4: the snapshot (taken at id 8) first, then 5..8 replayed, then live 9.
    const after = run([
      snap({ status: "generating", lastEventId: 8, currentPhase: undefined, version: 2,
        phases: [{ name: "Foundation", kind: "foundation", status: "complete" }, { name: "Core", kind: "core", status: "complete" }],
        files: [{ path: "src/Hello.tsx", bytes: 35 }, { path: "src/App.tsx", bytes: 4 }] }),
      ...RUN.slice(6, 10),
      RUN[10]!,
    ], before);
    const fresh = run([snap(), ...RUN]);
    expect(after.timeline.map((t) => [t.name, t.status, t.written])).toEqual(fresh.timeline.map((t) => [t.name, t.status, t.written]));
    expect(after.files["src/App.tsx"]?.content).toBe("app\n");
    expect(after.status).toBe("complete");
    expect(after.lastEventId).toBe(9);
    expect(after.chat).toEqual(fresh.chat);
  });

  it("takes a snapshot mid-phase as the truth and does not move statuses back on replay", () => {
    // A fresh page mid-run: snapshot at id 7 (Core implementing), then the stored events 1..7.
    const s = run([
      snap({ status: "generating", lastEventId: 7, currentPhase: "Core", queuedMessages: 1,
        phases: [{ name: "Foundation", kind: "foundation", status: "complete" }, { name: "Core", kind: "core", status: "implementing" }],
        files: [{ path: "src/Hello.tsx", bytes: 35 }, { path: "src/App.tsx", bytes: 4 }] }),
      ...RUN.slice(0, 9),
    ]);
    expect(s.status).toBe("generating");
    expect(s.queued).toBe(1);
    expect(s.timeline.map((t) => [t.name, t.status])).toEqual([
      ["planning", "complete"], ["Foundation", "complete"], ["Core", "implementing"],
    ]);
    expect(s.files["src/Hello.tsx"]?.content).toContain("Hello");
    expect(s.lastEventId).toBe(7);
    // Live from here on.
    const done = run([RUN[9]!, RUN[10]!], s);
    expect(done.timeline.find((t) => t.name === "Core")?.status).toBe("complete");
    expect(done.status).toBe("complete");
  });

  it("keeps a stale snapshot from undoing newer events, but takes its queue count", () => {
    const s = run([snap(), ...RUN.slice(0, 8)]); // up to id 6, Core running
    const t = run([snap({ status: "planning", lastEventId: 2, queuedMessages: 3 })], s);
    expect(t.status).toBe("generating");
    expect(t.queued).toBe(3);
  });

  it("shows queued follow-ups and each edit once in the chat", () => {
    let s = run([snap(), ...RUN.slice(0, 8)]);
    s = reduce(s, { type: "sent", text: "make it blue" });
    s = run([snap({ status: "generating", lastEventId: 6, currentPhase: "Core", queuedMessages: 1,
      phases: [{ name: "Foundation", kind: "foundation", status: "complete" }, { name: "Core", kind: "core", status: "implementing" }],
      files: [{ path: "src/Hello.tsx", bytes: 35 }] })], s);
    expect(s.queued).toBe(1);
    s = run([...RUN.slice(8, 10), { id: 10, type: "phase_start", phase: "edit", message: "make it blue" }], s);
    s = run([snap({ status: "generating", lastEventId: 10, editing: "make it blue", queuedMessages: 0, phases: [],
      files: [{ path: "src/Hello.tsx", bytes: 35 }, { path: "src/App.tsx", bytes: 4 }] })], s);
    expect(s.queued).toBe(0);
    expect(s.editing).toBe("make it blue");
    expect(s.chat.filter((c) => c.role === "user").map((c) => c.text)).toEqual(["make it blue"]);
    s = run([
      { id: 11, type: "file_generated", path: "src/App.tsx", content: "blue\n" },
      { id: 12, type: "phase_complete", phase: "edit", message: "applied" },
      { id: 13, type: "done", status: "completed" },
    ], s);
    expect(s.files["src/App.tsx"]).toMatchObject({ content: "blue\n", previous: "app\n" });
    const edit = s.timeline.filter((t) => t.name === "edit");
    expect(edit).toHaveLength(1);
    expect(edit[0]).toMatchObject({ status: "complete", written: ["src/App.tsx"] });
    expect(s.editing).toBeUndefined();
  });

  it("ends a failed run with the reason in words", () => {
    const s = run([snap(), ...RUN.slice(0, 3),
      { id: 4, type: "error", code: "E005", message: "the model's output was cut off", recoverable: false },
      { id: 5, type: "done", status: "failed" }]);
    expect(s.status).toBe("failed");
    expect(s.failure).toBe("the model's output was cut off");
    expect(s.timeline.find((t) => t.name === "Foundation")?.status).toBe("failed");
    expect(s.chat.at(-1)?.text).toContain("cut off");
    expect(s.errors).toHaveLength(1);
  });

  it("stops and resumes", () => {
    let s = run([snap(), ...RUN.slice(0, 4), { id: 4, type: "done", status: "stopped" }]);
    expect(s.status).toBe("stopped");
    expect(s.live).toBeNull();
    s = run([{ id: 5, type: "phase_start", phase: "Foundation", message: "Resuming Foundation" }], s);
    expect(s.status).toBe("generating");
    expect(s.timeline.filter((t) => t.name === "Foundation")).toHaveLength(1);
  });

  it("drops a deleted file", () => {
    const s = run([snap(), ...RUN, { id: 10, type: "file_deleted", path: "src/App.tsx" }]);
    expect(Object.keys(s.files)).toEqual(["src/Hello.tsx"]);
  });

  it("shows each phase's planned files against the written ones, from events and from a snapshot", () => {
    const planned: AgentEvent[] = [
      ...RUN.slice(0, 3),
      { id: 4, type: "phase_planned", phase: "Foundation", files: ["src/Hello.tsx", "src/Other.tsx"] },
      { id: 5, type: "file_generated", path: "src/Hello.tsx", content: "hello\n" },
    ];
    const live = run([snap(), ...planned]);
    const foundation = live.timeline.find((t) => t.name === "Foundation")!;
    expect([foundation.planned, foundation.written]).toEqual([["src/Hello.tsx", "src/Other.tsx"], ["src/Hello.tsx"]]);
    expect(phaseProgress(foundation)).toEqual({ done: 1, planned: 2, extra: 0, percent: 50 });

    // A page that connects mid-phase gets the same from the snapshot alone (its events pruned).
    const mid = run([snap({
      status: "generating", currentPhase: "Foundation", lastEventId: 5,
      phases: [
        { name: "Foundation", kind: "foundation", status: "implementing", plannedFiles: ["src/Hello.tsx", "src/Other.tsx"], writtenFiles: ["src/Hello.tsx"] },
        { name: "Core", kind: "core", status: "planned", plannedFiles: ["src/App.tsx"], writtenFiles: [] },
      ],
    })]);
    expect(mid.timeline.map((t) => [t.name, phaseProgress(t).percent])).toEqual([["Foundation", 50], ["Core", 0]]);
    // …and live events after it move the phase on.
    const after = run([{ id: 6, type: "file_generated", path: "src/Other.tsx", content: "x" }, { id: 7, type: "file_generated", path: "src/extra.ts", content: "y" }], mid);
    expect(phaseProgress(after.timeline[0]!)).toEqual({ done: 2, planned: 2, extra: 1, percent: 100 });
    // A replayed plan (at or below the snapshot) changes nothing the snapshot said.
    const replay = run([{ id: 4, type: "phase_planned", phase: "Foundation", files: ["src/Hello.tsx", "src/Other.tsx"] }], mid);
    expect(replay.timeline).toEqual(mid.timeline);
  });

  it("counts the run's tokens per model: snapshot totals, then live usage, reset by a new run", () => {
    const use = (id: number, model: string, total: number): AgentEvent => ({
      id, type: "usage", operation: "implementation", provider: "custom", model, promptTokens: total - 1, completionTokens: 1, totalTokens: total,
    });
    const usage = [{ provider: "custom" as const, model: "plan", calls: 1, promptTokens: 9, completionTokens: 1, totalTokens: 10 }];
    let s = run([snap({ status: "generating", lastEventId: 3, usage }), use(2, "plan", 10), use(3, "plan", 10)]);
    expect(s.usage).toEqual(usage); // ids 2 and 3 are in the snapshot's totals already
    s = run([use(4, "plan", 5), use(5, "write", 20)], s);
    expect(s.usage.map((m) => [m.model, m.calls, m.totalTokens])).toEqual([["plan", 2, 15], ["write", 1, 20]]);
    s = run([use(5, "write", 20)], s); // a duplicate
    expect(s.usage.map((m) => m.calls)).toEqual([2, 1]);
    s = run([{ id: 6, type: "phase_start", phase: "planning", message: "Planning the app" }, use(7, "plan", 3)], s);
    expect(s.usage.map((m) => [m.model, m.totalTokens])).toEqual([["plan", 3]]);
  });
});
