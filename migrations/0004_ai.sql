-- AI settings and accounting: users' own provider keys (sealed, never plaintext), their
-- per-operation model overrides, and one row per successful model call with its token usage.
CREATE TABLE user_provider_keys (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider TEXT NOT NULL CHECK (provider IN (
        'anthropic', 'openai', 'google-ai-studio', 'cerebras', 'workers-ai', 'custom'
    )),
    -- `v1:<nonce>:<ciphertext>` (AES-256-GCM under SECRETS_ENCRYPTION_KEY, bound to user and provider).
    sealed_key TEXT NOT NULL CHECK (sealed_key LIKE 'v1:%'),
    -- A masked hint such as `sk-ant-…9xQz`, safe to show.
    key_hint TEXT NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (user_id, provider)
);

CREATE TABLE user_model_configs (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    operation TEXT NOT NULL CHECK (operation IN (
        'blueprint', 'phase_planning', 'implementation', 'error_correction', 'chat_edit',
        'ticket_generation'
    )),
    -- A ModelOverride as JSON (camelCase fields).
    config TEXT NOT NULL CHECK (json_valid(config)),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (user_id, operation)
);

CREATE TABLE ai_usage (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    app_id TEXT REFERENCES apps(id) ON DELETE CASCADE,
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
CREATE INDEX idx_ai_usage_user_created ON ai_usage(user_id, created_at);
