//! `GET /api/health`: can the Worker reach D1, KV and R2, and which build is this; and
//! `GET /api/openapi.json`, the API's contract ([`crate::domain::openapi`]).

use crate::domain::error::ApiResult;
use crate::http::{json, App};
use crate::services::now_ms;
use serde_json::json;
use worker::Response;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("BYTE_BUILD_COMMIT");

async fn probe<F: std::future::Future<Output = worker::Result<()>>>(f: F) -> serde_json::Value {
    let start = now_ms();
    match f.await {
        Ok(()) => json!({ "ok": true, "latencyMs": now_ms() - start }),
        Err(e) => {
            worker::console_error!("health probe failed: {e}");
            json!({ "ok": false, "error": "unreachable" })
        }
    }
}

pub async fn health(app: &App) -> ApiResult<Response> {
    let env = &app.env;
    let (d1, kv, r2) = futures_util::join!(
        probe(async {
            env.d1(crate::services::db::BINDING)?
                .prepare("SELECT 1 AS ok")
                .first::<serde_json::Value>(None)
                .await?;
            Ok(())
        }),
        probe(async {
            env.kv(crate::services::sessions::KV_BINDING)?
                .get("health:probe")
                .text()
                .await?;
            Ok(())
        }),
        probe(async {
            env.bucket("TEMPLATES")?.head("health/probe").await?;
            Ok(())
        })
    );
    let ok = [&d1, &kv, &r2].iter().all(|c| c["ok"] == true);
    json(
        if ok { 200 } else { 503 },
        &json!({
            "status": if ok { "ok" } else { "degraded" },
            "version": VERSION,
            "commit": COMMIT,
            "checks": { "d1": d1, "kv": kv, "r2": r2 },
        }),
    )
}

/// The OpenAPI document, serialized once per isolate (it only changes with the build).
pub fn openapi() -> ApiResult<Response> {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOC.get_or_init(|| crate::domain::openapi::document(VERSION).to_string());
    let resp = Response::from_bytes(body.clone().into_bytes())?;
    resp.headers().set("Content-Type", "application/json")?;
    resp.headers().set("Cache-Control", "public, max-age=300")?;
    Ok(resp)
}
