-- What changed, for every process's in-memory token cache (DESIGN.md §4). Triggers write it in the
-- transaction that made the change, so no code path (nor an operator's UPDATE) can forget it; each process
-- polls it from the last `seq` it saw (several processes may share one SQLite file).
CREATE TABLE installation_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    installation_id TEXT NOT NULL,
    scope_key TEXT,                            -- NULL: the installation's state changed; else its token row
    state TEXT,                                -- the new state, for state changes
    token_version BIGINT,                      -- the new version; NULL with a scope_key: the row was deleted
    changed_at BIGINT NOT NULL                 -- the database's clock, epoch milliseconds
);
CREATE INDEX installation_changes_at ON installation_changes (changed_at);

CREATE TRIGGER installations_state_changed AFTER UPDATE OF state ON installations
WHEN OLD.state IS NOT NEW.state
BEGIN
    INSERT INTO installation_changes (installation_id, state, changed_at)
    VALUES (NEW.id, NEW.state, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER tokens_version_changed AFTER UPDATE OF token_version ON tokens
WHEN OLD.token_version IS NOT NEW.token_version
BEGIN
    INSERT INTO installation_changes (installation_id, scope_key, token_version, changed_at)
    VALUES (NEW.installation_id, NEW.scope_key, NEW.token_version, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;

CREATE TRIGGER tokens_deleted AFTER DELETE ON tokens
BEGIN
    INSERT INTO installation_changes (installation_id, scope_key, changed_at)
    VALUES (OLD.installation_id, OLD.scope_key, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
