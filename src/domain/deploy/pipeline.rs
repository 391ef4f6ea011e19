//! The deploy driver: build → artifact → publish → live, behind ports, host-tested.
//!
//! Guarantees:
//! - a failed build, an oversized output, a failed store or a failed publish publishes nothing:
//!   the previous deployment keeps serving and stays the live one; the attempt is recorded as
//!   failed with its reason (`E007`) and the build's structured errors;
//! - a deployment becomes live (and the app `is_deployed` with its URL) only after the hosting
//!   accepted it, in one write that also retires the previous live one;
//! - a rollback republishes a stored manifest as it is (no build);
//! - every step is announced on the app's event stream.

use super::artifact::{Asset, Bundle, Module};
use super::manifest::{content_type, Manifest, MAX_ARTIFACT_BYTES, MAX_ARTIFACT_FILES};
use crate::domain::codegen::events::AgentEvent;
use crate::domain::error::ErrorCode;
use byte_protocol::Diagnostic;
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr};

/// A deployment's lifecycle (`deployments.status`).
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
pub enum DeployStatus {
    /// Building, storing or publishing.
    Building,
    /// Serving at the app's address.
    Live,
    /// Was live; another deployment replaced it (it can be rolled back to).
    Superseded,
    /// Was live; the app was undeployed.
    Undeployed,
    /// Never served: the build, the artifact or the publish failed.
    Failed,
}

impl DeployStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// A step of a deployment, as `deploy_progress` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeployStep {
    Building,
    Storing,
    Publishing,
}

/// What a build produced: the output directory's files (paths relative to it), how the app's
/// template lays them out, and the app's saved version the sandbox held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    pub files: Vec<(String, Vec<u8>)>,
    pub layout: BuildLayout,
    pub source_version: u32,
}

/// Why a deployment failed: a message for the user and the build's structured errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployFailure {
    pub message: String,
    #[serde(default)]
    pub errors: Vec<Diagnostic>,
}

impl DeployFailure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            errors: Vec::new(),
        }
    }
}

/// How the app's template lays its build out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLayout {
    /// The app's Worker entry, relative to the output directory (`_worker.js`), when the template
    /// has server code; it becomes the main module and is not served as an asset.
    pub worker_entry: Option<String>,
    /// Whether deployed code may make outbound requests.
    pub outbound: bool,
}

/// Turns a build's output into what is published: every file an asset at `/<path>`, except
/// the Worker entry, which becomes the main module. Refuses an empty output, one without
/// `index.html` (nothing to serve), a missing Worker entry and oversized outputs.
pub fn bundle_of(
    files: Vec<(String, Vec<u8>)>,
    layout: &BuildLayout,
) -> Result<Bundle, DeployFailure> {
    if files.len() > MAX_ARTIFACT_FILES {
        return Err(DeployFailure::new(format!(
            "the build produced {} files; a deployment holds at most {MAX_ARTIFACT_FILES}",
            files.len()
        )));
    }
    let total: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    if total > MAX_ARTIFACT_BYTES {
        return Err(DeployFailure::new(format!(
            "the build output is {} MB; a deployment holds at most {} MB",
            total.div_ceil(1024 * 1024),
            MAX_ARTIFACT_BYTES / (1024 * 1024)
        )));
    }
    let mut bundle = Bundle::default();
    for (path, bytes) in files {
        let path = path.trim_start_matches('/').to_string();
        if layout.worker_entry.as_deref() == Some(path.as_str()) {
            let content = String::from_utf8(bytes).map_err(|_| {
                DeployFailure::new(format!("the Worker entry `{path}` is not UTF-8 text"))
            })?;
            bundle.main_module = Some(path.clone());
            bundle.modules.push(Module {
                name: path,
                content,
            });
        } else {
            bundle.assets.push(Asset {
                content_type: content_type(&path).into(),
                path: format!("/{path}"),
                bytes,
            });
        }
    }
    bundle.assets.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(entry) = &layout.worker_entry {
        if bundle.main_module.is_none() {
            return Err(DeployFailure::new(format!(
                "the build produced no Worker entry `{entry}`"
            )));
        }
    }
    if !bundle.assets.iter().any(|a| a.path == "/index.html") {
        return Err(DeployFailure::new(
            "the build produced no index.html: there is nothing to serve",
        ));
    }
    Ok(bundle)
}

#[allow(async_fn_in_trait)]
pub trait Builder {
    /// Runs the app's production build and reads its output.
    async fn build(&self) -> Result<BuildOutput, DeployFailure>;
}

#[allow(async_fn_in_trait)]
pub trait Artifacts {
    /// Stores the manifest and every blob it names that is not stored yet.
    async fn store(&self, manifest: &Manifest, bundle: &Bundle) -> Result<(), String>;
}

