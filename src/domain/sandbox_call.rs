//! The one contract between the Worker and a `UserAppSandboxService` object: every call is a
//! [`SandboxCall`], built by the caller (the sandbox and preview routes, the code generator's
//! sandbox port, `services::sandbox`) and parsed once by the object, which turns it into the
//! byte-sandbox request it stands for ([`SandboxCall::agent_route`]). The bodies are
//! `byte_protocol` types, so what the object sends the agent is what the caller checked.
//!
//! Transport: the call's JSON travels in the [`CALL_HEADER`] header of a bodyless request; a
//! call that may be large ([`SandboxCall::in_body`]: a file batch, a command) is the request's
//! body instead. A preview is always a header call: the request it rides on *is* the browser's
//! request (method, headers, body, a WebSocket upgrade for Vite's HMR), forwarded as it is; the
//! call only says what it is and where it goes.
//!
//! Replies: a lifecycle call ([`SandboxCall::is_lifecycle`]) is answered with the sandbox's
//! [`State`](super::sandbox::State) (200) or 404 when there is no sandbox; a workspace call with
//! the agent's own reply, passed through unchanged (its `byte_protocol` body, an event stream,
//! a 101 for a WebSocket); a deletion call ([`SandboxCall::is_erasure`], sent only by an app's
//! deletion plan) with 200 once done, 503 when it must be retried; a malformed call with a 400 in
//! the API's error shape.
//!
//! Invariants: an owner's workspace call through the API names its user ([`CALLER_HEADER`])
//! and the object passes it on only for the sandbox's owner while it is active ([`admit`]);
//! otherwise the object trusts the caller (a lifecycle call's [`Owner`] was checked by the
//! route, the code generator works for the app's owner); a parsed call names only valid file paths
//! ([`RelPath`]) and a preview path with no dot segment, so it cannot address anything outside
//! its own workspace's preview.

use super::error::{ApiError, ApiResult};
use super::ids::{AppId, UserId};
use super::input::{percent_encode, Query};
use super::routes::WorkspaceCall;
use super::sandbox::{exec_request, file_path_query, write_files_request};
use byte_protocol::{BuildRequest, ExecRequest, RelPath, TypecheckRequest, WriteFiles};
use serde::{Deserialize, Serialize};

/// The request header that carries a bodyless call (the same for every object).
pub use super::codegen::agent_call::CALL_HEADER;

/// The Durable Object binding of the sandbox objects (one object per app id).
pub const BINDING: &str = "SANDBOX";

/// Who the sandbox works for: the app and its owner (checked by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub app_id: AppId,
    pub user_id: UserId,
}

/// A request to the app's preview: its path and query on the preview host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewCall {
    /// The URL path, starting with `/`.
    pub path: String,
    /// The query without its `?` (the preview token already taken out).
    #[serde(default)]
    pub query: Option<String>,
    /// A WebSocket upgrade (Vite's HMR): a bodyless GET whose answer is a 101 and its socket.
    #[serde(default)]
    pub websocket: bool,
}

impl PreviewCall {
    /// A checked preview target: `path` starts with `/`, has no `?`, `#`, control character or
    /// whitespace, and no `.` or `..` segment (plain or percent-encoded).
    pub fn new(path: &str, query: Option<&str>, websocket: bool) -> Result<Self, String> {
        let call = PreviewCall {
            path: path.to_string(),
            query: query.filter(|q| !q.is_empty()).map(str::to_string),
            websocket,
        };
        call.check()?;
        Ok(call)
    }

    fn check(&self) -> Result<(), String> {
        let bad = |c: char| c.is_control() || c.is_whitespace() || c == '#';
        if !self.path.starts_with('/') || self.path.contains('?') || self.path.contains(bad) {
            return Err(format!("bad preview path {:?}", self.path));
        }
        let dots = |seg: &str| {
            let s = seg.to_ascii_lowercase().replace("%2e", ".");
            s == "." || s == ".."
        };
        if self.path.split('/').any(dots) {
            return Err(format!("preview path {:?} has a dot segment", self.path));
        }
        if self.query.as_deref().is_some_and(|q| q.contains(bad)) {
            return Err("bad preview query".into());
        }
        Ok(())
    }
}

