-- Usage rows for every attempt that cost tokens, not only successful calls: a cancelled, failed
-- or timed-out stream consumed provider tokens too (the budget is charged for it), and reporting
-- it keeps `GET /api/ai/usage` and accounting in step with the charge. Earlier rows were all
-- successful calls.
ALTER TABLE ai_usage ADD COLUMN outcome TEXT NOT NULL DEFAULT 'completed'
    CHECK (outcome IN ('completed', 'cancelled', 'failed'));
