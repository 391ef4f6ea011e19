-- The orchestrator (spec: Orchestration Tables): a project turns an app into tickets with
-- dependencies. The spec's columns are kept with their names and CHECK lists; additions:
--   projects: `source` (app | github | new); `generation_state` (idle | running | failed: the
--     ticket generation the planner object runs; `running` from the moment the API starts it),
--     `generation_step` (the step a running generation is at, as in its `analysis_progress`
--     events; NULL when idle) and `generation_error` (the last failed ticket generation, JSON
--     {code, message}; NULL once a generation starts again or succeeds).
--   tickets: `number` (1, 2, … per project, stable: branch names and URLs use it) and
--     `assignee_user_id`.
--   orchestration_project_members: users a project is shared with (besides its stakeholder).
-- Deleting a user or an app must not leave orphans: a project goes with its stakeholder, its
-- tickets and dependencies go with the project; a project whose app is deleted keeps its tickets
-- (app_id becomes NULL).
--
-- 0001 created the spec's three tables as a placeholder, without NOT NULLs, the additions or
-- the members table; nothing ever wrote to them (no route or object used them before this
-- migration), so they are dropped and created again rather than rebuilt row by row.
DROP TABLE IF EXISTS orchestration_ticket_dependencies;
DROP TABLE IF EXISTS orchestration_tickets;
DROP TABLE IF EXISTS orchestration_projects;

CREATE TABLE orchestration_projects (
    id TEXT PRIMARY KEY,
    app_id TEXT REFERENCES apps(id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    description TEXT,
    source TEXT NOT NULL DEFAULT 'app' CHECK (source IN ('app', 'github', 'new')),
    status TEXT NOT NULL CHECK (status IN (
        'analyzing', 'review', 'approved',
        'in_progress', 'completed', 'archived'
    )),
    github_repo_url TEXT,
    github_repo_name TEXT,
    github_default_branch TEXT DEFAULT 'main',
    stakeholder_user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    analysis_result TEXT, -- JSON
    generation_state TEXT NOT NULL DEFAULT 'idle' CHECK (generation_state IN (
        'idle', 'running', 'failed'
    )),
    generation_step TEXT,
    generation_error TEXT, -- JSON {code, message}
    total_tickets INTEGER NOT NULL DEFAULT 0 CHECK (total_tickets >= 0),
    completed_tickets INTEGER NOT NULL DEFAULT 0 CHECK (completed_tickets >= 0),
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    analyzed_at INTEGER,
    approved_at INTEGER,
    completed_at INTEGER
);

CREATE TABLE orchestration_project_members (
    project_id TEXT NOT NULL REFERENCES orchestration_projects(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE orchestration_tickets (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES orchestration_projects(id) ON DELETE CASCADE,
    number INTEGER NOT NULL CHECK (number > 0),
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN (
        'feature', 'enhancement', 'bug',
        'refactor', 'test', 'documentation', 'setup'
    )),
    priority TEXT NOT NULL CHECK (priority IN (
        'critical', 'high', 'medium', 'low'
    )),
    status TEXT NOT NULL CHECK (status IN (
        'pending', 'ready', 'assigned', 'in_progress',
        'review', 'blocked', 'completed', 'cancelled'
    )),
    order_index INTEGER NOT NULL,
    category TEXT,
    tags TEXT, -- JSON array
    branch_name TEXT,
    pr_url TEXT,
    commit_count INTEGER NOT NULL DEFAULT 0 CHECK (commit_count >= 0),
    estimated_hours INTEGER CHECK (estimated_hours IS NULL OR estimated_hours >= 0),
    actual_hours INTEGER CHECK (actual_hours IS NULL OR actual_hours >= 0),
    affected_files TEXT, -- JSON array of paths
    acceptance_criteria TEXT, -- JSON array of strings
    assignee_user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    started_at INTEGER,
    completed_at INTEGER,
    UNIQUE (project_id, number)
);

CREATE TABLE orchestration_ticket_dependencies (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES orchestration_tickets(id) ON DELETE CASCADE,
    depends_on_ticket_id TEXT NOT NULL REFERENCES orchestration_tickets(id) ON DELETE CASCADE,
    dependency_type TEXT NOT NULL CHECK (dependency_type IN (
        'blocks', 'related', 'file_conflict'
    )),
    created_at INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (ticket_id, depends_on_ticket_id),
    CHECK (ticket_id != depends_on_ticket_id)
);

CREATE INDEX idx_projects_status ON orchestration_projects(status);
CREATE INDEX idx_projects_stakeholder ON orchestration_projects(stakeholder_user_id);
CREATE INDEX idx_projects_app ON orchestration_projects(app_id);
CREATE INDEX idx_project_members_user ON orchestration_project_members(user_id);
CREATE INDEX idx_tickets_project ON orchestration_tickets(project_id);
CREATE INDEX idx_tickets_status ON orchestration_tickets(status);
CREATE INDEX idx_tickets_priority ON orchestration_tickets(priority);
CREATE INDEX idx_tickets_order ON orchestration_tickets(project_id, order_index);
CREATE INDEX idx_tickets_project_status ON orchestration_tickets(project_id, status);
CREATE INDEX idx_tickets_assignee ON orchestration_tickets(assignee_user_id);
CREATE INDEX idx_ticket_deps_ticket ON orchestration_ticket_dependencies(ticket_id);
CREATE INDEX idx_ticket_deps_depends_on ON orchestration_ticket_dependencies(depends_on_ticket_id);