/// Everything the Worker asks of a sandbox object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum SandboxCall {
    /// Create (or re-create) the sandbox from a template and bring it to `ready`; an active
    /// sandbox is left as it is. The caller claimed the quota first (`services::sandbox::start`).
    Create { by: Owner, template: String },
    /// The sandbox's state (a ready one whose dev server died is reported failed).
    Status,
    /// Stop the dev server (and the container); the sandbox can be created again.
    Stop,
    /// Write a batch of files (all or none).
    WriteFiles(WriteFiles),
    ReadFile {
        #[serde(with = "rel_path")]
        path: RelPath,
    },
    /// Delete a file (the agent answers 404 for one that is not there).
    DeleteFile {
        #[serde(with = "rel_path")]
        path: RelPath,
    },
    /// The workspace's file listing.
    Tree,
    /// Run a command in the workspace.
    Exec(ExecRequest),
    /// Run the type checker.
    Typecheck(TypecheckRequest),
    /// Run the production build and read its output directory (for a deployment).
    Build(BuildRequest),
    /// The structured errors of the log after `since`.
    Errors {
        #[serde(default)]
        since: Option<u64>,
    },
    /// The log lines after `since`, as JSON.
    Logs {
        #[serde(default)]
        since: Option<u64>,
    },
    /// The log after `since` as Server-Sent Events, then live lines.
    LogStream {
        #[serde(default)]
        since: Option<u64>,
    },
    /// A request to the app's dev server (the forwarded request carries it).
    Preview(PreviewCall),
    /// The app is deleted: stop its sandbox for good (byte-sandbox deletes the workspace, which
    /// stops the dev server and every command; the container is told to stop), and refuse
    /// every later call. 200 once the agent confirmed it (or there was never a sandbox).
    Retire { app_id: AppId },
    /// The app is deleted: erase the object's storage and alarm (after [`SandboxCall::Retire`]).
    Erase,
}

/// The request header naming the user a workspace call is made for (an owner's request
/// through the API). With it, the object itself admits the call ([`admit`]), so an owner's
/// write or read takes one round trip to the object; without it (the code generator, which
/// works for the app's owner) the call is trusted as before.
pub const CALLER_HEADER: &str = "X-Byte-Caller";
/// The header on an object's answer to a call it did not admit: [`Refusal::as_header`].
pub const REFUSED_HEADER: &str = "X-Byte-Refused";

/// Why an object did not pass a caller's workspace call on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No sandbox this caller may use: none exists, it is another user's, or the app is
    /// deleted. The caller cannot tell these apart (the route answers the same 404s as its
    /// ownership check would).
    NoSandbox,
    /// The caller's sandbox is not active (stopped or failed): it must be created again.
    Inactive(super::sandbox::Status),
}

impl Refusal {
    pub fn as_header(self) -> &'static str {
        match self {
            Refusal::NoSandbox => "none",
            Refusal::Inactive(s) => s.as_str(),
        }
    }

    pub fn from_header(value: &str) -> Option<Refusal> {
        match value {
            "none" => Some(Refusal::NoSandbox),
            s => super::sandbox::Status::parse(s)
                .filter(|s| !s.is_active())
                .map(Refusal::Inactive),
        }
    }
}

/// Whether `caller` may send a workspace call to the sandbox in `state` (`None`: there is
/// none, or the app is deleted): only its owner, and only while it is active.
pub fn admit(state: Option<&super::sandbox::State>, caller: &str) -> Result<(), Refusal> {
    match state {
        Some(s) if s.user_id.as_str() == caller => {
            if s.status.is_active() {
                Ok(())
            } else {
                Err(Refusal::Inactive(s.status))
            }
        }
        _ => Err(Refusal::NoSandbox),
    }
}

/// The agent's method for a call built from the call alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentMethod {
    Get,
    Post,
    Delete,
}

