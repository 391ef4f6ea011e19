//! Preview route: any method on `/v1/workspaces/{ws}/preview/*` goes to the dev server,
//! waiting for a starting server to become ready; a server that is not running is a 503.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Response;

use super::{AppState, Ws};
use crate::api_error::{ApiError, ApiResult};
use crate::process::Status;
use crate::proxy;

pub async fn forward(
    State(state): State<AppState>,
    Ws(id): Ws,
    req: Request,
) -> ApiResult<Response<Body>> {
    let ws = state.workspace(&id)?;
    let mut info = ws.server.info();
    if info.status == Status::Starting {
        info = ws.server.wait_ready(state.config.ready_timeout).await;
    }
    let port = match (info.status, info.port) {
        (Status::Running, Some(port)) => port,
        (Status::Starting, _) => {
            return Err(ApiError::unavailable("the dev server is still starting"))
        }
        (Status::Crashed, _) => {
            let code = info
                .exit_code
                .map_or("a signal".to_string(), |c| format!("code {c}"));
            return Err(ApiError::unavailable(format!(
                "the dev server crashed (exit {code}); see the logs"
            )));
        }
        _ => return Err(ApiError::unavailable("the dev server is not running")),
    };
    // The raw (still percent-encoded) path after `/v1/workspaces/{ws}/preview`, plus the query.
    let path = match req.uri().path().splitn(6, '/').nth(5) {
        Some(rest) => format!("/{rest}"),
        None => "/".to_string(),
    };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let module = (req.method() == axum::http::Method::GET)
        .then(|| crate::hmr::served_file(&path_and_query))
        .flatten();
    // A file written a moment ago must be what the preview shows: a module whose transform
    // already holds exactly the bytes last written goes on at once; otherwise wait until
    // the dev server has reported the writes (at once when it never served the file).
    ws.watch_dev_server(port);
    let current = match module.as_deref().and_then(|f| ws.preview.owed_content(f)) {
        Some(hash) => {
            crate::hmr::content_is_current(&state.client, port, &path_and_query, hash).await
        }
        None => false,
    };
    if !current {
        ws.settle_writes().await;
    }
    if let Some(file) = module {
        ws.preview.served(port, file);
    }
    Ok(proxy::forward(
        &state.client,
        port,
        &path_and_query,
        req,
        state.shutdown_receiver(),
    )
    .await)
}
