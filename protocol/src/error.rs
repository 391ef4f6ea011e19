//! The error body both sides answer with, `{"error":{"code","message","fields"?}}`, and the
//! client's reading of a reply: a 2xx body as its typed value, anything else as the agent's
//! message.
//!
//! Codes are the platform's stable ones (`E001` unauthorized, `E002` not found, `E004`
//! validation, `E006` the sandbox failed). `fields` maps request fields to messages and is left
//! out when empty. Messages never carry host paths: byte-sandbox writes them for the caller.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `{"error": …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                fields: BTreeMap::new(),
            },
        }
    }
}

/// A reply that was not the value asked for: the agent refused (its status, code and message),
/// or answered something unreadable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentError {
    pub status: u16,
    /// The agent's error code, when its body had one.
    pub code: Option<String>,
    pub message: String,
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}): {}", self.status, self.message)
    }
}

impl std::error::Error for AgentError {}

/// Reads an agent reply: a 2xx body as `T`; any other status as the [`ErrorBody`] it carries
/// (or "no detail" when it carries none).
pub fn parse_reply<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, AgentError> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(body).map_err(|e| AgentError {
            status,
            code: None,
            message: format!("unreadable answer from the sandbox agent: {e}"),
        });
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => Err(AgentError {
            status,
            code: Some(b.error.code),
            message: b.error.message,
        }),
        Err(_) => Err(AgentError {
            status,
            code: None,
            message: "no detail".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shape_with_and_without_fields() {
        let mut b = ErrorBody::new("E004", "bad path");
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            json!({ "error": { "code": "E004", "message": "bad path" } })
        );
        b.error.fields.insert("files[1].path".into(), "`..`".into());
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["error"]["fields"]["files[1].path"], "`..`");
        assert_eq!(serde_json::from_value::<ErrorBody>(v).unwrap(), b);
    }

    #[test]
    fn replies_are_values_or_agent_errors() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct V {
            id: String,
        }
        assert_eq!(
            parse_reply::<V>(200, br#"{"id":"w"}"#),
            Ok(V { id: "w".into() })
        );
        let e = parse_reply::<V>(
            404,
            br#"{"error":{"code":"E002","message":"no such workspace"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.code.as_deref(), e.to_string().as_str()),
            (404, Some("E002"), "(404): no such workspace")
        );
        let e = parse_reply::<V>(502, b"Bad Gateway").unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (None, "no detail"));
        let e = parse_reply::<V>(200, b"{}").unwrap_err();
        assert!(e.message.starts_with("unreadable answer"), "{e}");
    }
}
