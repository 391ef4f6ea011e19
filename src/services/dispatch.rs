//! The dispatch hosting: deployments uploaded to a Workers for Platforms namespace through the
//! Cloudflare API ([`crate::domain::deploy::cloudflare`]).

use crate::domain::config::DispatchSettings;
use crate::domain::deploy::artifact::Bundle;
use crate::domain::deploy::manifest::Manifest;
use crate::domain::deploy::pipeline::DeployFailure;
use worker::Env;

pub async fn publish(
    _env: &Env,
    _settings: &DispatchSettings,
    _manifest: &Manifest,
    _bundle: &Bundle,
) -> Result<(), DeployFailure> {
    Err(DeployFailure::new(
        "MERGE-PENDING: the Cloudflare API client",
    ))
}

pub async fn unpublish(
    _env: &Env,
    _settings: &DispatchSettings,
    _app_id: &str,
) -> Result<(), DeployFailure> {
    Err(DeployFailure::new(
        "MERGE-PENDING: the Cloudflare API client",
    ))
}
