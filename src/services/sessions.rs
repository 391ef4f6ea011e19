//! Session liveness: D1 is the truth (`sessions.revoked_at`), KV caches the answer for an hour
//! (the spec's `userSessions` TTL) so most requests skip the database.
//!
//! Invariant: logout writes `revoked` to the cache before answering, so a revoked token is refused
//! from then on wherever KV has caught up (immediately locally, within KV's propagation delay at the edge).

use super::db;
use crate::domain::error::ApiResult;
use crate::http::internal;
use worker::{kv::KvStore, D1Database};

pub const KV_BINDING: &str = "KV";
const TTL_SECONDS: u64 = 3600;

fn key(sid: &str) -> String {
    format!("session:{sid}")
}

pub async fn is_live(kv: &KvStore, d1: &D1Database, sid: &str, user_id: &str) -> ApiResult<bool> {
    let cached = kv.get(&key(sid)).text().await.map_err(internal)?;
    match cached.as_deref() {
        Some(v) if v == format!("live:{user_id}") => return Ok(true),
        Some(_) => return Ok(false),
        None => {}
    }
    let live = db::session_is_live(d1, sid, user_id).await?;
    let value = if live {
        format!("live:{user_id}")
    } else {
        "revoked".to_string()
    };
    kv.put(&key(sid), value)
        .map_err(internal)?
        .expiration_ttl(TTL_SECONDS)
        .execute()
        .await
        .map_err(internal)?;
    Ok(live)
}

pub async fn revoke(kv: &KvStore, d1: &D1Database, sid: &str, user_id: &str) -> ApiResult<()> {
    db::revoke_session(d1, sid, user_id).await?;
    kv.put(&key(sid), "revoked")
        .map_err(internal)?
        .expiration_ttl(TTL_SECONDS)
        .execute()
        .await
        .map_err(internal)?;
    Ok(())
}
