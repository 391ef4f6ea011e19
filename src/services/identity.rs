//! D1 repository of verified identities: verification links (recorded when sent, consumed once),
//! the proof of an account's address, changes of address, OAuth sign-in under the
//! verified-address rule, and the release of an unverified claim on an address.
//!
//! Invariants:
//! - an OAuth identity is linked to an existing account only when both sides proved the address
//!   (the provider vouches for it and the account verified it);
//! - an address held by an unverified account is not that account's to keep once its owner
//!   proves it: the claim is released ([`release_claim`]): the account loses the address, its
//!   password, its pending links and every session (revoked in D1 and KV before the new owner is
//!   answered), and keeps nothing that could reach the new owner's account.

use super::db::{
    self, first, insert_user, is_unique_violation, opt, run, stmt, text, NewUser, UserRow,
};
use super::sessions;
use crate::domain::error::{ApiError, ApiResult};
use crate::domain::ids::UserId;
use crate::domain::user::{role_for, Email, EmailList};
use serde::Deserialize;
use worker::{kv::KvStore, D1Database};

/// Records a verification link sent for `email`, and retires every earlier one of the account
/// (only the newest link works).
pub async fn record_link(
    db: &D1Database,
    jti: &str,
    user_id: &UserId,
    email: &str,
    expires_at: i64,
) -> ApiResult<()> {
    db.batch(vec![
        stmt(
            db,
            "UPDATE email_verifications SET used_at = unixepoch() WHERE user_id = ?1 AND used_at IS NULL",
            &[text(user_id)],
        )?,
        stmt(
            db,
            "INSERT INTO email_verifications (jti, user_id, email, expires_at) VALUES (?1, ?2, ?3, ?4)",
            &[text(jti), text(user_id), text(email), db::int(expires_at)],
        )?,
    ])
    .await?;
    Ok(())
}

/// Consumes a link: true once, for an unexpired link still current for that account and address.
pub async fn consume_link(
    db: &D1Database,
    jti: &str,
    user_id: &UserId,
    email: &str,
) -> ApiResult<bool> {
    Ok(run(
        db,
        "UPDATE email_verifications SET used_at = unixepoch() \
         WHERE jti = ?1 AND user_id = ?2 AND email = ?3 AND used_at IS NULL AND expires_at >= unixepoch()",
        &[text(jti), text(user_id), text(email)],
    )
    .await?
        == 1)
}

/// Marks the account's current address proved and sets the role that now follows from it.
pub async fn mark_verified(
    db: &D1Database,
    user_id: &UserId,
    email: &str,
    role: &str,
) -> ApiResult<()> {
    run(
        db,
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, unixepoch()), role = ?3 \
         WHERE id = ?1 AND email = ?2",
        &[text(user_id), text(email), text(role)],
    )
    .await?;
    Ok(())
}

pub async fn set_pending_email(db: &D1Database, user_id: &UserId, email: &str) -> ApiResult<()> {
    run(
        db,
        "UPDATE users SET pending_email = ?2 WHERE id = ?1",
        &[text(user_id), text(email)],
    )
    .await?;
    Ok(())
}

