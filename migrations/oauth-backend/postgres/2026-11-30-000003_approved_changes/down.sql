DROP TRIGGER IF EXISTS installations_approved_changed ON installations;
DROP FUNCTION IF EXISTS note_approved_change();
