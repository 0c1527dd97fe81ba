-- A location taken out of an agency-level install (a location-level UNINSTALL) must stop being served by every
-- replica at once: a change of `approved_locations` is written to the change feed too, as a change of the
-- pseudo token row `*` (every process drops the installation from its cache).
CREATE TRIGGER installations_approved_changed AFTER UPDATE OF approved_locations ON installations
WHEN OLD.approved_locations IS NOT NEW.approved_locations
BEGIN
    INSERT INTO installation_changes (installation_id, scope_key, changed_at)
    VALUES (NEW.id, '*', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
