//! Publishing a `Bundle` to a Workers for Platforms dispatch namespace through the Cloudflare API.
