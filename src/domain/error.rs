//! The one API error type: a stable machine-readable code (the spec's E001–E007), an HTTP status,
//! a human message and, for validation failures, a map of offending fields to messages.
//!
//! Invariant: a 5xx error never carries internal detail in its message; callers log the detail
//! themselves and hand out [`ApiError::internal`].

use serde::Serialize;
use std::collections::BTreeMap;

/// The spec's custom error codes, plus `E000` for failures that are ours, not the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum ErrorCode {
    /// Internal error (not in the spec's list: no user input causes it).
    E000,
    /// Invalid authentication token.
    E001,
    /// Resource not found.
    E002,
    /// Rate limit exceeded.
    E003,
    /// Validation error.
    E004,
    /// AI generation failed.
    E005,
    /// Container startup failed.
    E006,
    /// Deployment failed.
    E007,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: BodyInner<'a>,
}

#[derive(Serialize)]
struct BodyInner<'a> {
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    fields: &'a BTreeMap<String, String>,
}

impl ApiError {
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, ErrorCode::E001, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, ErrorCode::E001, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(404, ErrorCode::E002, format!("{what} not found"))
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, ErrorCode::E004, message)
    }

    /// A validation error naming one offending field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::validation(format!("{field}: {message}"));
        e.fields.insert(field.to_string(), message);
        e
    }

    pub fn with_fields(fields: BTreeMap<String, String>) -> Self {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let mut e = Self::validation(format!("invalid fields: {}", names.join(", ")));
        e.fields = fields;
        e
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            413,
            ErrorCode::E004,
            format!("request body exceeds {limit} bytes"),
        )
    }

    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(429, ErrorCode::E003, message)
    }

    pub fn internal() -> Self {
        Self::new(500, ErrorCode::E000, "internal error")
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, ErrorCode::E000, message)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&Body {
            error: BodyInner {
                code: self.code,
                message: &self.message,
                fields: &self.fields,
            },
        })
        .unwrap_or_else(|_| r#"{"error":{"code":"E000","message":"internal error"}}"#.into())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shape_names_fields() {
        let e = ApiError::field("title", "must be at most 200 characters");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"]["code"], "E004");
        assert_eq!(
            v["error"]["fields"]["title"],
            "must be at most 200 characters"
        );
        assert_eq!(e.status, 400);
    }

    #[test]
    fn internal_error_has_no_fields_and_generic_message() {
        let v: serde_json::Value = serde_json::from_str(&ApiError::internal().to_json()).unwrap();
        assert_eq!(v["error"]["message"], "internal error");
        assert!(v["error"].get("fields").is_none());
    }
}
