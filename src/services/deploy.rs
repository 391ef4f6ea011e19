//! The deploy driver's ports ([`crate::domain::deploy::pipeline`]) on the platform: the build in
//! the app's sandbox (prepared by the code generator object), the artifact in R2, the records in
//! D1, and the events through the code generator object to the app's clients.

use super::{deployments, r2, sandbox as sandbox_service};
use crate::domain::codegen::agent_call::{AgentCall, PreparedDeploy, CALL_HEADER};
use crate::domain::codegen::events::AgentEvent;
use crate::domain::deploy::artifact::{asset_hash, Bundle};
use crate::domain::deploy::manifest::{blob_key, manifest_key, Manifest};
use crate::domain::deploy::pipeline::{
    Artifacts, BuildLayout, BuildOutput, Builder, DeployFailure, Events, Records,
};
use crate::domain::sandbox_call::{Owner, SandboxCall};
use crate::domain::templates;
use base64::Engine;
use byte_protocol::{parse_reply, BuildReply, BuildRequest};
use std::collections::BTreeSet;
use worker::{Bucket, D1Database, Env, Headers, Method, Request, RequestInit, Response};

/// The R2 bucket deployments are stored in (beside the app's versions).
pub const BUCKET: &str = "APP_FILES";

/// Sends `call` to the app's code generator object.
pub async fn to_agent(env: &Env, call: &AgentCall) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set(CALL_HEADER, &call.to_json())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let req = Request::new_with_init("https://codegen/", &init)?;
    super::stub(
        env,
        crate::domain::codegen::agent_call::BINDING,
        call.app_id().as_str(),
    )?
    .fetch_with_request(req)
    .await
}

async fn read<T: serde::de::DeserializeOwned>(r: worker::Result<Response>) -> Result<T, String> {
    let mut r = r.map_err(|e| format!("unreachable: {e}"))?;
    let bytes = r.bytes().await.map_err(|e| e.to_string())?;
    parse_reply(r.status_code(), &bytes).map_err(|e| e.message)
}

/// The production build, in the app's sandbox.
pub struct SandboxBuilder<'a> {
    pub env: &'a Env,
    pub by: Owner,
    pub timeout_ms: u64,
}

impl Builder for SandboxBuilder<'_> {
    async fn build(&self) -> Result<BuildOutput, DeployFailure> {
        let prepare = AgentCall::PrepareDeploy {
            by: self.by.clone(),
        };
        let prepared: PreparedDeploy = read(to_agent(self.env, &prepare).await)
            .await
            .map_err(|e| DeployFailure::new(format!("the sandbox could not be prepared: {e}")))?;
        let template = templates::find(&prepared.template)
            .or_else(|| templates::find(templates::DEFAULT))
            .ok_or_else(|| DeployFailure::new("the app's template is unknown"))?;
        let call = SandboxCall::Build(BuildRequest {
            command: Some(template.build_command.to_string()),
            timeout_ms: Some(self.timeout_ms),
            output_dir: Some(template.output_dir.to_string()),
        });
        let reply: BuildReply = read(sandbox_service::send(self.env, &self.by.app_id, &call).await)
            .await
            .map_err(|e| DeployFailure::new(format!("the build could not run: {e}")))?;
        if !reply.ok {
            let message = if reply.output.timed_out {
                format!(
                    "the build timed out after {} s",
                    self.timeout_ms.div_ceil(1000)
                )
            } else {
                match reply.errors.len() {
                    0 => "the build failed".to_string(),
                    1 => "the build failed with 1 error".to_string(),
                    n => format!("the build failed with {n} errors"),
                }
            };
            return Err(DeployFailure {
                message,
                errors: reply.errors,
            });
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut files = Vec::with_capacity(reply.files.len());
        for f in reply.files {
            let rel = f
                .path
                .strip_prefix(&format!("{}/", reply.output_dir.trim_end_matches('/')))
                .unwrap_or(&f.path)
                .to_string();
            let bytes = b64
                .decode(f.content.as_bytes())
                .map_err(|_| DeployFailure::new(format!("unreadable build output {rel}")))?;
            files.push((rel, bytes));
        }
        Ok(BuildOutput {
            files,
            layout: BuildLayout {
                worker_entry: template.worker_entry.map(str::to_string),
                outbound: template.outbound,
            },
            source_version: prepared.version,
        })
    }
}

/// Deployments in R2: content-addressed blobs (stored once) and one manifest per deployment.
pub struct R2Artifacts {
    pub bucket: Bucket,
}

impl Artifacts for R2Artifacts {
    async fn store(&self, manifest: &Manifest, bundle: &Bundle) -> Result<(), String> {
        let app = &manifest.app_id;
        let contents = bundle
            .assets
            .iter()
            .map(|a| a.bytes.as_slice())
            .chain(bundle.modules.iter().map(|m| m.content.as_bytes()));
        let mut done = BTreeSet::new();
        for bytes in contents {
            let hash = asset_hash(bytes);
            if !done.insert(hash.clone()) {
                continue;
            }
            let key = blob_key(app, &hash);
            let present = self.bucket.head(&key).await.map_err(|e| e.to_string())?;
            if present.is_none() {
                self.bucket
                    .put(&key, bytes.to_vec())
                    .execute()
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let json = serde_json::to_string(manifest).map_err(|e| e.to_string())?;
        self.bucket
            .put(manifest_key(app, manifest.number), json)
            .execute()
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Reads deployment `number`'s manifest and content back.
pub async fn load(
    bucket: &Bucket,
    app_id: &str,
    number: u32,
) -> Result<Option<(Manifest, Bundle)>, String> {
    let Some(bytes) = r2::bucket_bytes(bucket, &manifest_key(app_id, number)).await? else {
        return Ok(None);
    };
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let mut blobs = std::collections::HashMap::new();
    for hash in manifest.blob_hashes() {
        if let Some(b) = r2::bucket_bytes(bucket, &blob_key(app_id, &hash)).await? {
            blobs.insert(hash, b);
        }
    }
    let bundle = manifest.bundle(|h| blobs.get(h).cloned())?;
    Ok(Some((manifest, bundle)))
}

/// The deployments table.
pub struct D1Records<'a> {
    pub db: &'a D1Database,
    pub app_id: String,
}

impl Records for D1Records<'_> {
    async fn live(&self, number: u32, url: &str, m: &Manifest) -> Result<(), String> {
        deployments::mark_live(self.db, &self.app_id, number, url, m)
            .await
            .map_err(|e| e.message)
    }

    async fn failed(&self, number: u32, failure: &DeployFailure) -> Result<(), String> {
        deployments::mark_failed(self.db, &self.app_id, number, failure)
            .await
            .map_err(|e| e.message)
    }
}

/// Deployment events, stored and sent by the app's code generator object.
pub struct AgentEvents<'a> {
    pub env: &'a Env,
    pub app_id: String,
}

impl Events for AgentEvents<'_> {
    async fn emit(&self, event: AgentEvent) {
        let call = AgentCall::Publish {
            app_id: self.app_id.as_str().into(),
            event,
        };
        match to_agent(self.env, &call).await {
            Ok(r) if r.status_code() < 300 => {}
            Ok(r) => worker::console_warn!("deploy: an event was refused ({})", r.status_code()),
            Err(e) => worker::console_warn!("deploy: an event could not be sent: {e}"),
        }
    }
}
