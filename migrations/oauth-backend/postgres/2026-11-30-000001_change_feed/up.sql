-- What changed, for every replica's in-memory token cache (DESIGN.md §4). Triggers write it in the
-- transaction that made the change, so no code path (nor an operator's UPDATE) can forget it; each process
-- reads it from the last `seq` it saw, woken by NOTIFY (PostgreSQL) or by polling (both backends).
CREATE TABLE installation_changes (
    seq BIGSERIAL PRIMARY KEY,
    installation_id TEXT NOT NULL,
    scope_key TEXT,                            -- NULL: the installation's state changed; else its token row
    state TEXT,                                -- the new state, for state changes
    token_version BIGINT,                      -- the new version; NULL with a scope_key: the row was deleted
    changed_at BIGINT NOT NULL                 -- the database's clock, epoch milliseconds
);
CREATE INDEX installation_changes_at ON installation_changes (changed_at);

CREATE FUNCTION note_installation_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    at BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
BEGIN
    IF TG_TABLE_NAME = 'installations' THEN
        INSERT INTO installation_changes (installation_id, state, changed_at)
        VALUES (NEW.id, NEW.state, at);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO installation_changes (installation_id, scope_key, changed_at)
        VALUES (OLD.installation_id, OLD.scope_key, at);
    ELSE
        INSERT INTO installation_changes (installation_id, scope_key, token_version, changed_at)
        VALUES (NEW.installation_id, NEW.scope_key, NEW.token_version, at);
    END IF;
    -- Delivered when the transaction commits (never before), once per transaction.
    PERFORM pg_notify('oauth_backend_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER installations_state_changed AFTER UPDATE OF state ON installations
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION note_installation_change();
CREATE TRIGGER tokens_version_changed AFTER UPDATE OF token_version ON tokens
    FOR EACH ROW WHEN (OLD.token_version IS DISTINCT FROM NEW.token_version)
    EXECUTE FUNCTION note_installation_change();
CREATE TRIGGER tokens_deleted AFTER DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION note_installation_change();