/// The byte-sandbox request a workspace call becomes. Paths are absolute on the agent
/// (`/v1/workspaces/<ws>/…`), queries included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRoute {
    /// A request made from the call alone: `json` is its body, `event_stream` asks for SSE.
    Call {
        method: AgentMethod,
        path: String,
        json: Option<String>,
        event_stream: bool,
    },
    /// The caller's request, forwarded with its own method, headers (after the preview cookie
    /// policy) and body; a WebSocket upgrade goes bodyless, whatever it claims.
    Forward { path: String, websocket: bool },
}

impl SandboxCall {
    /// Sent as the request's body rather than in [`CALL_HEADER`] (it may be large).
    pub fn in_body(&self) -> bool {
        matches!(self, SandboxCall::WriteFiles(_) | SandboxCall::Exec(_))
    }

    /// Answered by the object itself with the sandbox's state.
    pub fn is_lifecycle(&self) -> bool {
        matches!(
            self,
            SandboxCall::Create { .. } | SandboxCall::Status | SandboxCall::Stop
        )
    }

    /// Part of an app's deletion (answered by the object itself, never forwarded).
    pub fn is_erasure(&self) -> bool {
        matches!(self, SandboxCall::Retire { .. } | SandboxCall::Erase)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The call's JSON for [`CALL_HEADER`]: non-ASCII characters escaped (`\u00e9`), since a
    /// header value is bytes, not text.
    pub fn to_header(&self) -> String {
        let mut out = String::new();
        for c in self.to_json().chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
        out
    }

    /// Reads a call: malformed JSON, an unknown call, an invalid file path or preview target
    /// are refused.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let call: SandboxCall =
            serde_json::from_slice(json).map_err(|e| format!("malformed sandbox call: {e}"))?;
        if let SandboxCall::Preview(p) = &call {
            p.check()
                .map_err(|e| format!("malformed sandbox call: {e}"))?;
        }
        Ok(call)
    }

    /// The agent request for this call in workspace `ws`; `None` for a lifecycle call.
    pub fn agent_route(&self, ws: &str) -> Option<AgentRoute> {
        use AgentMethod::*;
        let base = format!("/v1/workspaces/{ws}");
        let since = |s: &Option<u64>| s.map(|n| format!("?since={n}")).unwrap_or_default();
        fn json<T: Serialize>(v: &T) -> Option<String> {
            Some(serde_json::to_string(v).unwrap_or_else(|_| "{}".into()))
        }
        let (method, rest, body, event_stream) = match self {
            SandboxCall::Create { .. }
            | SandboxCall::Status
            | SandboxCall::Stop
            | SandboxCall::Retire { .. }
            | SandboxCall::Erase => return None,
            SandboxCall::Preview(p) => {
                let query = p
                    .query
                    .as_ref()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default();
                return Some(AgentRoute::Forward {
                    path: format!("{base}/preview{}{query}", p.path),
                    websocket: p.websocket,
                });
            }
            SandboxCall::WriteFiles(w) => (Post, "files".to_string(), json(w), false),
            SandboxCall::ReadFile { path } => (
                Get,
                format!("files?path={}", percent_encode(path.as_str())),
                None,
                false,
            ),
            SandboxCall::DeleteFile { path } => (
                Delete,
                format!("files?path={}", percent_encode(path.as_str())),
                None,
                false,
            ),
            SandboxCall::Tree => (Get, "tree".to_string(), None, false),
            SandboxCall::Exec(e) => (Post, "exec".to_string(), json(e), false),
            SandboxCall::Typecheck(t) => (Post, "typecheck".to_string(), json(t), false),
            SandboxCall::Build(b) => (Post, "build".to_string(), json(b), false),
            SandboxCall::Errors { since: s } => (Get, format!("errors{}", since(s)), None, false),
            SandboxCall::Logs { since: s } => (Get, format!("logs{}", since(s)), None, false),
            SandboxCall::LogStream { since: s } => {
                (Get, format!("logs/stream{}", since(s)), None, true)
            }
        };
        Some(AgentRoute::Call {
            method,
            path: format!("{base}/{rest}"),
            json: body,
            event_stream,
        })
    }
}

