//! Workspace lifecycle: create (optionally from a template), inspect, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{AppState, JsonBody, Ws};
use crate::api_error::ApiResult;

#[derive(Deserialize)]
pub struct CreateBody {
    template: Option<String>,
}

/// `PUT /v1/workspaces/{ws}` → `{"id","created"}`.
pub async fn create(
    State(state): State<AppState>,
    Ws(id): Ws,
    JsonBody(body): JsonBody<CreateBody>,
) -> ApiResult<Json<Value>> {
    let (ws, created) = state.registry.create(id, body.template.as_deref()).await?;
    Ok(Json(json!({ "id": ws.id.as_str(), "created": created })))
}

/// `GET /v1/workspaces/{ws}` → `{"id","server"}`.
pub async fn get(State(state): State<AppState>, Ws(id): Ws) -> ApiResult<Json<Value>> {
    let ws = state.workspace(&id)?;
    Ok(Json(
        json!({ "id": ws.id.as_str(), "server": ws.server.info() }),
    ))
}

/// `DELETE /v1/workspaces/{ws}` → 204 after stopping its processes and removing it.
pub async fn delete(State(state): State<AppState>, Ws(id): Ws) -> ApiResult<StatusCode> {
    state.registry.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
