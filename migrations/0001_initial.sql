-- Byte Platform schema: the spec's tables and indexes, plus what authentication needs.
-- D1 enforces foreign keys (PRAGMA foreign_keys is always on), so children are deleted with parents.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT UNIQUE NOT NULL,
    display_name TEXT,
    avatar_url TEXT,
    provider TEXT CHECK (provider IN ('email', 'google', 'github')),
    provider_user_id TEXT,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at INTEGER DEFAULT (unixepoch()),
    last_login INTEGER
);

-- One password per user that registered with email and password.
CREATE TABLE password_credentials (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at INTEGER NOT NULL DEFAULT (unixepoch())
);

-- Every OAuth identity linked to a user (a user may sign in with Google and GitHub).
CREATE TABLE oauth_identities (
    provider TEXT NOT NULL CHECK (provider IN ('google', 'github')),
    provider_user_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (provider, provider_user_id)
);
CREATE INDEX idx_oauth_identities_user ON oauth_identities(user_id);

-- Sessions: each issued JWT carries its session id; logout sets revoked_at.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX idx_sessions_user ON sessions(user_id);

-- Pending OAuth authorizations: single-use state with its PKCE verifier.
CREATE TABLE oauth_states (
    state TEXT PRIMARY KEY,
    provider TEXT NOT NULL CHECK (provider IN ('google', 'github')),
    code_verifier TEXT NOT NULL,
    redirect_to TEXT NOT NULL DEFAULT '/',
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    expires_at INTEGER NOT NULL
);
CREATE INDEX idx_oauth_states_expires ON oauth_states(expires_at);

CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description TEXT CHECK (description IS NULL OR length(description) <= 1000),
    visibility TEXT NOT NULL DEFAULT 'private' CHECK (visibility IN ('public', 'private')),
    config TEXT, -- JSON: model config, settings
    tags TEXT, -- JSON array
    files TEXT, -- JSON: file tree
    container_state TEXT, -- JSON: terminal, preview state
    is_deployed BOOLEAN DEFAULT 0,
    deploy_url TEXT,
    created_at INTEGER DEFAULT (unixepoch()),
    updated_at INTEGER DEFAULT (unixepoch())
);
CREATE INDEX idx_apps_user ON apps(user_id);
CREATE INDEX idx_apps_visibility ON apps(visibility);
CREATE INDEX idx_apps_deployed ON apps(is_deployed);
CREATE INDEX idx_apps_user_visibility ON apps(user_id, visibility);
CREATE INDEX idx_apps_user_created ON apps(user_id, created_at DESC);
CREATE INDEX idx_apps_user_updated ON apps(user_id, updated_at DESC);

CREATE TABLE orchestration_projects (
    id TEXT PRIMARY KEY,
    app_id TEXT REFERENCES apps(id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    description TEXT,
    status TEXT CHECK (status IN (
        'analyzing', 'review', 'approved',
        'in_progress', 'completed', 'archived'
    )),
    github_repo_url TEXT,
    github_repo_name TEXT,
    github_default_branch TEXT DEFAULT 'main',
    stakeholder_user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    analysis_result TEXT, -- JSON
    total_tickets INTEGER DEFAULT 0,
    completed_tickets INTEGER DEFAULT 0,
    created_at INTEGER DEFAULT (unixepoch()),
    analyzed_at INTEGER,
    approved_at INTEGER,
    completed_at INTEGER
);
CREATE INDEX idx_projects_status ON orchestration_projects(status);
CREATE INDEX idx_projects_stakeholder ON orchestration_projects(stakeholder_user_id);

CREATE TABLE orchestration_tickets (
    id TEXT PRIMARY KEY,
    project_id TEXT REFERENCES orchestration_projects(id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    type TEXT CHECK (type IN (
        'feature', 'enhancement', 'bug',
        'refactor', 'test', 'documentation', 'setup'
    )),
    priority TEXT CHECK (priority IN (
        'critical', 'high', 'medium', 'low'
    )),
    status TEXT CHECK (status IN (
        'pending', 'ready', 'assigned', 'in_progress',
        'review', 'blocked', 'completed', 'cancelled'
    )),
    order_index INTEGER NOT NULL,
    category TEXT,
    tags TEXT, -- JSON array
    branch_name TEXT,
    pr_url TEXT,
    commit_count INTEGER DEFAULT 0,
    estimated_hours INTEGER,
    actual_hours INTEGER,
    affected_files TEXT, -- JSON
    acceptance_criteria TEXT, -- JSON
    created_at INTEGER DEFAULT (unixepoch()),
    updated_at INTEGER DEFAULT (unixepoch()),
    started_at INTEGER,
    completed_at INTEGER
);
CREATE INDEX idx_tickets_project ON orchestration_tickets(project_id);
CREATE INDEX idx_tickets_status ON orchestration_tickets(status);
CREATE INDEX idx_tickets_priority ON orchestration_tickets(priority);
CREATE INDEX idx_tickets_order ON orchestration_tickets(project_id, order_index);
CREATE INDEX idx_tickets_project_status ON orchestration_tickets(project_id, status);

CREATE TABLE orchestration_ticket_dependencies (
    id TEXT PRIMARY KEY,
    ticket_id TEXT REFERENCES orchestration_tickets(id) ON DELETE CASCADE,
    depends_on_ticket_id TEXT REFERENCES orchestration_tickets(id) ON DELETE CASCADE,
    dependency_type TEXT CHECK (dependency_type IN (
        'blocks', 'related', 'file_conflict'
    )),
    created_at INTEGER DEFAULT (unixepoch()),
    UNIQUE(ticket_id, depends_on_ticket_id),
    CHECK(ticket_id != depends_on_ticket_id)
);
