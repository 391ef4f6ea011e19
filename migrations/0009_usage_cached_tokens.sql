-- Prompt caching: the prompt tokens a provider served from its cache (part of prompt_tokens),
-- where it reports them; 0 otherwise. Read per app by GET /api/apps/:id/usage.
ALTER TABLE ai_usage ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0);
