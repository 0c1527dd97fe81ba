-- A location taken out of an agency-level install (a location-level UNINSTALL) must stop being served by every
-- replica at once: a change of `approved_locations` is written to the change feed too, as a change of the
-- pseudo token row `*` (every process drops the installation from its cache).
CREATE FUNCTION note_approved_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO installation_changes (installation_id, scope_key, changed_at)
    VALUES (NEW.id, '*', (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT);
    PERFORM pg_notify('oauth_backend_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER installations_approved_changed AFTER UPDATE OF approved_locations ON installations
    FOR EACH ROW WHEN (OLD.approved_locations IS DISTINCT FROM NEW.approved_locations)
    EXECUTE FUNCTION note_approved_change();
