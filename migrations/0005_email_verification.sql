-- Verified identities (issue 9): an address counts for ADMIN_EMAILS and ALLOWED_EMAIL, and may have
-- an OAuth identity linked to its account, only once its owner has proved it.

-- When the account's address was proved (a verification link, or a provider vouching for it);
-- NULL: not yet.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
-- An address the user asked to change to; it replaces `email` only when its link is used.
ALTER TABLE users ADD COLUMN pending_email TEXT;

-- Accounts that came through a provider got there with the provider's address.
UPDATE users SET email_verified_at = COALESCE(created_at, unixepoch())
WHERE id IN (SELECT user_id FROM oauth_identities);
-- An admin role granted to an address nobody proved is withdrawn until it is verified.
UPDATE users SET role = 'user' WHERE email_verified_at IS NULL;

-- Verification links sent: a link works once (`used_at`) and until `expires_at` (epoch seconds).
CREATE TABLE email_verifications (
    jti TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
);
CREATE INDEX idx_email_verifications_user ON email_verifications(user_id);
