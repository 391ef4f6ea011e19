//! Command bodies: run a command (`POST …/exec`), type-check (`POST …/typecheck`) and build
//! (`POST …/build`).
//!
//! Invariants: a timeout asked for is 1 ms to [`MAX_TIMEOUT_MS`]; a command is non-empty, at
//! most [`MAX_COMMAND_BYTES`] and has no NUL; `exitCode` is `null` exactly when the process did
//! not exit on its own (a signal, and always on timeout). Optional request fields are left out
//! when unset, so a request carries only what its sender chose.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::files::OutputFile;

/// Longest timeout a request may ask for (one hour).
pub const MAX_TIMEOUT_MS: u64 = 60 * 60 * 1000;
/// Longest command accepted, in bytes.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// `POST …/exec` `{"command","timeoutMs"?,"env"?}`. `command` is optional in the type only so
/// that a missing one is refused by name rather than as malformed JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Extra environment variables for this command.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl ExecRequest {
    pub fn new(command: impl Into<String>) -> Self {
        ExecRequest {
            command: Some(command.into()),
            ..Default::default()
        }
    }

    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }
}

/// A command's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecReply {
    /// `None` when the process was killed by a signal (always so on timeout).
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub timed_out: bool,
    pub duration_ms: u64,
}

impl ExecReply {
    /// Exited on its own with status 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// The last `n` lines of stderr, oldest first.
    pub fn stderr_tail(&self, n: usize) -> Vec<&str> {
        let mut tail: Vec<&str> = self.stderr.lines().rev().take(n).collect();
        tail.reverse();
        tail
    }
}

/// `POST …/typecheck` `{"timeoutMs"?}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypecheckRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `POST …/typecheck` → `{"ok","errors","exitCode","timedOut","durationMs"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypecheckReply {
    pub ok: bool,
    pub errors: Vec<Diagnostic>,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
}

/// `POST …/build` `{"command"?,"timeoutMs"?,"outputDir"?}` (defaults: `npm run build`, `dist`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dir: Option<String>,
}

/// `POST …/build` → the command's outcome plus `{"ok","errors","outputDir","files"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildReply {
    pub ok: bool,
    #[serde(flatten)]
    pub output: ExecReply,
    pub errors: Vec<Diagnostic>,
    pub output_dir: String,
    pub files: Vec<OutputFile>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::DiagnosticKind;
    use serde_json::json;

    fn reply() -> ExecReply {
        ExecReply {
            exit_code: Some(4),
            stdout: "hello byte\n".into(),
            stderr: "a\nb\nc\n".into(),
            stdout_truncated: false,
            stderr_truncated: true,
            timed_out: false,
            duration_ms: 12,
        }
    }

    #[test]
    fn requests_carry_only_what_was_set() {
        let r = ExecRequest::new("npm install").timeout_ms(300_000);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"command":"npm install","timeoutMs":300000}"#
        );
        let mut r = ExecRequest::new("echo $NAME");
        r.env.insert("NAME".into(), "byte".into());
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({ "command": "echo $NAME", "env": { "NAME": "byte" } })
        );
        assert_eq!(
            serde_json::from_value::<ExecRequest>(json!({})).unwrap(),
            ExecRequest::default()
        );
        assert_eq!(
            serde_json::to_string(&TypecheckRequest::default()).unwrap(),
            "{}"
        );
        let b: BuildRequest = serde_json::from_value(json!({ "outputDir": "out" })).unwrap();
        assert_eq!(b.output_dir.as_deref(), Some("out"));
    }

    #[test]
    fn exec_reply_fields_are_camel_case() {
        let v = serde_json::to_value(reply()).unwrap();
        assert_eq!(
            v,
            json!({ "exitCode": 4, "stdout": "hello byte\n", "stderr": "a\nb\nc\n", "stdoutTruncated": false, "stderrTruncated": true, "timedOut": false, "durationMs": 12 })
        );
        assert_eq!(serde_json::from_value::<ExecReply>(v).unwrap(), reply());
        let killed: ExecReply = serde_json::from_value(json!({ "exitCode": null, "stdout": "", "stderr": "", "stdoutTruncated": false, "stderrTruncated": false, "timedOut": true, "durationMs": 700 })).unwrap();
        assert!(!killed.success() && killed.exit_code.is_none());
        assert!(!reply().success());
        assert_eq!(reply().stderr_tail(2), ["b", "c"]);
        assert_eq!(reply().stderr_tail(10), ["a", "b", "c"]);
    }

    #[test]
    fn build_reply_flattens_the_command_outcome() {
        let b = BuildReply {
            ok: false,
            output: reply(),
            errors: vec![Diagnostic {
                file: None,
                line: None,
                column: None,
                message: "the build failed".into(),
                kind: DiagnosticKind::Build,
            }],
            output_dir: "dist".into(),
            files: vec![],
        };
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["exitCode"], 4);
        assert_eq!(v["outputDir"], "dist");
        assert_eq!(v["errors"][0]["kind"], "build");
        assert!(v.get("output").is_none());
        assert_eq!(serde_json::from_value::<BuildReply>(v).unwrap(), b);
        let t = TypecheckReply {
            ok: true,
            errors: vec![],
            exit_code: Some(0),
            timed_out: false,
            duration_ms: 5,
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({ "ok": true, "errors": [], "exitCode": 0, "timedOut": false, "durationMs": 5 })
        );
    }
}
