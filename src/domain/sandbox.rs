//! Sandboxes: the lifecycle state machine a `UserAppSandboxService` object walks, the commands it
//! takes (one enum shared by caller and object), instance types, preview hostnames and the
//! short-lived tokens that open private previews.
//!
//! Invariants: a sandbox only moves along [`Status::can_move_to`]; a preview hostname maps to
//! exactly one app id and back; a preview token names its host and expires.

use serde::{Deserialize, Serialize};

/// Lifecycle: creating → writing_files → installing → starting → ready; any step may fail;
/// a live sandbox can be stopped; a stopped or failed one can be created again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
        match self {
            Status::Creating => "creating",
            Status::WritingFiles => "writing_files",
            Status::Installing => "installing",
            Status::Starting => "starting",
            Status::Ready => "ready",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::Creating,
            Status::WritingFiles,
            Status::Installing,
            Status::Starting,
            Status::Ready,
            Status::Failed,
            Status::Stopped,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceType {
    #[serde(rename = "lite")]
    Lite,
    #[serde(rename = "standard-1")]
    Standard1,
    #[serde(rename = "standard-3")]
    Standard3,
    #[serde(rename = "standard-4")]
    Standard4,
}

impl InstanceType {
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
        match self {
            Self::Lite => "lite",
            Self::Standard1 => "standard-1",
            Self::Standard3 => "standard-3",
            Self::Standard4 => "standard-4",
        }
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

/// Commands a sandbox object takes; the Worker sends them as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Create (or re-create) the sandbox from a template and bring it to `ready`.
    Create {
        app_id: String,
        user_id: String,
        template: String,
    },
    Status,
    Stop,
    /// Marks activity (defers idle shutdown).
    Touch,
}

/// What a sandbox object reports about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub app_id: String,
    pub user_id: String,
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

/// The app a preview host belongs to: `<label>.<preview domain>[:port]` → `app_<label>`.
pub fn app_for_preview_host(host: &str, preview_domain: &str) -> Option<String> {
    let host = host.split(':').next()?.to_ascii_lowercase();
    let label = host.strip_suffix(preview_domain)?.strip_suffix('.')?;
    let id = format!("app_{label}");
    preview_label(&id).is_some().then_some(id)
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

#[cfg(test)]
mod tests {
    use super::*;

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
            .as_deref(),
            Some(id)
        );
        assert_eq!(
            app_for_preview_host(
                &format!("{label}.preview.example.com"),
                "preview.example.com"
            )
            .as_deref(),
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
    fn commands_round_trip() {
        let c = Command::Create {
            app_id: "a".into(),
            user_id: "u".into(),
            template: "react-vite".into(),
        };
        let j = serde_json::to_string(&c).unwrap();
        assert!(j.contains(r#""op":"create""#));
        assert_eq!(serde_json::from_str::<Command>(&j).unwrap(), c);
    }
}
