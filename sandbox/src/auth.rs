//! Shared-secret check for every route but `/health`: `Authorization: Bearer <SANDBOX_SECRET>`,
//! compared in constant time over SHA-256 digests so neither content nor length leaks.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api_error::ApiError;
use crate::routes::AppState;

/// True when `header` is `Bearer <secret>` (scheme case-insensitive).
pub fn bearer_matches(header: Option<&[u8]>, secret: &str) -> bool {
    let Some(value) = header else { return false };
    if value.len() < 7 || !value[..7].eq_ignore_ascii_case(b"bearer ") {
        return false;
    }
    let presented = Sha256::digest(value[7..].trim_ascii());
    let expected = Sha256::digest(secret.as_bytes());
    !secret.is_empty() && bool::from(presented.ct_eq(&expected))
}

pub async fn require_secret(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let header = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    if bearer_matches(header, &state.config.secret) {
        next.run(request).await
    } else {
        ApiError::unauthorized("missing or invalid bearer token").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_matches;

    #[test]
    fn bearer_check() {
        assert!(bearer_matches(Some(b"Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(Some(b"bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer s3cretX"), "s3cret"));
        assert!(!bearer_matches(Some(b"Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(Some(b"s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
        assert!(
            !bearer_matches(Some(b"Bearer "), ""),
            "an empty secret never matches"
        );
    }
}
