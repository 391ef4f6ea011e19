-- Deletion: an app's usage rows outlive it (and its owner) for accounting, and every pending app
-- deletion is recorded until its clean-up plan (src/domain/deletion.rs) has finished.

-- ai_usage: app_id and user_id become ON DELETE SET NULL (they were CASCADE, so deleting an app
-- erased its usage). SQLite cannot alter a foreign key: the table is rebuilt. Nothing references
-- ai_usage, and deferring the checks lets the copy run inside the migration's transaction.
PRAGMA defer_foreign_keys = on;

CREATE TABLE ai_usage_new (
    id TEXT PRIMARY KEY,
    -- NULL once the account is deleted: the row keeps provider, model and tokens, nothing personal.
    user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    -- NULL once the app is deleted.
    app_id TEXT REFERENCES apps(id) ON DELETE SET NULL,
    operation TEXT NOT NULL CHECK (operation IN (
        'blueprint', 'phase_planning', 'implementation', 'error_correction', 'chat_edit',
        'ticket_generation'
    )),
    provider TEXT NOT NULL CHECK (provider IN (
        'anthropic', 'openai', 'google-ai-studio', 'cerebras', 'workers-ai', 'custom'
    )),
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    total_tokens INTEGER NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    key_source TEXT NOT NULL CHECK (key_source IN ('user', 'platform')),
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
);
INSERT INTO ai_usage_new (id, user_id, app_id, operation, provider, model, prompt_tokens,
    completion_tokens, total_tokens, key_source, created_at)
SELECT id, user_id, app_id, operation, provider, model, prompt_tokens,
    completion_tokens, total_tokens, key_source, created_at
FROM ai_usage;
DROP TABLE ai_usage;
ALTER TABLE ai_usage_new RENAME TO ai_usage;
CREATE INDEX idx_ai_usage_user_created ON ai_usage(user_id, created_at);
CREATE INDEX idx_ai_usage_app ON ai_usage(app_id);

-- One row per app being deleted. The app row itself is gone (so the app is hidden everywhere at
-- once); this row is what is left to do. No foreign keys: it outlives the app and the account.
CREATE TABLE app_deletions (
    app_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    -- The plan's next step by name ('done': only this row is left to remove).
    next_step TEXT NOT NULL,
    -- 1 while the app's sandbox may still run: it keeps its place in the owner's sandbox quota
    -- until the plan's stop_sandbox step has seen it stopped.
    holds_sandbox INTEGER NOT NULL DEFAULT 0 CHECK (holds_sandbox IN (0, 1)),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch())
);
CREATE INDEX idx_app_deletions_user_sandbox ON app_deletions(user_id, holds_sandbox);
