//! The one API error type: a stable machine-readable code (the spec's E001–E007), an HTTP status,
//! a human message and, for validation failures, a map of offending fields to messages.
//!
//! Invariant: a 5xx error never carries internal detail in its message; callers log the detail
//! themselves and hand out [`ApiError::internal`].

use serde::Serialize;
use std::collections::BTreeMap;

/// The spec's custom error codes, plus `E000` for failures that are ours, not the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// Longest summary of outside text a user is shown.
pub const SUMMARY_CHARS: usize = 240;

/// A one-line summary, fit for a user, of text from outside the platform (a model provider's
/// error body, npm's output, the sandbox agent's message): the first meaningful line, with
/// absolute paths cut to their last segment, URL queries dropped and anything that looks like a
/// secret (keys, bearer tokens, long opaque strings) replaced, at most [`SUMMARY_CHARS`]
/// characters. The full text belongs in the log, never in a response or an event.
pub fn summarize_upstream(text: &str) -> String {
    let line = text
        .lines()
        .map(strip_tool_prefix)
        .find(|l| is_meaningful(l))
        .unwrap_or_default();
    let words: Vec<String> = line.split_whitespace().map(clean_word).collect();
    let mut out = words.join(" ");
    if out.chars().count() > SUMMARY_CHARS {
        out = out.chars().take(SUMMARY_CHARS - 1).collect::<String>() + "…";
    }
    out
}

/// `npm error …` / `npm ERR! …` / `error: …` → the message itself.
fn strip_tool_prefix(line: &str) -> &str {
    let l = line.trim();
    for p in ["npm error ", "npm ERR! ", "npm error", "npm ERR!"] {
        if let Some(rest) = l.strip_prefix(p) {
            return rest.trim();
        }
    }
    l
}

/// Skips blank lines, npm's bookkeeping (codes, log locations, warnings) and bare numbers.
fn is_meaningful(l: &str) -> bool {
    let lower = l.to_ascii_lowercase();
    !(l.is_empty()
        || l.chars().all(|c| c.is_ascii_digit() || c.is_whitespace())
        || lower.starts_with("code ")
        || lower.starts_with("errno ")
        || lower.starts_with("syscall ")
        || lower.starts_with("npm warn")
        || lower.starts_with("a complete log of this run")
        || lower.starts_with("log files were not written"))
}

fn looks_secret(w: &str) -> bool {
    let core = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let lower = core.to_ascii_lowercase();
    if ["sk-", "sk_", "ghp_", "gho_", "xox", "akia", "eyj"]
        .iter()
        .any(|p| lower.starts_with(p))
        && core.len() >= 12
    {
        return true;
    }
    // A long run of letters and digits mixed (keys, tokens, hashes).
    core.len() >= 24
        && core
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+/=.".contains(c))
        && core.chars().any(|c| c.is_ascii_digit())
        && core.chars().any(|c| c.is_ascii_alphabetic())
}

fn clean_word(w: &str) -> String {
    if let Some((scheme, rest)) = w.split_once("://") {
        // A URL: keep where it points, never its query (it may carry a key).
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let segments: Vec<&str> = rest
            .split('/')
            .map(|seg| if looks_secret(seg) { "<redacted>" } else { seg })
            .collect();
        return format!("{scheme}://{}", segments.join("/"));
    }
    if let Some((k, _)) = w.split_once('=') {
        let key = k.to_ascii_lowercase();
        if ["key", "token", "secret", "password", "auth"]
            .iter()
            .any(|s| key.contains(s))
        {
            return format!("{k}=<redacted>");
        }
    }
    // An absolute path (`/root/.npm/_logs/x.log`, `'/work/app/src'`): its last segment.
    let start = w.find(['/', '\\']).filter(|&i| {
        let before = &w[..i];
        before.is_empty() || before.ends_with(['\'', '"', '(', '`']) || before.ends_with(':')
    });
    if let Some(i) = start {
        let path = &w[i..];
        if path.matches(['/', '\\']).count() >= 2 {
            let end = path
                .find(|c: char| "'\")`,;".contains(c))
                .unwrap_or(path.len());
            let (p, tail) = path.split_at(end);
            let last = p.rsplit(['/', '\\']).next().unwrap_or_default();
            let last = if looks_secret(last) {
                "<redacted>"
            } else {
                last
            };
            return format!("{}…/{last}{tail}", &w[..i]);
        }
    }
    if looks_secret(w) {
        return "<redacted>".into();
    }
    w.to_string()
}

/// The user's summary of a failed dependency install: `npm install failed (<why>): <npm's
/// first meaningful line>` (npm's whole output goes to the log and to the model).
pub fn install_summary(why: &str, output: &str) -> String {
    let line = summarize_upstream(output);
    if line.is_empty() {
        format!("npm install failed ({why})")
    } else {
        format!("npm install failed ({why}): {line}")
    }
}

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

    #[test]
    fn upstream_text_is_summarised_without_paths_or_secrets() {
        let npm = "npm error code E404\n\
                   npm error 404 Not Found - GET https://registry.npmjs.org/byte-missing-dep?token=abc - Not found\n\
                   npm error 404\n\
                   npm error 404  'byte-missing-dep@^9.9.9' is not in this registry.\n\
                   npm error A complete log of this run can be found in: /root/.npm/_logs/2026-12-02T07_00_00_000Z-debug-0.log";
        assert_eq!(
            summarize_upstream(npm),
            "404 Not Found - GET https://registry.npmjs.org/byte-missing-dep - Not found"
        );
        assert_eq!(
            install_summary("exit 1", npm),
            "npm install failed (exit 1): 404 Not Found - GET https://registry.npmjs.org/byte-missing-dep - Not found"
        );
        assert_eq!(
            install_summary("timed out", "\n  \n"),
            "npm install failed (timed out)"
        );
        assert_eq!(
            summarize_upstream("Error: ENOENT: no such file or directory, open '/work/sandboxes/ws_1/app/package.json'"),
            "Error: ENOENT: no such file or directory, open '…/package.json'"
        );
        assert_eq!(
            summarize_upstream("Incorrect API key provided: sk-proj-abcdefghijklmnop1234. Bearer eyJhbGciOiJIUzI1NiJ9.x"),
            "Incorrect API key provided: <redacted> Bearer <redacted>"
        );
        assert_eq!(
            summarize_upstream("api_key=hunter2 failed"),
            "api_key=<redacted> failed"
        );
        assert_eq!(
            summarize_upstream("POST https://api.openai.com/v1/chat/completions?key=x failed"),
            "POST https://api.openai.com/v1/chat/completions failed"
        );
        let hash = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            summarize_upstream(&format!("blob {hash} missing")),
            "blob <redacted> missing"
        );
        let long = "word ".repeat(200);
        let s = summarize_upstream(&long);
        assert_eq!(s.chars().count(), SUMMARY_CHARS);
        assert!(s.ends_with('…'));
        // Plain words and relative paths stay as they are.
        assert_eq!(
            summarize_upstream("src/App.tsx: unexpected token at 3:14"),
            "src/App.tsx: unexpected token at 3:14"
        );
    }
}
