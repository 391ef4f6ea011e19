//! `byte-protocol`: the one typed contract between the Worker (its `UserAppSandboxService`
//! Durable Object and the routes in front of it) and `byte-sandbox`, the agent that runs app
//! workspaces.
//!
//! Both sides build and read their HTTP bodies with these types, enforce the same lexical path
//! rules ([`path`]) and the same preview cookie policy ([`preview`]), so a rule changes in one
//! place. The crate is serde-only (no runtime, no I/O) and compiles for the host and for
//! `wasm32-unknown-unknown`.
//!
//! Invariants:
//! - the JSON is the wire format byte-sandbox has always served: camelCase fields, `null` for
//!   absent optional reply fields, lowercase enum names; every type round-trips through JSON;
//! - requests tolerate unknown fields (an older agent ignores what a newer Worker adds), and
//!   replies parse leniently where a newer agent may add variants ([`DiagnosticKind::Other`]);
//! - nothing here touches a file system: confinement on disk (symlinks, existing ancestors)
//!   belongs to byte-sandbox; this crate only says which *names* are acceptable.

pub mod diagnostic;
pub mod error;
pub mod exec;
pub mod files;
pub mod logs;
pub mod path;
pub mod preview;
pub mod process;
pub mod workspace;

pub use diagnostic::{Diagnostic, DiagnosticKind, ErrorsReply};
pub use error::{parse_reply, AgentError, ErrorBody, ErrorDetail};
pub use exec::{
    BuildReply, BuildRequest, ExecReply, ExecRequest, TypecheckReply, TypecheckRequest,
};
pub use files::{
    Encoding, FileContent, FileInput, OutputFile, Tree, TreeEntry, WriteFiles, Written,
};
pub use logs::{LogLine, LogSource, LogStream, LogsReply};
pub use path::{PathError, RelPath, ReservedDir};
pub use process::{ServerInfo, ServerStatus, StartRequest};
pub use workspace::{CreateWorkspace, WorkspaceCreated, WorkspaceInfo};
