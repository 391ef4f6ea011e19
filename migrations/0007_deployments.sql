-- One-click deployment history: one row per deployment attempt of an app, numbered 1, 2, … within
-- the app. The artifact itself (a manifest and content-addressed blobs) is in R2 under
-- `deployments/<app>/`; a row names it by `number` and `content_hash`. At most one row per app is
-- `live` and at most one is `building` (the AppDeployer object serialises deployments; the
-- partial unique indexes make a second one impossible even so).
CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    number INTEGER NOT NULL CHECK (number > 0),
    -- The app's saved version the build was made from (0: none saved yet).
    source_version INTEGER NOT NULL DEFAULT 0,
    -- A rollback republishes deployment `rollback_of`'s artifact.
    rollback_of INTEGER,
    status TEXT NOT NULL CHECK (status IN ('building', 'live', 'superseded', 'undeployed', 'failed')),
    url TEXT,
    size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
    content_hash TEXT,
    -- JSON {message, errors: [Diagnostic]} when failed.
    error TEXT,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (app_id, number)
);
CREATE UNIQUE INDEX idx_deployments_one_live ON deployments(app_id) WHERE status = 'live';
CREATE UNIQUE INDEX idx_deployments_one_building ON deployments(app_id) WHERE status = 'building';
CREATE INDEX idx_deployments_user ON deployments(user_id);
