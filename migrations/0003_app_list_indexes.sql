-- The list orders by (created_at | updated_at) DESC with rowid as the tie-break. An index declared
-- DESC stores ties in ascending rowid order, which forces SQLite to sort every matching row; plain
-- ascending indexes scanned backwards give exactly the wanted order, so a page stops after
-- OFFSET + LIMIT rows. The name sort gets a NOCASE index for the same reason.
DROP INDEX IF EXISTS idx_apps_user_created;
DROP INDEX IF EXISTS idx_apps_user_updated;
CREATE INDEX idx_apps_user_created ON apps(user_id, created_at);
CREATE INDEX idx_apps_user_updated ON apps(user_id, updated_at);
CREATE INDEX idx_apps_user_title ON apps(user_id, title COLLATE NOCASE);
CREATE INDEX idx_apps_public_created ON apps(visibility, created_at);
CREATE INDEX idx_apps_public_updated ON apps(visibility, updated_at);

-- Substring search over title and description through a trigram FTS5 index (external content:
-- the text lives once, in apps). A trigram phrase query matches any substring of three or more
-- characters, case-insensitively, without scanning every row; shorter terms fall back to LIKE.
CREATE VIRTUAL TABLE apps_search USING fts5(
    title, description, content = 'apps', content_rowid = 'rowid', tokenize = 'trigram'
);
INSERT INTO apps_search(apps_search) VALUES ('rebuild');
CREATE TRIGGER apps_search_insert AFTER INSERT ON apps BEGIN
    INSERT INTO apps_search(rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;
CREATE TRIGGER apps_search_delete AFTER DELETE ON apps BEGIN
    INSERT INTO apps_search(apps_search, rowid, title, description)
    VALUES ('delete', old.rowid, old.title, old.description);
END;
CREATE TRIGGER apps_search_update AFTER UPDATE OF title, description ON apps BEGIN
    INSERT INTO apps_search(apps_search, rowid, title, description)
    VALUES ('delete', old.rowid, old.title, old.description);
    INSERT INTO apps_search(rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;