/// The owner's workspace API request as the call it becomes: the body (`WriteFiles`, `Exec`)
/// and the query (`path`, `since`) are checked here, so a refusal names the owner's field.
/// `event_stream`: the client asked for `text/event-stream` (logs only).
pub fn workspace_call(
    call: WorkspaceCall,
    body: &[u8],
    query: &str,
    event_stream: bool,
) -> ApiResult<SandboxCall> {
    Ok(match call {
        WorkspaceCall::WriteFiles => SandboxCall::WriteFiles(write_files_request(body)?),
        WorkspaceCall::Exec => SandboxCall::Exec(exec_request(body)?),
        WorkspaceCall::ReadFile => SandboxCall::ReadFile {
            path: file_path_query(query)?,
        },
        WorkspaceCall::Tree => SandboxCall::Tree,
        WorkspaceCall::Errors => SandboxCall::Errors {
            since: since_query(query)?,
        },
        WorkspaceCall::Logs if event_stream => SandboxCall::LogStream {
            since: since_query(query)?,
        },
        WorkspaceCall::Logs => SandboxCall::Logs {
            since: since_query(query)?,
        },
    })
}

/// Whether the workspace call reads the client's body.
pub fn takes_body(call: WorkspaceCall) -> bool {
    matches!(call, WorkspaceCall::WriteFiles | WorkspaceCall::Exec)
}

/// `?since=<n>`: absent or empty is none; anything but a non-negative integer is a 400.
pub fn since_query(query: &str) -> ApiResult<Option<u64>> {
    match Query::parse(query).get("since").map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::field("since", "must be a non-negative integer")),
    }
}

