//! Sandboxes: the lifecycle state machine a `UserAppSandboxService` object walks, the state it
//! reports, instance types, the per-user quota's refusal, preview hostnames and the
//! short-lived tokens that open private previews; and the Worker's side of the typed contract
//! with byte-sandbox ([`byte_protocol`]): owners' requests parsed into the agent's request
//! types, the headers a preview forwards, and the agent's replies read into reasons. The calls
//! the object takes are [`super::sandbox_call::SandboxCall`].
//!
//! Invariants: a sandbox only moves along [`Status::can_move_to`]; a preview hostname maps to
//! exactly one app id and back; a preview token names its host and expires; a request this
//! module builds for the agent has passed the same checks the agent applies (the shared path
//! rules, command and timeout bounds), so a refusal names the owner's field, not the agent's.

use super::error::{ApiError, ApiResult, ErrorCode};
use super::ids::{AppId, UserId};
use super::input::{parse_object, Patch, Query};
use byte_protocol::exec::{ExecReply, ExecRequest, MAX_COMMAND_BYTES, MAX_TIMEOUT_MS};
use byte_protocol::files::{Encoding, FileInput, WriteFiles};
use byte_protocol::path::RelPath;
use byte_protocol::process::{ServerInfo, ServerStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use strum::{EnumString, IntoStaticStr};

/// Lifecycle: creating → writing_files → installing → starting → ready; any step may fail;
/// a live sandbox can be stopped; a stopped or failed one can be created again.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    IntoStaticStr,
    EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    Creating,
    WritingFiles,
    Installing,
    Starting,
    Ready,
    Failed,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    /// Still on its way to `ready`.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            Status::Creating | Status::WritingFiles | Status::Installing | Status::Starting
        )
    }

    /// Counts against the user's sandbox quota.
    pub fn is_active(self) -> bool {
        self.in_progress() || self == Status::Ready
    }

    pub fn can_move_to(self, next: Status) -> bool {
        use Status::*;
        match (self, next) {
            (Stopped | Failed, Creating) => true,
            (Creating, WritingFiles)
            | (WritingFiles, Installing)
            | (Installing, Starting)
            | (Starting, Ready) => true,
            // A ready sandbox whose dev server crashed is restarted.
            (Ready, Starting) => true,
            (s, Failed) if s.is_active() => true,
            (s, Stopped) if s != Stopped => true,
            _ => false,
        }
    }
}

/// The spec's container instance types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr)]
pub enum InstanceType {
    #[serde(rename = "lite")]
    #[strum(serialize = "lite")]
    Lite,
    #[serde(rename = "standard-1")]
    #[strum(serialize = "standard-1")]
    Standard1,
    #[serde(rename = "standard-3")]
    #[strum(serialize = "standard-3")]
    Standard3,
    #[serde(rename = "standard-4")]
    #[strum(serialize = "standard-4")]
    Standard4,
}

