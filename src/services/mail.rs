//! Sending verification mail: through Cloudflare's `send_email` binding ([`BINDING`]) in
//! production, or into the local outbox under `make dev` (`MAIL_BACKEND=outbox`): the link is
//! logged and the message kept in KV for a day, listed by `GET /api/dev/outbox`.
//!
//! Invariants: a link is logged only by the outbox backend (production never logs one); the
//! outbox is only ever read when the configuration says `outbox`.

use crate::domain::config::MailBackend;
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::verification::Mail;
use crate::http::internal;
use serde_json::{json, Value};
use worker::kv::KvStore;
use worker::{Env, SendEmailBuilder};

/// The `[[send_email]]` binding in `wrangler.toml`.
pub const BINDING: &str = "EMAIL";
const OUTBOX_PREFIX: &str = "outbox:";
const OUTBOX_TTL_SECONDS: u64 = 24 * 3600;

fn outbox_key(to: &str, now_ms: i64, id: &str) -> String {
    format!("{OUTBOX_PREFIX}{to}:{now_ms:015}:{id}")
}

/// Sends `mail` from `from` through `backend` (the [`BINDING`] or the outbox in KV, both found
/// in `env`).
pub async fn send(env: &Env, backend: MailBackend, from: &str, mail: &Mail) -> ApiResult<()> {
    match backend {
        MailBackend::SendEmail => {
            let binding = env.send_email(BINDING).map_err(|e| {
                worker::console_error!("mail: no send_email binding {BINDING}: {e}");
                ApiError::unavailable("mail is not configured")
            })?;
            let message = SendEmailBuilder::builder(from, &mail.to, &mail.subject)
                .text(&mail.text)
                .build();
            binding.send_with_builder(&message).await.map_err(|e| {
                // The error names the addresses at most, never the link.
                worker::console_error!("mail: send_email refused a message: {e:?}");
                ApiError::unavailable("the verification mail could not be sent; try again later")
            })?;
            Ok(())
        }
        MailBackend::Outbox => {
            worker::console_log!("[outbox] to {}: {} {}", mail.to, mail.subject, mail.link);
            let now = crate::services::now_ms();
            let key = outbox_key(&mail.to, now, &crate::domain::random::id("msg"));
            let body = json!({
                "from": from, "to": mail.to, "subject": mail.subject, "text": mail.text,
                "link": mail.link, "sentAt": now,
            });
            env.kv(crate::http::KV_BINDING)?
                .put(&key, body.to_string())
                .map_err(internal)?
                .expiration_ttl(OUTBOX_TTL_SECONDS)
                .execute()
                .await
                .map_err(internal)?;
            Ok(())
        }
    }
}

/// The outbox's messages to `to` (or to everyone), oldest first; `None` unless the outbox is the
/// configured `backend`.
pub async fn outbox(
    kv: &KvStore,
    backend: MailBackend,
    to: Option<&str>,
) -> ApiResult<Option<Vec<Value>>> {
    if backend != MailBackend::Outbox {
        return Ok(None);
    }
    // Only an address can name a mailbox (and a KV key prefix has a bounded length).
    if let Some(t) = to {
        if crate::domain::user::Email::parse(t).is_err() {
            return Err(crate::domain::error::ApiError::field(
                "to",
                "must be an email address",
            ));
        }
    }
    let prefix = match to {
        Some(t) => format!("{OUTBOX_PREFIX}{t}:"),
        None => OUTBOX_PREFIX.to_string(),
    };
    let keys = kv
        .list()
        .prefix(prefix)
        .limit(1000)
        .execute()
        .await
        .map_err(internal)?
        .keys;
    let mut out = Vec::new();
    for k in keys {
        if let Some(v) = kv.get(&k.name).text().await.map_err(internal)? {
            if let Ok(v) = serde_json::from_str::<Value>(&v) {
                out.push(v);
            }
        }
    }
    out.sort_by_key(|m| m["sentAt"].as_i64().unwrap_or(0));
    Ok(Some(out))
}
