//! The HTTP API: shared state, request extractors that turn bad input into E004, and the one
//! function that builds the whole route table (every route is listed in [`router`]).

mod commands;
mod files;
mod logs;
mod preview;
mod process;
mod workspaces;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::api_error::ApiError;
use crate::auth::require_secret;
use crate::config::Config;
use crate::jail::Jail;
use crate::paths::WorkspaceId;
use crate::proxy::{self, HttpClient};
use crate::workspace::{Registry, Workspace};
use crate::VERSION;

/// Largest request body accepted (file batches carry whole files).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Arc<Registry>,
    pub client: HttpClient,
    shutdown: Arc<watch::Sender<bool>>,
}

impl AppState {
    pub fn new(config: Arc<Config>, jail: Arc<Jail>) -> std::io::Result<Self> {
        let registry = Arc::new(Registry::new(config.clone(), jail)?);
        let (shutdown, _) = watch::channel(false);
        Ok(AppState {
            config,
            registry,
            client: proxy::client(),
            shutdown: Arc::new(shutdown),
        })
    }

    /// Set to `true` when the agent is shutting down; long-lived responses end on it.
    pub fn shutdown_sender(&self) -> Arc<watch::Sender<bool>> {
        self.shutdown.clone()
    }

    pub fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    fn workspace(&self, id: &WorkspaceId) -> Result<Arc<Workspace>, ApiError> {
        self.registry.get(id)
    }
}

pub fn router(state: AppState) -> Router {
    let ws = "/v1/workspaces/{ws}";
    let protected = Router::new()
        .route("/v1/version", get(version))
        .route(
            ws,
            put(workspaces::create)
                .get(workspaces::get)
                .delete(workspaces::delete),
        )
        .route(
            &format!("{ws}/files"),
            post(files::write).get(files::read).delete(files::delete),
        )
        .route(&format!("{ws}/tree"), get(files::tree))
        .route(&format!("{ws}/exec"), post(commands::exec))
        .route(&format!("{ws}/typecheck"), post(commands::typecheck))
        .route(&format!("{ws}/build"), post(commands::build))
        .route(&format!("{ws}/process"), get(process::status))
        .route(&format!("{ws}/process/start"), post(process::start))
        .route(&format!("{ws}/process/stop"), post(process::stop))
        .route(&format!("{ws}/process/restart"), post(process::restart))
        .route(&format!("{ws}/logs"), get(logs::history))
        .route(&format!("{ws}/logs/stream"), get(logs::stream))
        .route(&format!("{ws}/errors"), get(logs::errors))
        .route(&format!("{ws}/preview"), any(preview::forward))
        .route(&format!("{ws}/preview/"), any(preview::forward))
        .route(&format!("{ws}/preview/{{*rest}}"), any(preview::forward))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Unknown routes need the secret too: nothing is revealed without it.
        .layer(from_fn_with_state(state.clone(), require_secret));
    Router::new()
        .route("/health", get(health))
        .merge(protected)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "version": VERSION, "workspaces": state.registry.count() }))
}

async fn version() -> Json<Value> {
    Json(json!({ "version": VERSION }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::validation_status(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// The `{ws}` path parameter, validated.
pub struct Ws(pub WorkspaceId);

impl<S: Send + Sync> FromRequestParts<S> for Ws {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::validation("invalid path parameters"))?;
        let raw = params
            .get("ws")
            .ok_or_else(|| ApiError::validation("missing workspace id"))?;
        WorkspaceId::parse(raw)
            .map(Ws)
            .map_err(|m| ApiError::field("ws", m))
    }
}

/// A JSON body; an empty body reads as `{}` so optional bodies may be left out. Every
/// failure is a 400 E004 (413 when over [`MAX_BODY_BYTES`]).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::validation_status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is larger than {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ApiError::validation("cannot read the request body")
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::validation(format!("invalid JSON body: {e}")))
    }
}

/// Query parameters; a malformed query is a 400 E004.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| QueryParams(q.0))
            .map_err(|e| ApiError::validation(format!("invalid query: {}", e.body_text())))
    }
}
