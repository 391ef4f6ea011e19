// A project as a page shows it: loaded from the API, kept current by the hub. The page's state
// is `reduceProject`'s; this hook loads the project whenever the state asks for it (the first
// time, after events that carry too little, after a reconnection) and feeds it every hub event.
import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { api } from "../api/client";
import { ApiError } from "../api/errors";
import { HubClient, hubUrl, type HubStatus } from "./hub";
import { initialProjectState, reduceProject, type ProjectAction } from "./state";
import { hubToken } from "./token";

export function useProject(projectId: string) {
  const [state, dispatch] = useReducer(reduceProject, projectId, initialProjectState);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [hub, setHub] = useState<HubStatus>("connecting");
  const applied = useRef(0);
  applied.current = state.applied;

  useEffect(() => {
    let gone = false;
    // One status change arrives as several events (ticket_updated, ticket_status_changed, the
    // dependents readied): the reads they ask for are gathered into one.
    const timer = setTimeout(() => {
      const startedAt = applied.current;
      api.project(projectId).then(
        (detail) => { if (!gone) { setLoadError(null); dispatch({ type: "loaded", detail, startedAt }); } },
        (e: unknown) => { if (!gone) setLoadError(e instanceof ApiError ? e : new ApiError(0, "E000", String(e))); },
      );
    }, state.reload === 0 ? 0 : 150);
    return () => { gone = true; clearTimeout(timer); };
  }, [projectId, state.reload]);

  useEffect(() => {
    const client = new HubClient({
      url: hubUrl(projectId),
      token: hubToken,
      onMessage: (event) => dispatch({ type: "event", event }),
      onStatus: setHub,
      onResync: () => dispatch({ type: "reload" }),
    });
    client.subscribe(projectId);
    client.start();
    const online = () => client.retryNow();
    window.addEventListener("online", online);
    return () => { window.removeEventListener("online", online); client.stop(); };
  }, [projectId]);

  const act = useCallback((a: ProjectAction) => dispatch(a), []);
  return { state, dispatch: act, loadError, hub, retry: () => dispatch({ type: "reload" }) };
}