/// Makes the proved pending address the account's. `Ok(false)`: another account holds it.
pub async fn adopt_pending_email(
    db: &D1Database,
    user_id: &UserId,
    email: &str,
    role: &str,
) -> ApiResult<bool> {
    let r = stmt(
        db,
        "UPDATE users SET email = ?2, pending_email = NULL, email_verified_at = unixepoch(), role = ?3 \
         WHERE id = ?1 AND pending_email = ?2",
        &[text(user_id), text(email), text(role)],
    )?
    .run()
    .await;
    match r {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Takes an address away from an unverified account, because its owner just proved it (see the
/// module's invariants). Does nothing to a verified account.
pub async fn release_claim(kv: &KvStore, d1: &D1Database, holder: &UserRow) -> ApiResult<()> {
    if holder.email_verified() {
        return Ok(());
    }
    // `.invalid` is reserved (RFC 2606): the placeholder can never be anyone's address.
    let placeholder = format!(
        "{}@unclaimed.invalid",
        holder.id.as_str().to_ascii_lowercase()
    );
    d1.batch(vec![
        stmt(
            d1,
            "UPDATE users SET email = ?2, pending_email = NULL, role = 'user' \
             WHERE id = ?1 AND email_verified_at IS NULL",
            &[text(&holder.id), text(&placeholder)],
        )?,
        stmt(
            d1,
            "DELETE FROM password_credentials WHERE user_id = ?1",
            &[text(&holder.id)],
        )?,
        stmt(
            d1,
            "UPDATE email_verifications SET used_at = unixepoch() WHERE user_id = ?1 AND used_at IS NULL",
            &[text(&holder.id)],
        )?,
    ])
    .await?;
    sessions::revoke_all(kv, d1, &holder.id).await?;
    worker::console_log!(
        "identity: released an unverified claim on an address (account {})",
        holder.id
    );
    Ok(())
}

/// An OAuth sign-in as seen by the account store.
pub struct OAuthSignIn<'a> {
    pub provider: &'a str,
    pub provider_user_id: &'a str,
    /// The address the provider vouches for.
    pub email: &'a Email,
    pub display_name: &'a str,
    pub avatar_url: Option<&'a str>,
    pub new_id: &'a UserId,
}

/// Finds the account behind a provider identity, linking or creating it:
/// a known identity → its account; else a verified account with the same address → linked;
/// else (after releasing an unverified claim on the address) a new account, verified.
/// The role is then set from `admins` and the account's own proved address.
pub async fn oauth_sign_in(
    kv: &KvStore,
    d1: &D1Database,
    s: &OAuthSignIn<'_>,
    admins: &EmailList,
) -> ApiResult<UserRow> {
    #[derive(Deserialize)]
    struct Link {
        user_id: UserId,
    }
    let find_link = || async {
        first::<Link>(
            d1,
            "SELECT user_id FROM oauth_identities WHERE provider = ?1 AND provider_user_id = ?2",
            &[text(s.provider), text(s.provider_user_id)],
        )
        .await
    };
    let link_to = |user_id: &UserId| {
        stmt(
            d1,
            "INSERT OR IGNORE INTO oauth_identities (provider, provider_user_id, user_id) VALUES (?1, ?2, ?3)",
            &[text(s.provider), text(s.provider_user_id), text(user_id)],
        )
    };
    let user_id = match find_link().await? {
        Some(l) => l.user_id,
        None => {
            let holder = db::user_by_email(d1, s.email.as_str()).await?;
            match holder {
                Some(existing) if existing.email_verified() => {
                    link_to(&existing.id)?.run().await?;
                    existing.id
                }
                other => {
                    if let Some(unverified) = other {
                        release_claim(kv, d1, &unverified).await?;
                    }
                    let new = NewUser {
                        id: s.new_id,
                        email: s.email.as_str(),
                        display_name: s.display_name,
                        avatar_url: s.avatar_url,
                        provider: s.provider,
                        provider_user_id: Some(s.provider_user_id),
                        role: "user",
                    };
                    match d1
                        .batch(vec![insert_user(d1, &new)?, link_to(s.new_id)?])
                        .await
                    {
                        Ok(_) => s.new_id.clone(),
                        // A concurrent first sign-in created it: use that one.
                        Err(e) if is_unique_violation(&e) => {
                            find_link().await?.map(|l| l.user_id).ok_or_else(|| {
                                ApiError::field("email", "is held by another account")
                            })?
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    };
    let user = db::user_by_id(d1, &user_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    // The provider vouching for the account's own address proves it.
    let verified = user.email_verified() || user.email == s.email.as_str();
    let role = Email::parse(&user.email)
        .map(|e| role_for(admins, &e, verified))
        .unwrap_or(crate::domain::user::Role::User);
    run(
        d1,
        "UPDATE users SET last_login = unixepoch(), avatar_url = COALESCE(avatar_url, ?2), role = ?3, \
         email_verified_at = CASE WHEN ?4 = 1 THEN COALESCE(email_verified_at, unixepoch()) ELSE email_verified_at END \
         WHERE id = ?1",
        &[text(&user_id), opt(s.avatar_url), text(role.as_str()), db::int(verified as i64)],
    )
    .await?;
    db::user_by_id(d1, &user_id)
        .await?
        .ok_or_else(ApiError::internal)
}
