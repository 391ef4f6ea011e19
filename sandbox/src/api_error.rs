//! The one error type handlers return, rendered as the shared [`ErrorBody`]
//! `{"error":{"code":"E00x","message":"...","fields":{...}}}` with the spec's stable codes.
//!
//! Messages are written for the caller and must never carry host paths outside a workspace.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use byte_protocol::error::{ErrorBody, ErrorDetail};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    /// 401 E001: missing or wrong shared secret.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "E001", message)
    }

    /// 404 E002: unknown workspace, file, template or route.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "E002", message)
    }

    /// 400 E004: the request is malformed or names something it may not.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "E004", message)
    }

    /// 400 E004 with one field named.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::validation(message.clone());
        e.fields.insert(field.into(), message);
        e
    }

    /// E004 with another status (413 too large, 405 wrong method).
    pub fn validation_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, "E004", message)
    }

    /// 500 E006: a process or the file system failed on our side.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "E006", message)
    }

    /// 503 E006: the dev server (or a port for it) is not available.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "E006", message)
    }

    /// Logs an I/O error in full (it may name host paths) and returns a generic 500.
    pub fn io(context: &str, err: std::io::Error) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::internal(format!("{context}: {}", io_kind(&err)))
    }
}

/// A description of an I/O error that never includes a path.
pub fn io_kind(err: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match err.kind() {
        NotFound => "not found".into(),
        PermissionDenied => "permission denied".into(),
        AlreadyExists => "already exists".into(),
        StorageFull => "no space left on device".into(),
        _ => match err.raw_os_error() {
            // The OS message for an errno is path-free.
            Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
            None => err.kind().to_string(),
        },
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                fields: self.fields,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The body was not read in full: the connection cannot carry another request (a
            // client reusing it would write into a closed socket).
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
