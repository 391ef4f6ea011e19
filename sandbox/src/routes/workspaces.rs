//! Workspace lifecycle: create (optionally from a template), inspect, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use byte_protocol::workspace::{CreateWorkspace, WorkspaceCreated, WorkspaceInfo};

use super::{AppState, JsonBody, Ws};
use crate::api_error::ApiResult;

/// `PUT /v1/workspaces/{ws}` → `{"id","created"}`.
pub async fn create(
    State(state): State<AppState>,
    Ws(id): Ws,
    JsonBody(body): JsonBody<CreateWorkspace>,
) -> ApiResult<Json<WorkspaceCreated>> {
    let (ws, created) = state.registry.create(id, body.template.as_deref()).await?;
    Ok(Json(WorkspaceCreated {
        id: ws.id.as_str().to_string(),
        created,
    }))
}

/// `GET /v1/workspaces/{ws}` → `{"id","server"}`.
pub async fn get(State(state): State<AppState>, Ws(id): Ws) -> ApiResult<Json<WorkspaceInfo>> {
    let ws = state.workspace(&id)?;
    Ok(Json(WorkspaceInfo {
        id: ws.id.as_str().to_string(),
        server: ws.server.info(),
    }))
}

/// `DELETE /v1/workspaces/{ws}` → 204 after stopping its processes and removing it.
pub async fn delete(State(state): State<AppState>, Ws(id): Ws) -> ApiResult<StatusCode> {
    state.registry.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
