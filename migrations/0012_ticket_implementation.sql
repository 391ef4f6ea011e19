-- A ticket implemented by the code generator (issue 14, `POST /api/orchestrator/tickets/:id/implement`):
--   implementation_state: NULL (never asked) | running (the app's agent works on it) |
--     succeeded (the change is in the app, committed to the ticket's branch when a repository
--     is linked) | failed (nothing was committed; the reason in implementation_error);
--   implementation_error: the last failure, for the person (NULL once a run starts again).
ALTER TABLE orchestration_tickets ADD COLUMN implementation_state TEXT
    CHECK (implementation_state IS NULL OR implementation_state IN ('running', 'succeeded', 'failed'));
ALTER TABLE orchestration_tickets ADD COLUMN implementation_error TEXT;