impl InstanceType {
    /// Hand-written, not strum: the value is trimmed and a refusal lists the accepted names.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "lite" => Ok(Self::Lite),
            "standard-1" => Ok(Self::Standard1),
            "standard-3" => Ok(Self::Standard3),
            "standard-4" => Ok(Self::Standard4),
            other => Err(format!(
                "unknown instance type {other:?} (lite, standard-1, standard-3, standard-4)"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// (memory MiB, vCPU, disk GB) as the spec lists them.
    pub fn resources(self) -> (u32, f32, u32) {
        match self {
            Self::Lite => (256, 1.0 / 16.0, 2),
            Self::Standard1 => (4096, 0.5, 8),
            Self::Standard3 => (12288, 2.0, 16),
            Self::Standard4 => (12288, 4.0, 20),
        }
    }
}

/// The dependency install a sandbox runs before its dev server starts (the lifecycle's
/// `installing` step, and the code generator after it changed `package.json`).
pub const INSTALL_COMMAND: &str = "npm install --prefer-offline --no-audit --no-fund";
pub const INSTALL_TIMEOUT_MS: u64 = 300_000;

pub fn install_request() -> ExecRequest {
    ExecRequest::new(INSTALL_COMMAND).timeout_ms(INSTALL_TIMEOUT_MS)
}

/// The refusal when a user already has `max` active sandboxes (403 E006, the quota in
/// `maxSandboxInstances`).
pub fn quota_reached(max: u64) -> ApiError {
    let mut e = ApiError::new(
        403,
        ErrorCode::E006,
        format!("sandbox limit reached: at most {max} sandboxes may run at once; stop one to start another"),
    );
    e.fields
        .insert("maxSandboxInstances".into(), max.to_string());
    e
}

/// What a sandbox object reports about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct State {
    #[schema(value_type = String)]
    pub app_id: AppId,
    #[schema(value_type = String)]
    pub user_id: UserId,
    pub template: String,
    pub status: Status,
    pub reason: Option<String>,
    pub instance_type: String,
    pub updated_at_ms: i64,
    pub last_activity_ms: i64,
}

/// The preview hostname label for an app: its id's hex part (hostnames take no underscores).
pub fn preview_label(app_id: &str) -> Option<&str> {
    let hex = app_id.strip_prefix("app_")?;
    (hex.len() == 32
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
    .then_some(hex)
}

/// The app an app hostname belongs to: `<label>.<domain>[:port]` → `app_<label>` (previews
/// under `PREVIEW_DOMAIN`, deployed apps under `CUSTOM_DOMAIN`). The `Host` value is read as
/// [`super::hosts::host_name`] reads it (port, case and a trailing dot ignored).
pub fn app_for_preview_host(host: &str, domain: &str) -> Option<AppId> {
    let name = super::hosts::host_name(host)?;
    let label = name.strip_suffix(domain)?.strip_suffix('.')?;
    let id = format!("app_{label}");
    preview_label(&id).is_some().then(|| AppId::from(id))
}

/// Preview tokens: `<expiry seconds>.<hmac hex>` over the host label, so a token opens one
/// preview and only until it expires. `sign` is the deployment's keyed HMAC.
pub fn preview_token(label: &str, expires_at: i64, sign: impl Fn(&str) -> String) -> String {
    format!("{expires_at}.{}", sign(&format!("{label}|{expires_at}")))
}

pub fn check_preview_token(
    token: &str,
    label: &str,
    now_s: i64,
    sign: impl Fn(&str) -> String,
) -> bool {
    let Some((exp, mac)) = token.split_once('.') else {
        return false;
    };
    let Ok(exp) = exp.parse::<i64>() else {
        return false;
    };
    if exp < now_s {
        return false;
    }
    let expected = sign(&format!("{label}|{exp}"));
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), mac.as_bytes()).into()
}

/// Idle shutdown: when a ready sandbox with this last activity should stop.
pub fn idle_deadline(last_activity_ms: i64, idle_timeout_ms: i64) -> i64 {
    last_activity_ms + idle_timeout_ms
}

/// The activity a preview request (anyone's: previews of public apps are open) leaves on a
/// sandbox: `now`, but never more than `keepalive_ms` after the owner's last activity, so
/// anonymous traffic alone cannot keep a sandbox running forever. Never moves activity back.
pub fn preview_activity(
    last_activity_ms: i64,
    owner_activity_ms: i64,
    now_ms: i64,
    keepalive_ms: i64,
) -> i64 {
    last_activity_ms.max(now_ms.min(owner_activity_ms.saturating_add(keepalive_ms)))
}

// ----- the owner's workspace API, checked before it reaches the agent ----------------------