/// A [`RelPath`] in a call: its normal form on the wire, checked by the shared rules on the way
/// in (the type has no `Deserialize` of its own, so nothing unchecked becomes one).
mod rel_path {
    use byte_protocol::RelPath;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(p: &RelPath, s: S) -> Result<S::Ok, S::Error> {
        p.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RelPath, D::Error> {
        let raw = String::deserialize(d)?;
        RelPath::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use byte_protocol::FileInput;

    fn owner() -> Owner {
        Owner {
            app_id: "app_0123456789abcdef0123456789abcdef".into(),
            user_id: "usr_1".into(),
        }
    }

    fn every_call() -> Vec<SandboxCall> {
        vec![
            SandboxCall::Create {
                by: owner(),
                template: "react-vite".into(),
            },
            SandboxCall::Status,
            SandboxCall::Stop,
            SandboxCall::WriteFiles(WriteFiles {
                files: vec![FileInput::text("src/App.tsx", "x")],
            }),
            SandboxCall::ReadFile {
                path: RelPath::parse("src/App.tsx").unwrap(),
            },
            SandboxCall::DeleteFile {
                path: RelPath::parse("old.txt").unwrap(),
            },
            SandboxCall::Tree,
            SandboxCall::Exec(ExecRequest::new("npm test").timeout_ms(500)),
            SandboxCall::Typecheck(TypecheckRequest {
                timeout_ms: Some(120_000),
            }),
            SandboxCall::Errors { since: Some(4) },
            SandboxCall::Logs { since: None },
            SandboxCall::LogStream { since: Some(0) },
            SandboxCall::Preview(PreviewCall::new("/src/App.tsx", Some("t=1"), false).unwrap()),
            SandboxCall::Preview(PreviewCall::new("/", None, true).unwrap()),
            SandboxCall::Retire {
                app_id: owner().app_id,
            },
            SandboxCall::Erase,
        ]
    }

    #[test]
    fn calls_round_trip() {
        for call in every_call() {
            let json = call.to_json();
            assert_eq!(SandboxCall::parse(json.as_bytes()).unwrap(), call, "{json}");
        }
        assert_eq!(
            serde_json::to_value(SandboxCall::Exec(ExecRequest::new("id"))).unwrap(),
            serde_json::json!({ "call": "exec", "command": "id" }),
            "a protocol body is the call's fields, as the agent reads it"
        );
    }

    #[test]
    fn header_calls_are_ascii() {
        let call = SandboxCall::Create {
            by: owner(),
            template: "réact-🚀".into(),
        };
        let h = call.to_header();
        assert!(h.is_ascii(), "{h}");
        assert!(h.contains(r"r\u00e9act-\ud83d\ude80"), "{h}");
        assert_eq!(SandboxCall::parse(h.as_bytes()).unwrap(), call);
        assert_eq!(SandboxCall::Status.to_header(), r#"{"call":"status"}"#);
    }

    #[test]
    fn malformed_calls_are_refused() {
        for bad in [
            &b"not json"[..],
            br#"{}"#,
            br#"{"call":"nope"}"#,
            br#"{"call":"create","template":"react-vite"}"#,
            br#"{"call":"create","by":{"appId":"a"},"template":"t"}"#,
            br#"{"call":"read_file"}"#,
            br#"{"call":"read_file","path":"../etc/passwd"}"#,
            br#"{"call":"delete_file","path":"/etc/passwd"}"#,
            br#"{"call":"delete_file","path":"node_modules/x/index.js"}"#,
            br#"{"call":"write_files","files":"x"}"#,
            br#"{"call":"logs","since":-1}"#,
            br#"{"call":"preview","path":"no-slash"}"#,
            br#"{"call":"preview","path":"/a/../../files"}"#,
            br#"{"call":"preview","path":"/a/%2E%2e/files"}"#,
            br#"{"call":"preview","path":"/a?b"}"#,
            br#"{"call":"preview","path":"/a","query":"x#y"}"#,
        ] {
            let e = SandboxCall::parse(bad).unwrap_err();
            assert!(
                e.starts_with("malformed sandbox call"),
                "{}: {e}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(PreviewCall::new("/a/./b", None, false).is_err());
        assert!(PreviewCall::new("/a b", None, false).is_err());
    }

    #[test]
    fn only_large_calls_travel_in_the_body() {
        for call in every_call() {
            let large = matches!(call, SandboxCall::WriteFiles(_) | SandboxCall::Exec(_));
            assert_eq!(call.in_body(), large, "{call:?}");
            assert_eq!(
                call.is_lifecycle() || call.is_erasure(),
                call.agent_route("ws").is_none()
            );
            assert!(!(call.is_lifecycle() && call.is_erasure()));
        }
    }

    #[test]
    fn calls_become_the_agents_requests() {
        let route = |c: SandboxCall| c.agent_route("abc").unwrap();
        let call = |method, path: &str, json: Option<&str>, event_stream| AgentRoute::Call {
            method,
            path: path.to_string(),
            json: json.map(str::to_string),
            event_stream,
        };
        use AgentMethod::*;
        assert_eq!(
            route(SandboxCall::ReadFile {
                path: RelPath::parse("./src//a+b.tsx").unwrap()
            }),
            call(
                Get,
                "/v1/workspaces/abc/files?path=src%2Fa%2Bb.tsx",
                None,
                false
            )
        );
        assert_eq!(
            route(SandboxCall::DeleteFile {
                path: RelPath::parse("x.txt").unwrap()
            }),
            call(Delete, "/v1/workspaces/abc/files?path=x.txt", None, false)
        );
        assert_eq!(
            route(SandboxCall::Exec(ExecRequest::new("id"))),
            call(
                Post,
                "/v1/workspaces/abc/exec",
                Some(r#"{"command":"id"}"#),
                false
            )
        );
        assert_eq!(
            route(SandboxCall::Typecheck(TypecheckRequest::default())),
            call(Post, "/v1/workspaces/abc/typecheck", Some("{}"), false)
        );
        assert_eq!(
            route(SandboxCall::LogStream { since: Some(0) }),
            call(Get, "/v1/workspaces/abc/logs/stream?since=0", None, true)
        );
        assert_eq!(
            route(SandboxCall::Logs { since: None }),
            call(Get, "/v1/workspaces/abc/logs", None, false)
        );
        assert_eq!(
            route(SandboxCall::Errors { since: Some(3) }),
            call(Get, "/v1/workspaces/abc/errors?since=3", None, false)
        );
        assert_eq!(
            route(SandboxCall::Tree),
            call(Get, "/v1/workspaces/abc/tree", None, false)
        );
        assert_eq!(
            route(SandboxCall::Preview(
                PreviewCall::new("/@vite/client", Some("v=1"), true).unwrap()
            )),
            AgentRoute::Forward {
                path: "/v1/workspaces/abc/preview/@vite/client?v=1".into(),
                websocket: true,
            }
        );
        assert_eq!(
            route(SandboxCall::Preview(
                PreviewCall::new("/", Some(""), false).unwrap()
            )),
            AgentRoute::Forward {
                path: "/v1/workspaces/abc/preview/".into(),
                websocket: false,
            }
        );
    }

    #[test]
    fn workspace_requests_are_checked_into_calls() {
        let c = workspace_call(
            WorkspaceCall::WriteFiles,
            br#"{"files":[{"path":"./a.txt","content":"x"}]}"#,
            "",
            false,
        )
        .unwrap();
        assert_eq!(
            c,
            SandboxCall::WriteFiles(WriteFiles {
                files: vec![FileInput::text("a.txt", "x")]
            })
        );
        let e = workspace_call(
            WorkspaceCall::WriteFiles,
            br#"{"files":[{"path":"../a","content":"x"}]}"#,
            "",
            false,
        )
        .unwrap_err();
        assert!(e.fields.contains_key("files[0].path"));
        assert_eq!(
            workspace_call(WorkspaceCall::Exec, br#"{"command":"id"}"#, "", false).unwrap(),
            SandboxCall::Exec(ExecRequest::new("id"))
        );
        assert_eq!(
            workspace_call(WorkspaceCall::ReadFile, b"", "path=src%2FApp.tsx", false).unwrap(),
            SandboxCall::ReadFile {
                path: RelPath::parse("src/App.tsx").unwrap()
            }
        );
        assert!(workspace_call(WorkspaceCall::ReadFile, b"", "", false).is_err());
        assert_eq!(
            workspace_call(WorkspaceCall::Logs, b"", "since=0", true).unwrap(),
            SandboxCall::LogStream { since: Some(0) }
        );
        assert_eq!(
            workspace_call(WorkspaceCall::Logs, b"", "since=", false).unwrap(),
            SandboxCall::Logs { since: None }
        );
        assert_eq!(
            workspace_call(WorkspaceCall::Errors, b"", "since=7", false).unwrap(),
            SandboxCall::Errors { since: Some(7) }
        );
        assert_eq!(
            workspace_call(WorkspaceCall::Errors, b"", "since=x", false)
                .unwrap_err()
                .fields["since"],
            "must be a non-negative integer"
        );
        assert_eq!(
            workspace_call(WorkspaceCall::Tree, b"", "", false).unwrap(),
            SandboxCall::Tree
        );
        assert!(takes_body(WorkspaceCall::Exec) && !takes_body(WorkspaceCall::Tree));
    }

    #[test]
    fn only_the_owner_of_an_active_sandbox_is_admitted() {
        use crate::domain::sandbox::{State, Status};
        let state = |status| State {
            app_id: owner().app_id,
            user_id: owner().user_id,
            template: "react-vite".into(),
            status,
            reason: None,
            instance_type: "standard-3".into(),
            updated_at_ms: 0,
            last_activity_ms: 0,
        };
        for s in [
            Status::Creating,
            Status::WritingFiles,
            Status::Installing,
            Status::Starting,
            Status::Ready,
        ] {
            assert_eq!(admit(Some(&state(s)), "usr_1"), Ok(()), "{s:?}");
            // Another user cannot tell it from no sandbox at all.
            assert_eq!(admit(Some(&state(s)), "usr_2"), Err(Refusal::NoSandbox));
        }
        for s in [Status::Stopped, Status::Failed] {
            assert_eq!(admit(Some(&state(s)), "usr_1"), Err(Refusal::Inactive(s)));
            assert_eq!(admit(Some(&state(s)), "usr_2"), Err(Refusal::NoSandbox));
        }
        assert_eq!(admit(None, "usr_1"), Err(Refusal::NoSandbox));
        // The refusal crosses to the Worker in a header and back.
        for r in [
            Refusal::NoSandbox,
            Refusal::Inactive(Status::Stopped),
            Refusal::Inactive(Status::Failed),
        ] {
            assert_eq!(Refusal::from_header(r.as_header()), Some(r));
        }
        // An active status or anything else is not a refusal.
        assert_eq!(Refusal::from_header("ready"), None);
        assert_eq!(Refusal::from_header(""), None);
    }
}
