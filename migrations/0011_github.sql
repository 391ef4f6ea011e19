-- GitHub for export and tickets (issue 14).
--   github_connections: a user's exporter-app connection (separate from signing in with GitHub):
--     the account's login, the granted scopes and the access token sealed with AES-256-GCM under
--     SECRETS_ENCRYPTION_KEY (bound to the user; never returned or logged).
--   github_oauth_states: the connect flow's single-use state, bound to the user who started it,
--     with its PKCE verifier.
--   app_github_repos: the repository an app exports to, and the commit our last push left its
--     branch at (a push refuses to run when the branch is elsewhere: someone pushed meanwhile).
--   github_webhook_deliveries: delivery ids already handled (`X-GitHub-Delivery`), so a
--     redelivery changes nothing.
CREATE TABLE github_connections (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    login TEXT NOT NULL,
    scopes TEXT NOT NULL DEFAULT '',
    sealed_token TEXT NOT NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch())
);

CREATE TABLE github_oauth_states (
    state TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_verifier TEXT NOT NULL,
    redirect_to TEXT NOT NULL DEFAULT '/',
    expires_at INTEGER NOT NULL
);
CREATE INDEX idx_github_oauth_states_expires ON github_oauth_states(expires_at);

CREATE TABLE app_github_repos (
    app_id TEXT PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    html_url TEXT NOT NULL,
    branch TEXT NOT NULL,
    private INTEGER NOT NULL DEFAULT 1,
    last_commit_sha TEXT,
    last_pushed_at INTEGER,
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
);
CREATE INDEX idx_app_github_repos_user ON app_github_repos(user_id);

CREATE TABLE github_webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    received_at INTEGER NOT NULL DEFAULT (unixepoch())
);
