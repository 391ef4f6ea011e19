//! Log routes: history (`?since=`), a live Server-Sent Events stream that first replays
//! from `since` (or `Last-Event-ID`), and the structured errors parsed from the log.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use byte_protocol::diagnostic::ErrorsReply;
use byte_protocol::logs::LogsReply;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use super::{AppState, QueryParams, Ws};
use crate::api_error::ApiResult;
use crate::logs::LogLine;
use crate::workspace::Workspace;

#[derive(Deserialize)]
pub struct SinceQuery {
    since: Option<u64>,
}

/// `GET /v1/workspaces/{ws}/logs?since=` → `{"lines":[...],"nextSeq"}`.
pub async fn history(
    State(state): State<AppState>,
    Ws(id): Ws,
    QueryParams(q): QueryParams<SinceQuery>,
) -> ApiResult<Json<LogsReply>> {
    let ws = state.workspace(&id)?;
    let (lines, next_seq) = ws.logs.since(q.since.unwrap_or(0));
    Ok(Json(LogsReply { lines, next_seq }))
}

fn event(line: &LogLine) -> Event {
    Event::default()
        .event("log")
        .id(line.seq.to_string())
        .data(serde_json::to_string(line).unwrap_or_default())
}

/// State of one live log stream.
struct LiveLog {
    /// Held lines to send first (`since`).
    replay: std::vec::IntoIter<LogLine>,
    /// Lines refetched from the ring after the channel lagged.
    backlog: std::vec::IntoIter<LogLine>,
    rx: broadcast::Receiver<LogLine>,
    /// The next sequence number to send; older live lines duplicate the replay.
    next: u64,
    ws: Arc<Workspace>,
    shutdown: watch::Receiver<bool>,
    closed: watch::Receiver<bool>,
}

/// `GET /v1/workspaces/{ws}/logs/stream?since=` → `text/event-stream` of `event: log`.
pub async fn stream(
    State(state): State<AppState>,
    Ws(id): Ws,
    QueryParams(q): QueryParams<SinceQuery>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let ws = state.workspace(&id)?;
    // A reconnecting EventSource sends the last id it saw.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|id| id + 1);
    let since = resume.or(q.since);
    // Subscribe before taking the snapshot so nothing falls between the two.
    let rx = ws.logs.subscribe();
    let (replay, next) = match since {
        Some(s) => ws.logs.since(s),
        None => (Vec::new(), ws.logs.next_seq()),
    };
    let st = LiveLog {
        replay: replay.into_iter(),
        backlog: Vec::new().into_iter(),
        rx,
        next,
        closed: ws.closed.subscribe(),
        ws,
        shutdown: state.shutdown_receiver(),
    };
    let events = stream::unfold(st, |mut st| async move {
        loop {
            if let Some(line) = st.replay.next().or_else(|| st.backlog.next()) {
                st.next = st.next.max(line.seq + 1);
                return Some((Ok(event(&line)), st));
            }
            let received = tokio::select! {
                r = st.rx.recv() => r,
                _ = st.shutdown.wait_for(|stop| *stop) => return None,
                _ = st.closed.wait_for(|closed| *closed) => return None,
            };
            match received {
                Ok(line) if line.seq < st.next => continue,
                Ok(line) => {
                    st.next = line.seq + 1;
                    return Some((Ok(event(&line)), st));
                }
                // Too slow for the channel: fill the gap from the ring buffer instead.
                Err(RecvError::Lagged(_)) => {
                    let (missed, _) = st.ws.logs.since(st.next);
                    st.backlog = missed.into_iter();
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}

/// `GET /v1/workspaces/{ws}/errors?since=` → `{"errors":[{file,line,column,message,kind}]}`.
pub async fn errors(
    State(state): State<AppState>,
    Ws(id): Ws,
    QueryParams(q): QueryParams<SinceQuery>,
) -> ApiResult<Json<ErrorsReply>> {
    let ws = state.workspace(&id)?;
    let errors = ws.errors(&state.client, q.since.unwrap_or(0)).await;
    Ok(Json(ErrorsReply { errors }))
}
