//! The contract between the deploy routes (and the deletion plan) and an app's `AppDeployer`
//! object, and the shapes the API answers with.

use super::pipeline::{DeployFailure, DeployStatus};
use crate::domain::ids::AppId;
use crate::domain::sandbox_call::Owner;
use serde::{Deserialize, Serialize};

/// The Durable Object binding of the deployer objects (one per app id).
pub const BINDING: &str = "DEPLOYER";

/// Everything asked of an app's deployer. The route checked that the caller owns the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum DeployCall {
    /// Build and publish the app as it runs in its sandbox: 202 with the new deployment (the
    /// work runs in the object's alarm; progress is on the app's event streams). 409 while
    /// another deployment of the app is under way.
    Deploy {
        by: Owner,
        /// `scheme://host[:port]` the API was reached on (the local address of a deployed app
        /// shares its scheme and port).
        origin: String,
    },
    /// Republish deployment `number`'s artifact (no build) as a new deployment: 200 with it.
    Rollback {
        by: Owner,
        origin: String,
        number: u32,
    },
    /// Take the app down: 200, 404 when it is not deployed.
    Undeploy { by: Owner },
    /// The app is deleted (sent by its deletion plan): stop, unpublish, erase the object.
    Erase { by: Owner },
}

impl DeployCall {
    pub fn owner(&self) -> &Owner {
        match self {
            DeployCall::Deploy { by, .. }
            | DeployCall::Rollback { by, .. }
            | DeployCall::Undeploy { by }
            | DeployCall::Erase { by } => by,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    pub fn parse(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| format!("malformed deploy call: {e}"))
    }
}

/// A deployment as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub app_id: String,
    /// 1, 2, … within the app.
    pub number: u32,
    /// The app's saved version it was built from (0: none saved yet).
    pub source_version: u32,
    /// The deployment whose artifact a rollback republished.
    pub rollback_of: Option<u32>,
    pub status: DeployStatus,
    /// Where it is served (while live) or was served.
    pub url: Option<String>,
    /// Bytes of deployed content.
    pub size: u64,
    pub content_hash: Option<String>,
    /// Why it failed (`E007`), with the build's structured errors.
    #[schema(value_type = Option<Object>)]
    pub error: Option<DeployFailure>,
    /// Epoch seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// The hostname label of an app's deployment: its id's hex part, as for previews.
pub fn host_label(app_id: &str) -> Option<&str> {
    crate::domain::sandbox::preview_label(app_id)
}

/// The address of an app's deployment: under a `*.localhost` domain (`make dev`), on the scheme
/// and port the API was reached on; under a real domain, `https://<label>.<domain>/` (Cloudflare
/// serves the wildcard route over TLS).
pub fn app_url(app_id: &str, domain: &str, origin: &str) -> Option<String> {
    let label = host_label(app_id)?;
    let local = domain == "localhost" || domain.ends_with(".localhost");
    Some(match url::Url::parse(origin).ok() {
        Some(u) if local => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{label}.{domain}{port}/", u.scheme())
        }
        _ => format!("https://{label}.{domain}/"),
    })
}

/// The app a deployed-app host belongs to: `<label>.<domain>[:port]` → `app_<label>`, read like
/// a preview host.
pub fn app_for_host(host: &str, domain: &str) -> Option<AppId> {
    crate::domain::sandbox::app_for_preview_host(host, domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "app_0123456789abcdef0123456789abcdef";

    #[test]
    fn local_addresses_keep_the_api_port_and_production_is_https() {
        assert_eq!(
            app_url(APP, "apps.localhost", "http://localhost:8787").unwrap(),
            "http://0123456789abcdef0123456789abcdef.apps.localhost:8787/"
        );
        assert_eq!(
            app_url(APP, "apps.example.com", "https://build.example.com").unwrap(),
            "https://0123456789abcdef0123456789abcdef.apps.example.com/"
        );
        assert_eq!(
            app_url(APP, "apps.example.com", "http://localhost:8787").unwrap(),
            "https://0123456789abcdef0123456789abcdef.apps.example.com/"
        );
        assert_eq!(app_url("not-an-app", "apps.localhost", "http://x"), None);
    }

    #[test]
    fn hosts_map_back_to_their_app_and_nothing_else() {
        let host = "0123456789abcdef0123456789abcdef.apps.localhost:8787";
        assert_eq!(
            app_for_host(host, "apps.localhost")
                .as_ref()
                .map(AppId::as_str),
            Some(APP)
        );
        assert_eq!(
            app_for_host(&host.to_uppercase(), "apps.localhost")
                .as_ref()
                .map(AppId::as_str),
            Some(APP)
        );
        for bad in [
            "apps.localhost",
            "x.apps.localhost",
            "0123456789abcdef0123456789abcdef.apps.localhost.evil.com",
            "a.0123456789abcdef0123456789abcdef.apps.localhost",
            "0123456789abcdef0123456789abcdef.preview.localhost",
        ] {
            assert_eq!(app_for_host(bad, "apps.localhost"), None, "{bad}");
        }
    }

    #[test]
    fn calls_round_trip() {
        let c = DeployCall::Rollback {
            by: Owner {
                app_id: APP.into(),
                user_id: "u".into(),
            },
            origin: "http://localhost:8787".into(),
            number: 3,
        };
        assert_eq!(DeployCall::parse(c.to_json().as_bytes()).unwrap(), c);
        assert!(DeployCall::parse(b"{\"call\":\"nope\"}").is_err());
    }
}