/// `POST /api/apps/:id/sandbox/files` `{"files":[{"path","content","encoding"?}]}` → the
/// agent's batch write. Every path goes through the shared rules ([`RelPath`]) and is sent in
/// its normal form; every offending field (`files[2].path`, `files[0].bogus`) is reported at
/// once.
pub fn write_files_request(body: &[u8]) -> ApiResult<WriteFiles> {
    let mut o = parse_object(body)?;
    let mut files = Vec::new();
    match o.take_raw("files") {
        Patch::Value(Value::Array(items)) if items.is_empty() => {
            o.error("files", "must contain at least one file")
        }
        Patch::Value(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let Value::Object(mut m) = item else {
                    o.error(
                        &format!("files[{i}]"),
                        "must be an object with path and content",
                    );
                    continue;
                };
                let field = |name: &str| format!("files[{i}].{name}");
                let path = match m.remove("path") {
                    Some(Value::String(raw)) => match RelPath::parse(&raw) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            o.error(&field("path"), e.to_string());
                            None
                        }
                    },
                    None | Some(Value::Null) => {
                        o.error(&field("path"), "is required");
                        None
                    }
                    Some(_) => {
                        o.error(&field("path"), "must be a string");
                        None
                    }
                };
                let content = match m.remove("content") {
                    Some(Value::String(c)) => Some(c),
                    None | Some(Value::Null) => {
                        o.error(&field("content"), "is required");
                        None
                    }
                    Some(_) => {
                        o.error(&field("content"), "must be a string");
                        None
                    }
                };
                let encoding = match m.remove("encoding") {
                    None | Some(Value::Null) => Some(Encoding::Utf8),
                    Some(Value::String(e)) if e == "utf8" => Some(Encoding::Utf8),
                    Some(Value::String(e)) if e == "base64" => Some(Encoding::Base64),
                    Some(_) => {
                        o.error(&field("encoding"), "must be utf8 or base64");
                        None
                    }
                };
                for unknown in m.keys() {
                    o.error(&field(unknown), "unknown field");
                }
                if let (Some(path), Some(content), Some(encoding)) = (path, content, encoding) {
                    files.push(FileInput {
                        path: path.into_string(),
                        content,
                        encoding,
                    });
                }
            }
        }
        Patch::Value(_) => o.error("files", "must be an array of {path, content} objects"),
        Patch::Null | Patch::Absent => o.error("files", "is required"),
    }
    o.finish()?;
    Ok(WriteFiles { files })
}

/// `POST /api/apps/:id/sandbox/exec` `{"command","timeoutMs"?,"env"?}` → the agent's request,
/// with the agent's own bounds. The command is kept verbatim (not trimmed).
pub fn exec_request(body: &[u8]) -> ApiResult<ExecRequest> {
    let mut o = parse_object(body)?;
    let command = match o.take_raw("command") {
        Patch::Value(Value::String(c)) => {
            if c.trim().is_empty() {
                o.error("command", "must not be empty");
                None
            } else if c.contains('\0') {
                o.error("command", "must not contain NUL characters");
                None
            } else if c.len() > MAX_COMMAND_BYTES {
                o.error(
                    "command",
                    format!("must be at most {MAX_COMMAND_BYTES} bytes"),
                );
                None
            } else {
                Some(c)
            }
        }
        Patch::Value(_) => {
            o.error("command", "must be a string");
            None
        }
        Patch::Null | Patch::Absent => {
            o.error("command", "is required");
            None
        }
    };
    let timeout_ms = o.integer("timeoutMs", 1, MAX_TIMEOUT_MS);
    let mut env = BTreeMap::new();
    if let Patch::Value(vars) = o.object("env", 64 * 1024) {
        for (k, v) in vars {
            match v {
                Value::String(v)
                    if !k.is_empty() && !k.contains(['=', '\0']) && !v.contains('\0') =>
                {
                    env.insert(k, v);
                }
                _ => o.error(
                    &format!("env.{k}"),
                    "must be a string, named without `=` or NUL",
                ),
            }
        }
    }
    o.finish()?;
    Ok(ExecRequest {
        command,
        timeout_ms,
        env,
    })
}

/// `GET /api/apps/:id/sandbox/files?path=` → the file's path, checked by the shared rules.
pub fn file_path_query(query: &str) -> ApiResult<RelPath> {
    let q = Query::parse(query);
    let raw = q
        .get("path")
        .ok_or_else(|| ApiError::field("path", "query parameter is required"))?;
    RelPath::parse(raw).map_err(|e| ApiError::field("path", e.to_string()))
}

