//! The dev server's status (`GET …/process`, and the reply of start, stop and restart) and the
//! start/restart request.
//!
//! States: `stopped → starting → running`, and `crashed` when the process exited without being
//! asked to; a crashed server stays crashed, with its exit code (and the server's own last
//! error line), until started again. `running` means the process that was started holds the
//! listening socket on its port and answers HTTP there.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerStatus {
    Stopped,
    Starting,
    Running,
    Crashed,
}

impl ServerStatus {
    /// Not running and not on its way there.
    pub fn is_down(self) -> bool {
        matches!(self, ServerStatus::Stopped | ServerStatus::Crashed)
    }
}

/// `{"status","port","pid","exitCode","restarts","startedAt","command"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub status: ServerStatus,
    pub port: Option<u16>,
    pub pid: Option<u32>,
    /// `None` while running, when stopped on request, or when killed by a signal.
    pub exit_code: Option<i32>,
    /// Restarts requested through the API (never automatic).
    #[serde(default)]
    pub restarts: u32,
    /// Milliseconds since the Unix epoch.
    pub started_at: Option<u64>,
    pub command: Option<String>,
    /// When crashed: the dev server's own last error line (e.g. Vite's
    /// `Port 20001 is already in use`), at most 300 characters. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ServerInfo {
    pub fn stopped() -> Self {
        ServerInfo {
            status: ServerStatus::Stopped,
            port: None,
            pid: None,
            exit_code: None,
            restarts: 0,
            started_at: None,
            command: None,
            error: None,
        }
    }
}

/// `POST …/process/start` and `…/restart` `{"command"?}` (`{port}` in it is replaced by the
/// allocated port).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_shape() {
        let stopped = ServerInfo::stopped();
        assert_eq!(
            serde_json::to_value(&stopped).unwrap(),
            json!({ "status": "stopped", "port": null, "pid": null, "exitCode": null, "restarts": 0, "startedAt": null, "command": null })
        );
        let crashed: ServerInfo = serde_json::from_value(json!({ "status": "crashed", "port": 41000, "pid": 7, "exitCode": 1, "restarts": 2, "startedAt": 1700000000000u64, "command": "npm run dev" })).unwrap();
        assert_eq!(
            (crashed.status, crashed.exit_code),
            (ServerStatus::Crashed, Some(1))
        );
        assert!(crashed.status.is_down() && !ServerStatus::Starting.is_down());
        assert_eq!(
            serde_json::to_string(&StartRequest::default()).unwrap(),
            "{}"
        );
        assert!(serde_json::from_value::<ServerStatus>(json!("paused")).is_err());
    }
}
