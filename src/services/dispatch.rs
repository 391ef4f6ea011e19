//! The dispatch hosting: deployments uploaded to a Workers for Platforms namespace through the
//! Cloudflare API ([`crate::domain::deploy::cloudflare`], over [`FetchCloudflareApi`]), one
//! script per app ([`script_name`]).

use super::cloudflare_api::FetchCloudflareApi;
use crate::domain::deploy::artifact::Bundle;
use crate::domain::deploy::cloudflare::{self, script_name, DispatchTarget, PublishOptions};
use crate::domain::deploy::manifest::Manifest;
use crate::domain::deploy::pipeline::DeployFailure;

pub async fn publish(
    target: &DispatchTarget,
    manifest: &Manifest,
    bundle: &Bundle,
) -> Result<(), DeployFailure> {
    let options = PublishOptions {
        durable_objects: Vec::new(),
        // The app's own Worker answers what is not an asset (its API); assets go first.
        run_worker_first: None,
    };
    cloudflare::publish_with(
        &FetchCloudflareApi,
        target,
        &script_name(&manifest.app_id),
        bundle,
        &options,
    )
    .await
    .map(|_| ())
    .map_err(DeployFailure::from)
}

pub async fn unpublish(target: &DispatchTarget, app_id: &str) -> Result<(), DeployFailure> {
    cloudflare::unpublish(&FetchCloudflareApi, target, &script_name(app_id))
        .await
        .map_err(DeployFailure::from)
}
