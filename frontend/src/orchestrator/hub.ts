// The orchestrator hub's client (`GET /api/orchestrator/ws`, protocol in
// src/domain/orchestrator/protocol.rs): authenticates first, subscribes to the projects it is
// asked for, answers every `heartbeat` with `pong`, and after any close reconnects with
// backoff, authenticates and subscribes again. After every authentication, the first included,
// it tells its owner to read what it shows again: events sent before the subscription (while
// the page loaded, or while the socket was down) never reach it.
//
// Invariants: nothing but `authenticate` is sent before `auth_success`; every subscription held
// is re-sent on each connection; `stop()` ends reconnection for good. The socket and the timers
// are injected so the reconnection logic is tested without a network or a clock.
import { parseHubMessage, type ClientMessage, type HubMessage } from "./model";

/** The part of a WebSocket the client uses. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface Timers {
  set(f: () => void, ms: number): unknown;
  clear(id: unknown): void;
}

export type HubStatus = "connecting" | "live" | "offline";

export interface HubOptions {
  url: string;
  /** The access token to authenticate with, asked for on every connection. */
  token: () => Promise<string>;
  onMessage: (m: HubMessage) => void;
  onStatus?: (s: HubStatus) => void;
  /** After each authentication (the subscriptions are in place): read the state again. */
  onResync?: () => void;
  connect?: (url: string) => SocketLike;
  timers?: Timers;
}

const OPEN = 1;

/** Wait before reconnection attempt `n` (1, 2, …): 0.5 s doubling, at most 10 s. */
export function backoffMs(attempt: number): number {
  return Math.min(10_000, 500 * 2 ** Math.max(0, Math.min(attempt - 1, 5)));
}

/** The hub's address; `projectId` is a placement hint (connections naming one project share a
 * hub shard), not a subscription. */
export function hubUrl(projectId?: string, loc: Pick<Location, "protocol" | "host"> = window.location): string {
  const hint = projectId ? `?projectId=${encodeURIComponent(projectId)}` : "";
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/api/orchestrator/ws${hint}`;
}

export class HubClient {
  private readonly o: HubOptions;
  private readonly timers: Timers;
  private sock: SocketLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  private authed = false;
  private stopped = true;
  private readonly subs = new Set<string>();

  constructor(o: HubOptions) {
    this.o = o;
    this.timers = o.timers ?? { set: (f, ms) => setTimeout(f, ms), clear: (id) => clearTimeout(id as ReturnType<typeof setTimeout>) };
  }

  get subscriptions(): string[] { return [...this.subs]; }
  get live(): boolean { return this.authed; }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    const s = this.sock;
    this.sock = null;
    this.authed = false;
    if (s) { s.onclose = null; s.onmessage = null; s.onopen = null; s.onerror = null; s.close(1000, "done"); }
  }

  subscribe(projectId: string): void {
    if (this.subs.has(projectId)) return;
    this.subs.add(projectId);
    if (this.authed) this.send({ type: "subscribe", projectId });
  }

  unsubscribe(projectId: string): void {
    if (!this.subs.delete(projectId)) return;
    if (this.authed) this.send({ type: "unsubscribe", projectId });
  }

  /** Reconnect now instead of waiting out the backoff (the browser came back online). */
  retryNow(): void {
    if (this.stopped || this.sock) return;
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    this.open();
  }

  private status(s: HubStatus) { this.o.onStatus?.(s); }

  private send(m: ClientMessage) {
    if (this.sock && this.sock.readyState === OPEN) this.sock.send(JSON.stringify(m));
  }

  private open() {
    this.timer = null;
    this.status("connecting");
    let sock: SocketLike;
    try {
      sock = (this.o.connect ?? ((u) => new WebSocket(u) as unknown as SocketLike))(this.o.url);
    } catch {
      this.closed(null);
      return;
    }
    this.sock = sock;
    this.authed = false;
    sock.onopen = () => {
      this.o.token().then(
        (token) => {
          if (this.sock !== sock) return;
          this.send({ type: "authenticate", token, clientType: "web" });
        },
        () => { if (this.sock === sock) sock.close(4001, "no token"); },
      );
    };
    sock.onmessage = (ev) => {
      if (this.sock !== sock || typeof ev.data !== "string") return;
      const m = parseHubMessage(ev.data);
      if (!m) return;
      if (m.type === "heartbeat") { this.send({ type: "pong", timestamp: m.timestamp }); return; }
      if (m.type === "auth_success") {
        this.authed = true;
        this.attempt = 0;
        const have = new Set(m.subscriptions);
        for (const p of this.subs) if (!have.has(p)) this.send({ type: "subscribe", projectId: p });
        this.status("live");
        if (this.subs.size > 0 && [...this.subs].every((p) => have.has(p))) this.o.onResync?.();
      }
      // A subscription in place: what was sent to the project before it is read again.
      if (m.type === "subscribed" && this.subs.has(m.projectId)) this.o.onResync?.();
      this.o.onMessage(m);
    };
    sock.onerror = () => { /* a close follows */ };
    sock.onclose = () => this.closed(sock);
  }

  private closed(sock: SocketLike | null) {
    if (sock && this.sock !== sock) return;
    this.sock = null;
    this.authed = false;
    if (this.stopped) return;
    this.status("offline");
    this.attempt += 1;
    this.timer = this.timers.set(() => this.open(), backoffMs(this.attempt));
  }
}