/// Request headers the sandbox object never passes to the agent: the caller's credentials (the
/// object sends the agent's own), the client's host and address, and the call itself.
const NOT_FOR_THE_AGENT: [&str; 5] = [
    "authorization",
    "host",
    "cf-connecting-ip",
    "x-forwarded-for",
    super::sandbox_call::CALL_HEADER,
];

/// The headers of a forwarded preview request as the sandbox object passes them to the agent:
/// the preview cookie policy ([`super::preview::request_headers`]: the app's own cookies go
/// on), minus [`NOT_FOR_THE_AGENT`]. (Every other call is built from the typed call alone and
/// carries no client header at all.)
pub fn preview_agent_headers<I, K, V>(entries: I) -> Vec<(String, String)>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    super::preview::request_headers(entries)
        .into_iter()
        .filter(|(k, _)| !NOT_FOR_THE_AGENT.iter().any(|h| h.eq_ignore_ascii_case(k)))
        .collect()
}

// ----- the agent's replies, as lifecycle reasons ----------------------------------------

/// How a process ended, for a sentence: `code 1` or `a signal`.
fn exit_text(code: Option<i32>) -> String {
    code.map_or_else(|| "a signal".to_string(), |c| format!("code {c}"))
}

/// Why a dependency install failed: timeout or exit, then the last lines of npm's stderr
/// (newest first, joined with ` | `).
pub fn install_failure(r: &ExecReply) -> String {
    let why = if r.timed_out {
        "timed out".to_string()
    } else {
        match r.exit_code {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".to_string(),
        }
    };
    // npm's first meaningful line, cleaned (its whole output is the caller's to log).
    let line = crate::domain::error::summarize_upstream(&r.stderr);
    if line.is_empty() {
        format!("dependency install failed ({why})")
    } else {
        format!("dependency install failed ({why}): {line}")
    }
}