/// Where deployed apps run: Workers for Platforms in production, the Worker Loader locally.
#[allow(async_fn_in_trait)]
pub trait AppHosting {
    async fn publish(&self, manifest: &Manifest, bundle: &Bundle) -> Result<(), DeployFailure>;
    async fn unpublish(&self, app_id: &str) -> Result<(), DeployFailure>;
}

/// The deployments table and the app's deployed state.
#[allow(async_fn_in_trait)]
pub trait Records {
    /// Records `number` as live at `url` (its source version, size and content hash), retires
    /// the previous live one and marks the app deployed — one write.
    async fn live(&self, number: u32, url: &str, m: &Manifest) -> Result<(), String>;
    /// Records `number` as failed with `failure`.
    async fn failed(&self, number: u32, failure: &DeployFailure) -> Result<(), String>;
}

/// The app's event streams (the code generator object stores and sends them).
#[allow(async_fn_in_trait)]
pub trait Events {
    async fn emit(&self, ev: AgentEvent);
}

/// One deployment's work.
pub struct Job {
    pub app_id: String,
    pub number: u32,
    pub created_at: i64,
    pub url: String,
}

pub struct Deployer<'a, B, A, H, R, E> {
    pub builder: &'a B,
    pub artifacts: &'a A,
    pub hosting: &'a H,
    pub records: &'a R,
    pub events: &'a E,
}

impl<B: Builder, A: Artifacts, H: AppHosting, R: Records, E: Events> Deployer<'_, B, A, H, R, E> {
    /// Builds and publishes `job`; `Ok` with the manifest once it is live.
    pub async fn deploy(&self, job: &Job) -> Result<Manifest, DeployFailure> {
        self.events
            .emit(AgentEvent::DeployStarted {
                deployment: job.number,
            })
            .await;
        let result = self.build_and_publish(job).await;
        self.settle(job, result).await
    }

    /// Republishes `manifest`'s content (read back into `bundle`) as deployment `job.number`.
    pub async fn rollback(
        &self,
        job: &Job,
        manifest: Manifest,
        bundle: Bundle,
    ) -> Result<Manifest, DeployFailure> {
        self.events
            .emit(AgentEvent::DeployStarted {
                deployment: job.number,
            })
            .await;
        let manifest = Manifest {
            number: job.number,
            created_at: job.created_at,
            ..manifest
        };
        let result = self.store_and_publish(job.number, manifest, bundle).await;
        self.settle(job, result).await
    }

    async fn build_and_publish(&self, job: &Job) -> Result<Manifest, DeployFailure> {
        self.progress(job.number, DeployStep::Building).await;
        let out = self.builder.build().await?;
        let bundle = bundle_of(out.files, &out.layout)?;
        let manifest = Manifest::of(
            &job.app_id,
            job.number,
            out.source_version,
            job.created_at,
            &bundle,
            out.layout.outbound,
        );
        self.store_and_publish(job.number, manifest, bundle).await
    }

    async fn store_and_publish(
        &self,
        number: u32,
        manifest: Manifest,
        bundle: Bundle,
    ) -> Result<Manifest, DeployFailure> {
        self.progress(number, DeployStep::Storing).await;
        self.artifacts
            .store(&manifest, &bundle)
            .await
            .map_err(|e| DeployFailure::new(format!("storing the deployment failed: {e}")))?;
        self.progress(number, DeployStep::Publishing).await;
        self.hosting.publish(&manifest, &bundle).await?;
        Ok(manifest)
    }

    async fn settle(
        &self,
        job: &Job,
        result: Result<Manifest, DeployFailure>,
    ) -> Result<Manifest, DeployFailure> {
        let recorded = match &result {
            Ok(m) => self.records.live(job.number, &job.url, m).await,
            Err(f) => self.records.failed(job.number, f).await,
        };
        let result = match (result, recorded) {
            (Ok(m), Ok(())) => Ok(m),
            (Ok(_), Err(e)) => {
                let f = DeployFailure::new(format!("recording the deployment failed: {e}"));
                let _ = self.records.failed(job.number, &f).await;
                Err(f)
            }
            (Err(f), _) => Err(f),
        };
        match &result {
            Ok(_) => {
                self.events
                    .emit(AgentEvent::DeployComplete {
                        deployment: job.number,
                        url: job.url.clone(),
                    })
                    .await
            }
            Err(f) => {
                self.events
                    .emit(AgentEvent::DeployFailed {
                        deployment: job.number,
                        code: ErrorCode::E007,
                        message: f.message.clone(),
                        errors: f.errors.clone(),
                    })
                    .await
            }
        }
        result
    }

    async fn progress(&self, deployment: u32, step: DeployStep) {
        self.events
            .emit(AgentEvent::DeployProgress { deployment, step })
            .await;
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
