//! One-click deployment: what a deployment is made of (`artifact`), how a built app becomes one,
//! and how it is published. Publishing has two implementations behind one `AppHosting` seam:
//! Workers for Platforms through the Cloudflare API in production (`cloudflare`) and Dynamic
//! Workers (`[[worker_loaders]]`) under `wrangler dev`.

pub mod artifact;
pub mod call;
pub mod cloudflare;
pub mod manifest;
pub mod pipeline;
pub mod router;
