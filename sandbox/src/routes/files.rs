//! File routes: batch write, read, delete, tree. The blocking file-system work runs on the
//! blocking pool; confinement rules live in `crate::paths` and `crate::files`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use byte_protocol::files::{Tree, WriteFiles, Written};
use serde::Deserialize;

use super::{AppState, JsonBody, QueryParams, Ws};
use crate::api_error::{ApiError, ApiResult};
use crate::files as fileops;

#[derive(Deserialize)]
pub struct PathQuery {
    path: Option<String>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal("file operation was interrupted"))?
}

/// `POST /v1/workspaces/{ws}/files` `{"files":[{"path","content","encoding"?}]}` → `{"written":[...]}`.
pub async fn write(
    State(state): State<AppState>,
    Ws(id): Ws,
    JsonBody(body): JsonBody<WriteFiles>,
) -> ApiResult<Json<Written>> {
    let ws = state.workspace(&id)?;
    let jail = state.registry.jail();
    if jail.is_confined() {
        let adding = body.files.iter().map(|f| f.content.len() as u64).sum();
        ws.check_disk_room(adding, jail.limits().disk_bytes).await?;
    }
    let root = ws.root.clone();
    let owner = jail.owner();
    let (written, hashes) = blocking(move || {
        let writes = fileops::validate_batch(&root, body.files)?;
        let hashes: Vec<[u8; 32]> = writes
            .iter()
            .map(fileops::ValidWrite::content_hash)
            .collect();
        Ok((fileops::write_all(&writes, owner)?, hashes))
    })
    .await?;
    ws.record_writes(written.iter().map(String::as_str));
    ws.preview
        .written_content(written.iter().map(String::as_str).zip(hashes));
    // A no-op while the checker runs; otherwise it warms up before the next check.
    ws.checker.prewarm();
    Ok(Json(Written { written }))
}

fn required_path(q: PathQuery) -> ApiResult<crate::paths::RelPath> {
    let raw = q
        .path
        .ok_or_else(|| ApiError::field("path", "query parameter `path` is required"))?;
    fileops::parse_rel("path", &raw)
}

/// `GET /v1/workspaces/{ws}/files?path=` → `{"path","content","encoding","size"}`.
pub async fn read(
    State(state): State<AppState>,
    Ws(id): Ws,
    QueryParams(q): QueryParams<PathQuery>,
) -> ApiResult<Json<fileops::FileContent>> {
    let ws = state.workspace(&id)?;
    let rel = required_path(q)?;
    let root = ws.root.clone();
    Ok(Json(blocking(move || fileops::read(&root, &rel)).await?))
}

/// `DELETE /v1/workspaces/{ws}/files?path=` → 204.
pub async fn delete(
    State(state): State<AppState>,
    Ws(id): Ws,
    QueryParams(q): QueryParams<PathQuery>,
) -> ApiResult<StatusCode> {
    let ws = state.workspace(&id)?;
    let rel = required_path(q)?;
    let root = ws.root.clone();
    let path = rel.as_str().to_string();
    blocking(move || fileops::delete(&root, &rel)).await?;
    ws.record_writes([path.as_str()]);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/workspaces/{ws}/tree` → `{"files":[{"path","size"}],"truncated"}`.
pub async fn tree(State(state): State<AppState>, Ws(id): Ws) -> ApiResult<Json<Tree>> {
    let ws = state.workspace(&id)?;
    let root = ws.root.clone();
    let (files, truncated) = blocking(move || {
        fileops::tree(&root).map_err(|e| ApiError::io("cannot list the workspace", e))
    })
    .await?;
    Ok(Json(Tree { files, truncated }))
}
