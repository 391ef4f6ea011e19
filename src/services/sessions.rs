//! Session liveness: D1 is the truth (`sessions.revoked_at`), KV caches the answer for an hour
//! (the spec's `userSessions` TTL) so most requests skip the database, and each isolate memoizes
//! "live" answers for [`MEMO_MS`] so hot sessions skip KV too.
//!
//! Invariant: logout drops the isolate's memo and writes `revoked` to KV before answering, so a
//! revoked token is refused at once by that isolate and by others within KV's own propagation
//! delay (the memo is shorter than KV's 60-second edge cache, so it adds no staleness class).

use super::{db, now_ms};
use crate::domain::cache::TtlCache;
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::{SessionId, UserId};
use crate::http::auth::Identity;
use crate::http::internal;
use worker::{kv::KvStore, D1Database};

pub use crate::http::KV_BINDING;
const TTL_SECONDS: u64 = 3600;
/// How long an isolate trusts a "live" answer without asking KV again.
pub const MEMO_MS: i64 = 30_000;

thread_local! {
    static MEMO: std::cell::RefCell<TtlCache<SessionId, UserId>> = std::cell::RefCell::new(TtlCache::new(10_000));
}

fn key(sid: &SessionId) -> String {
    format!("session:{sid}")
}

pub async fn is_live(
    kv: &KvStore,
    d1: &D1Database,
    sid: &SessionId,
    user_id: &UserId,
) -> ApiResult<bool> {
    let now = now_ms();
    if MEMO.with(|m| m.borrow().get(sid, now)).as_ref() == Some(user_id) {
        return Ok(true);
    }
    let cached = kv.get(&key(sid)).text().await.map_err(internal)?;
    match cached.as_deref() {
        Some(v) if v == format!("live:{user_id}") => {
            MEMO.with(|m| {
                m.borrow_mut()
                    .insert(sid.clone(), user_id.clone(), now, MEMO_MS)
            });
            return Ok(true);
        }
        Some(_) => return Ok(false),
        None => {}
    }
    let live = db::session_is_live(d1, sid, user_id).await?;
    if live {
        MEMO.with(|m| {
            m.borrow_mut()
                .insert(sid.clone(), user_id.clone(), now, MEMO_MS)
        });
    }
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

pub async fn revoke(
    kv: &KvStore,
    d1: &D1Database,
    sid: &SessionId,
    user_id: &UserId,
) -> ApiResult<()> {
    MEMO.with(|m| m.borrow_mut().remove(sid));
    db::revoke_session(d1, sid, user_id).await?;
    kv.put(&key(sid), "revoked")
        .map_err(internal)?
        .expiration_ttl(TTL_SECONDS)
        .execute()
        .await
        .map_err(internal)?;
    Ok(())
}

/// Revokes every live session of a user (D1, KV and this isolate's memo), as [`revoke`] does
/// one.
pub async fn revoke_all(kv: &KvStore, d1: &D1Database, user_id: &UserId) -> ApiResult<()> {
    for sid in db::live_sessions(d1, user_id).await? {
        revoke(kv, d1, &sid, user_id).await?;
    }
    Ok(())
}

/// Checks that a verified token's session has not been revoked.
pub async fn confirm(identity: Identity, kv: &KvStore, d1: &D1Database) -> ApiResult<Identity> {
    let Identity::User(c) = identity else {
        return Ok(identity);
    };
    if is_live(kv, d1, &c.sid, &c.user_id).await? {
        Ok(Identity::User(c))
    } else {
        Ok(Identity::Invalid(ApiError::unauthorized(
            "invalid authentication token: session revoked",
        )))
    }
}
