//! Dev-server routes: status, start, stop, restart (see `crate::process` for the states).

use axum::extract::State;
use axum::Json;
use byte_protocol::exec::MAX_COMMAND_BYTES;
use byte_protocol::process::StartRequest;

use super::{AppState, JsonBody, Ws};
use crate::api_error::{ApiError, ApiResult};
use crate::process::ServerInfo;

fn checked(command: Option<String>) -> ApiResult<Option<String>> {
    match command {
        Some(c) if c.trim().is_empty() || c.contains('\0') || c.len() > MAX_COMMAND_BYTES => {
            Err(ApiError::field(
                "command",
                "`command` is empty, too long or contains a NUL byte",
            ))
        }
        other => Ok(other),
    }
}

/// `GET /v1/workspaces/{ws}/process`.
pub async fn status(State(state): State<AppState>, Ws(id): Ws) -> ApiResult<Json<ServerInfo>> {
    Ok(Json(state.workspace(&id)?.server.info()))
}

/// `POST /v1/workspaces/{ws}/process/start` `{"command"?}`; idempotent while starting/running.
pub async fn start(
    State(state): State<AppState>,
    Ws(id): Ws,
    JsonBody(body): JsonBody<StartRequest>,
) -> ApiResult<Json<ServerInfo>> {
    let ws = state.workspace(&id)?;
    Ok(Json(ws.server.start(checked(body.command)?).await?))
}

/// `POST /v1/workspaces/{ws}/process/stop`.
pub async fn stop(State(state): State<AppState>, Ws(id): Ws) -> ApiResult<Json<ServerInfo>> {
    Ok(Json(state.workspace(&id)?.server.stop().await))
}

/// `POST /v1/workspaces/{ws}/process/restart` `{"command"?}` (default: the last command).
pub async fn restart(
    State(state): State<AppState>,
    Ws(id): Ws,
    JsonBody(body): JsonBody<StartRequest>,
) -> ApiResult<Json<ServerInfo>> {
    let ws = state.workspace(&id)?;
    Ok(Json(ws.server.restart(checked(body.command)?).await?))
}
