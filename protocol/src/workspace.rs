//! Workspace bodies: create (`PUT /v1/workspaces/{ws}`) and inspect (`GET`).
//!
//! Creating is idempotent: `created` says whether this call made it. A workspace id is
//! `[a-z0-9-]{1,64}` (checked by byte-sandbox; the Worker uses an app's preview label).

use serde::{Deserialize, Serialize};

use crate::process::ServerInfo;

/// `PUT /v1/workspaces/{ws}` `{"template"?}`: an empty workspace without one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateWorkspace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// `PUT /v1/workspaces/{ws}` → `{"id","created"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceCreated {
    pub id: String,
    pub created: bool,
}

/// `GET /v1/workspaces/{ws}` → `{"id","server"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    pub id: String,
    pub server: ServerInfo,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes() {
        let c = CreateWorkspace {
            template: Some("react-vite".into()),
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"template":"react-vite"}"#
        );
        assert_eq!(
            serde_json::from_value::<CreateWorkspace>(json!({})).unwrap(),
            CreateWorkspace::default()
        );
        let w = WorkspaceCreated {
            id: "w1".into(),
            created: true,
        };
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            json!({ "id": "w1", "created": true })
        );
        let i = WorkspaceInfo {
            id: "w1".into(),
            server: ServerInfo::stopped(),
        };
        let v = serde_json::to_value(&i).unwrap();
        assert_eq!(v["server"]["status"], "stopped");
        assert_eq!(serde_json::from_value::<WorkspaceInfo>(v).unwrap(), i);
    }
}
