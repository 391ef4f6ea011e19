import { describe, expect, it } from "vitest";
import { backoffMs, HubClient, hubUrl, type SocketLike, type Timers } from "./hub";
import type { ClientMessage, HubMessage } from "./model";

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: ClientMessage[] = [];
  closedWith: number | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string) { if (this.readyState !== 1) throw new Error("send before open"); this.sent.push(JSON.parse(data) as ClientMessage); }
  close(code = 1000) { this.closedWith = code; this.readyState = 3; }
  // The server's side.
  open() { this.readyState = 1; this.onopen?.({}); }
  deliver(m: HubMessage | string) { this.onmessage?.({ data: typeof m === "string" ? m : JSON.stringify(m) }); }
  drop() { this.readyState = 3; this.onclose?.({}); }
}

class FakeTimers implements Timers {
  pending: { f: () => void; ms: number; id: number }[] = [];
  private n = 0;
  set(f: () => void, ms: number) { this.n += 1; this.pending.push({ f, ms, id: this.n }); return this.n; }
  clear(id: unknown) { this.pending = this.pending.filter((p) => p.id !== id); }
  /** Runs the one waiting timer, returning its delay. */
  fire(): number { const p = this.pending.shift(); if (!p) throw new Error("no timer"); p.f(); return p.ms; }
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const auth = (subs: string[] = []): HubMessage => ({ type: "auth_success", userId: "usr_1", connectionId: "c1", subscriptions: subs });

function setup(token = async () => "tok") {
  const sockets: FakeSocket[] = [];
  const timers = new FakeTimers();
  const got: HubMessage[] = [];
  const statuses: string[] = [];
  let resyncs = 0;
  const client = new HubClient({
    url: "ws://h/api/orchestrator/ws", token, timers,
    connect: (u) => { const s = new FakeSocket(u); sockets.push(s); return s; },
    onMessage: (m) => got.push(m), onStatus: (s) => statuses.push(s), onResync: () => { resyncs += 1; },
  });
  return { client, sockets, timers, got, statuses, resyncs: () => resyncs };
}

describe("the hub client", () => {
  it("authenticates first, then subscribes", async () => {
    const h = setup();
    h.client.subscribe("prj_a");
    h.client.subscribe("prj_b");
    h.client.start();
    const s = h.sockets[0]!;
    expect(s.url).toBe("ws://h/api/orchestrator/ws");
    s.open();
    await tick();
    expect(s.sent).toEqual([{ type: "authenticate", token: "tok", clientType: "web" }]);
    s.deliver(auth([]));
    expect(s.sent.slice(1)).toEqual([{ type: "subscribe", projectId: "prj_a" }, { type: "subscribe", projectId: "prj_b" }]);
    expect(h.statuses).toEqual(["connecting", "live"]);
    expect(h.client.live).toBe(true);
    // Later subscriptions go out at once; unsubscribing too.
    h.client.subscribe("prj_c");
    h.client.unsubscribe("prj_a");
    expect(s.sent.slice(3)).toEqual([{ type: "subscribe", projectId: "prj_c" }, { type: "unsubscribe", projectId: "prj_a" }]);
  });

  it("sends nothing but authenticate before auth_success", async () => {
    const h = setup();
    h.client.start();
    const s = h.sockets[0]!;
    s.open();
    await tick();
    h.client.subscribe("prj_a");
    expect(s.sent).toEqual([{ type: "authenticate", token: "tok", clientType: "web" }]);
    s.deliver(auth());
    expect(s.sent[1]).toEqual({ type: "subscribe", projectId: "prj_a" });
  });

  it("answers every heartbeat with a pong carrying its timestamp", async () => {
    const h = setup();
    h.client.start();
    const s = h.sockets[0]!;
    s.open(); await tick(); s.deliver(auth());
    s.deliver({ type: "heartbeat", timestamp: "2026-12-02T18:00:00Z" });
    s.deliver({ type: "heartbeat", timestamp: "2026-12-02T18:00:30Z" });
    expect(s.sent.filter((m) => m.type === "pong")).toEqual([
      { type: "pong", timestamp: "2026-12-02T18:00:00Z" }, { type: "pong", timestamp: "2026-12-02T18:00:30Z" },
    ]);
    expect(h.got.map((m) => m.type)).toEqual(["auth_success"]);
  });

  it("passes project events on and ignores frames that are not hub messages", async () => {
    const h = setup();
    h.client.start();
    const s = h.sockets[0]!;
    s.open(); await tick(); s.deliver(auth());
    s.deliver("not json");
    s.deliver(JSON.stringify({ type: "mystery" }));
    s.deliver({ type: "ticket_status_changed", projectId: "prj_a", ticketId: "tkt_1", oldStatus: "ready", newStatus: "assigned" });
    expect(h.got.map((m) => m.type)).toEqual(["auth_success", "ticket_status_changed"]);
  });

  it("reconnects with growing backoff, re-subscribes, and asks for a resync after each authentication", async () => {
    let n = 0;
    const h = setup(async () => `tok${++n}`);
    h.client.subscribe("prj_a");
    h.client.subscribe("prj_b");
    h.client.start();
    h.sockets[0]!.open(); await tick();
    h.sockets[0]!.deliver(auth([]));
    expect(h.resyncs()).toBe(0);
    // Events sent while the page loaded, before the subscription, are lost: read again once
    // it is in place.
    h.sockets[0]!.deliver({ type: "subscribed", projectId: "prj_a" });
    expect(h.resyncs()).toBe(1);
    h.sockets[0]!.deliver({ type: "subscribed", projectId: "prj_other" });
    expect(h.resyncs()).toBe(1);

    // The connection drops; two attempts fail before one succeeds.
    h.sockets[0]!.drop();
    expect(h.statuses.at(-1)).toBe("offline");
    expect(h.timers.fire()).toBe(backoffMs(1));
    h.sockets[1]!.drop();
    expect(h.timers.fire()).toBe(backoffMs(2));
    expect(backoffMs(2)).toBeGreaterThan(backoffMs(1));
    const s = h.sockets[2]!;
    s.open(); await tick();
    // A fresh token for each connection that opened (the second never did).
    expect(s.sent).toEqual([{ type: "authenticate", token: "tok2", clientType: "web" }]);
    expect(h.resyncs()).toBe(1);
    // Subscriptions the server restored itself count as in place at once.
    s.deliver(auth(["prj_a", "prj_b"]));
    expect(s.sent.slice(1)).toEqual([]);
    expect(h.resyncs()).toBe(2);

    // A successful connection resets the backoff.
    s.drop();
    expect(h.timers.fire()).toBe(backoffMs(1));
  });

  it("caps the backoff", () => {
    expect(backoffMs(1)).toBe(500);
    expect(backoffMs(100)).toBe(10_000);
    for (let i = 1; i < 20; i++) expect(backoffMs(i + 1)).toBeGreaterThanOrEqual(backoffMs(i));
  });

  it("reconnects at once when asked (back online), not twice", () => {
    const h = setup();
    h.client.start();
    h.sockets[0]!.drop();
    expect(h.timers.pending).toHaveLength(1);
    h.client.retryNow();
    expect(h.sockets).toHaveLength(2);
    expect(h.timers.pending).toHaveLength(0);
    h.client.retryNow();
    expect(h.sockets).toHaveLength(2);
  });

  it("closes a socket whose token cannot be had, then tries again", async () => {
    const h = setup(async () => { throw new Error("signed out"); });
    h.client.start();
    h.sockets[0]!.open();
    await tick();
    expect(h.sockets[0]!.closedWith).toBe(4001);
    h.sockets[0]!.drop();
    expect(h.timers.pending).toHaveLength(1);
  });

  it("stops for good: closes the socket and never reconnects", async () => {
    const h = setup();
    h.client.start();
    const s = h.sockets[0]!;
    s.open(); await tick(); s.deliver(auth());
    h.client.stop();
    expect(s.closedWith).toBe(1000);
    s.drop();
    expect(h.timers.pending).toHaveLength(0);
    expect(h.sockets).toHaveLength(1);
  });

  it("builds the socket address from the page's", () => {
    expect(hubUrl(undefined, { protocol: "https:", host: "byte.example" })).toBe("wss://byte.example/api/orchestrator/ws");
    expect(hubUrl("prj_1", { protocol: "http:", host: "localhost:8787" })).toBe("ws://localhost:8787/api/orchestrator/ws?projectId=prj_1");
  });
});