/// Why a dev server that should be running is not.
pub fn server_down_reason(info: &ServerInfo) -> String {
    match info.status {
        ServerStatus::Stopped => "dev server exited: it was stopped".to_string(),
        _ => {
            let exit = format!("dev server exited with {}", exit_text(info.exit_code));
            // The dev server's own last error line, when byte-sandbox caught one.
            match info
                .error
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty())
            {
                Some(e) => format!("{exit}: {e}"),
                None => exit,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_traffic_keeps_a_sandbox_awake_only_up_to_the_cap() {
        let (owner, keep) = (1_000_000, 3_600_000);
        // Within the cap a preview request counts as activity.
        assert_eq!(
            preview_activity(owner, owner, owner + 60_000, keep),
            owner + 60_000
        );
        // Past it, activity stops at owner + cap: the idle timeout runs from there.
        let late = owner + keep + 500_000;
        assert_eq!(
            preview_activity(owner + 60_000, owner, late, keep),
            owner + keep
        );
        assert_eq!(
            idle_deadline(preview_activity(owner, owner, late, keep), 900_000),
            owner + keep + 900_000
        );
        // Never backwards, and a zero cap means previews never count.
        assert_eq!(
            preview_activity(owner + 5, owner, owner + 1, keep),
            owner + 5
        );
        assert_eq!(preview_activity(owner, owner, owner + 60_000, 0), owner);
    }

    #[test]
    fn lifecycle_transitions() {
        use Status::*;
        let path = [Creating, WritingFiles, Installing, Starting, Ready];
        for w in path.windows(2) {
            assert!(w[0].can_move_to(w[1]), "{:?} → {:?}", w[0], w[1]);
        }
        assert!(!Creating.can_move_to(Ready), "no skipping steps");
        assert!(!Ready.can_move_to(Creating), "re-create only after stop");
        assert!(
            Installing.can_move_to(Failed)
                && Ready.can_move_to(Stopped)
                && Failed.can_move_to(Creating)
        );
        assert!(!Stopped.can_move_to(Stopped) && !Failed.can_move_to(Failed));
        assert!(Ready.is_active() && !Failed.is_active() && Starting.in_progress());
        for s in path {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn instance_types() {
        assert_eq!(
            InstanceType::parse("standard-3").unwrap().resources().0,
            12288
        );
        assert!(InstanceType::parse("huge").is_err());
    }

    #[test]
    fn preview_hosts_map_to_apps() {
        let id = "app_0123456789abcdef0123456789abcdef";
        let label = preview_label(id).unwrap();
        assert_eq!(
            app_for_preview_host(
                &format!("{label}.preview.localhost:8787"),
                "preview.localhost"
            )
            .as_ref()
            .map(AppId::as_str),
            Some(id)
        );
        assert_eq!(
            app_for_preview_host(
                &format!("{label}.preview.example.com"),
                "preview.example.com"
            )
            .as_ref()
            .map(AppId::as_str),
            Some(id)
        );
        for bad in [
            "preview.localhost",
            "x.preview.localhost",
            &format!("{label}.evilpreview.localhost"),
            &format!("a.{label}.preview.localhost"),
        ] {
            assert_eq!(
                app_for_preview_host(bad, "preview.localhost"),
                None,
                "{bad}"
            );
        }
        assert_eq!(preview_label("app_XYZ"), None);
    }

    #[test]
    fn preview_tokens_are_host_bound_and_expire() {
        let sign = |s: &str| format!("mac({s})");
        let t = preview_token("abc", 1000, sign);
        assert!(check_preview_token(&t, "abc", 999, sign));
        assert!(!check_preview_token(&t, "abd", 999, sign), "other host");
        assert!(!check_preview_token(&t, "abc", 1001, sign), "expired");
        assert!(
            !check_preview_token("2000.mac(abc|1000)", "abc", 999, sign),
            "expiry tampered"
        );
        assert!(!check_preview_token("garbage", "abc", 0, sign));
    }

    #[test]
    fn the_quota_refusal_names_the_limit() {
        let e = quota_reached(3);
        assert_eq!((e.status, e.code), (403, ErrorCode::E006));
        assert_eq!(e.fields["maxSandboxInstances"], "3");
        assert!(e.message.contains("at most 3"));
        assert_eq!(
            serde_json::to_string(&install_request()).unwrap(),
            r#"{"command":"npm install --prefer-offline --no-audit --no-fund","timeoutMs":300000}"#
        );
    }

    #[test]
    fn file_writes_are_checked_by_the_shared_path_rules() {
        let w = write_files_request(
            br#"{"files":[{"path":"./src//App.tsx","content":"x"},{"path":"a.bin","content":"AAE=","encoding":"base64"}]}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"{"files":[{"path":"src/App.tsx","content":"x"},{"path":"a.bin","content":"AAE=","encoding":"base64"}]}"#,
            "normal-form paths, utf8 left implicit: the agent's wire format"
        );
        let e = write_files_request(
            br#"{"files":[{"path":"../escape.txt","content":"x"},{"path":"/etc/passwd","content":1},{"path":"a\u0000b","content":"x","mode":"755"},"nope",{"content":"x","encoding":"utf16"}],"extra":true}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (400, crate::domain::error::ErrorCode::E004)
        );
        let f = &e.fields;
        assert!(f["files[0].path"].contains("`..`"), "{f:?}");
        assert!(f["files[1].path"].contains("absolute"), "{f:?}");
        assert_eq!(f["files[1].content"], "must be a string");
        assert!(f["files[2].path"].contains("NUL"), "{f:?}");
        assert_eq!(f["files[2].mode"], "unknown field");
        assert!(f["files[3]"].contains("object"));
        assert_eq!(f["files[4].path"], "is required");
        assert_eq!(f["files[4].encoding"], "must be utf8 or base64");
        assert_eq!(f["extra"], "unknown field");
        for body in [&br#"{}"#[..], br#"{"files":[]}"#, br#"{"files":"x"}"#] {
            assert!(write_files_request(body)
                .unwrap_err()
                .fields
                .contains_key("files"));
        }
        let e =
            write_files_request(br#"{"files":[{"path":"node_modules/x/index.js","content":""}]}"#)
                .unwrap_err();
        assert!(e.fields["files[0].path"].contains("node_modules"));
    }

    #[test]
    fn exec_requests_keep_the_command_and_the_agents_bounds() {
        let r = exec_request(
            br#"{"command":"sleep 30; echo never\n","timeoutMs":500,"env":{"NAME":"byte"}}"#,
        )
        .unwrap();
        assert_eq!(r.command.as_deref(), Some("sleep 30; echo never\n"));
        assert_eq!(r.timeout_ms, Some(500));
        assert_eq!(r.env["NAME"], "byte");
        assert_eq!(
            serde_json::to_string(&exec_request(br#"{"command":"id"}"#).unwrap()).unwrap(),
            r#"{"command":"id"}"#
        );
        let e = exec_request(br#"{"timeoutMs":0,"env":{"A=B":"x","N":1},"cwd":"/"}"#).unwrap_err();
        assert_eq!(e.fields["command"], "is required");
        assert!(e.fields["timeoutMs"].contains("3600000"));
        assert!(e.fields.contains_key("env.A=B") && e.fields.contains_key("env.N"));
        assert_eq!(e.fields["cwd"], "unknown field");
        assert!(exec_request(br#"{"command":"  "}"#).is_err());
        let long = format!(r#"{{"command":"{}"}}"#, "x".repeat(MAX_COMMAND_BYTES + 1));
        assert!(exec_request(long.as_bytes()).unwrap_err().fields["command"].contains("bytes"));
    }

    #[test]
    fn file_reads_name_a_checked_path() {
        assert_eq!(
            file_path_query("path=src%2FApp.tsx").unwrap().as_str(),
            "src/App.tsx"
        );
        assert!(file_path_query("path=..%2Fx").unwrap_err().fields["path"].contains("`..`"));
        assert_eq!(
            file_path_query("").unwrap_err().fields["path"],
            "query parameter is required"
        );
    }

    #[test]
    fn the_agent_gets_the_apps_cookies_and_nothing_of_the_platform() {
        let browser = [
            ("Host", "abc.preview.localhost:8787"),
            ("Authorization", "Bearer t"),
            ("Cookie", "app_cookie=hello; byte_session=s"),
            ("CF-Connecting-IP", "1.2.3.4"),
            ("x-forwarded-for", "1.2.3.4"),
            ("X-Byte-Call", r#"{"call":"status"}"#),
            ("accept", "*/*"),
        ];
        let on = |k: &str, hs: &[(String, String)]| {
            hs.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let preview = preview_agent_headers(browser);
        assert_eq!(on("cookie", &preview).as_deref(), Some("app_cookie=hello"));
        for gone in [
            "host",
            "authorization",
            "cf-connecting-ip",
            "x-forwarded-for",
            "x-byte-call",
        ] {
            assert_eq!(on(gone, &preview), None, "{gone}");
        }
        assert_eq!(on("accept", &preview).as_deref(), Some("*/*"));
        assert_eq!(preview.len(), 2);
    }

    #[test]
    fn agent_replies_become_reasons() {
        let r: ExecReply = serde_json::from_value(serde_json::json!({
            "exitCode": 1, "stdout": "", "stderr": "npm error 1\nnpm error 2\nnpm error 404 left-pad@99",
            "stdoutTruncated": false, "stderrTruncated": false, "timedOut": false, "durationMs": 10
        }))
        .unwrap();
        assert_eq!(
            install_failure(&r),
            "dependency install failed (exit code 1): 404 left-pad@99"
        );
        let timed_out = ExecReply {
            timed_out: true,
            exit_code: None,
            ..r.clone()
        };
        assert!(install_failure(&timed_out).contains("(timed out)"));
        let mut info = ServerInfo::stopped();
        assert_eq!(
            server_down_reason(&info),
            "dev server exited: it was stopped"
        );
        info.status = ServerStatus::Crashed;
        info.exit_code = Some(137);
        assert_eq!(server_down_reason(&info), "dev server exited with code 137");
        info.exit_code = None;
        assert_eq!(server_down_reason(&info), "dev server exited with a signal");
        info.exit_code = Some(1);
        info.error = Some("Port 20001 is already in use ".into());
        assert_eq!(
            server_down_reason(&info),
            "dev server exited with code 1: Port 20001 is already in use"
        );
    }
}
