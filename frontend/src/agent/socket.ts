// The agent's WebSocket, reconnecting by itself: every (re)connection asks for the events after
// the last one applied (`?since=N`); the server answers with the `state` snapshot first, then
// the missed stored events, then live ones (the reducer keeps that order safe). Every
// ACK_EVERY messages it tells the server how many it has received on this socket: the server
// closes a socket that leaves 1024 unacknowledged (a reader that cannot keep up), and this hook
// then reconnects from the last event applied like after any other close.
import { useCallback, useEffect, useReducer, useRef } from "react";
import { parseEvent, type ClientCommand } from "./events";
import { initialState, reduce, type Action, type WorkspaceState } from "./reducer";

/** Messages between two acknowledgements (well inside the server's bound of 1024). */
export const ACK_EVERY = 64;

/** The acknowledgement to send after the `received`th message, if one is due. */
export function ackAfter(received: number): ClientCommand | null {
  return received % ACK_EVERY === 0 ? { type: "ack", received } : null;
}

export function socketUrl(appId: string, since: number, loc: Location = window.location): string {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${loc.host}/api/agent/${encodeURIComponent(appId)}/ws?since=${since}`;
}

export function useAgent(appId: string, enabled: boolean) {
  const [state, dispatch] = useReducer(reduce, appId, initialState);
  const stateRef = useRef<WorkspaceState>(state);
  stateRef.current = state;
  const ws = useRef<WebSocket | null>(null);
  const outbox = useRef<ClientCommand[]>([]);

  useEffect(() => {
    if (!enabled) return;
    let closed = false;
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connect = () => {
      const sock = new WebSocket(socketUrl(appId, stateRef.current.lastEventId));
      ws.current = sock;
      let received = 0;
      sock.onopen = () => {
        attempt = 0;
        dispatch({ type: "connected", connected: true });
        for (const c of outbox.current.splice(0)) sock.send(JSON.stringify(c));
      };
      sock.onmessage = (m) => {
        received += 1;
        const ack = ackAfter(received);
        if (ack && sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify(ack));
        const e = typeof m.data === "string" ? parseEvent(m.data) : null;
        if (e) dispatch({ type: "event", event: e });
      };
      sock.onclose = () => {
        dispatch({ type: "connected", connected: false });
        if (ws.current === sock) ws.current = null;
        if (closed) return;
        attempt += 1;
        timer = setTimeout(connect, Math.min(5000, 300 * 2 ** Math.min(attempt, 5)));
      };
    };
    connect();
    const online = () => { if (!ws.current) { clearTimeout(timer); connect(); } };
    window.addEventListener("online", online);
    return () => {
      closed = true;
      clearTimeout(timer);
      window.removeEventListener("online", online);
      ws.current?.close();
      ws.current = null;
    };
  }, [appId, enabled]);

  // An event that skipped ahead waits for its predecessor only so long.
  useEffect(() => {
    if (state.pending.length === 0) return;
    const t = setTimeout(() => dispatch({ type: "flush" }), 1500);
    return () => clearTimeout(t);
  }, [state.pending]);

  const send = useCallback((c: ClientCommand) => {
    const sock = ws.current;
    if (sock && sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify(c));
    else outbox.current.push(c);
  }, []);

  return { state, send, dispatch: dispatch as (a: Action) => void };
}
