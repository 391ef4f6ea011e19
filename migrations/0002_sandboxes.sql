-- One row per app sandbox, mirroring the status its UserAppSandboxService object holds, so the
-- per-user sandbox quota is one indexed count.
CREATE TABLE sandboxes (
    app_id TEXT PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    template TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN (
        'creating', 'writing_files', 'installing', 'starting', 'ready', 'failed', 'stopped'
    )),
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch())
);
CREATE INDEX idx_sandboxes_user_status ON sandboxes(user_id, status);
