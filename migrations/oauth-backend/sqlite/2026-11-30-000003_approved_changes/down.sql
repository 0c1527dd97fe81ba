DROP TRIGGER IF EXISTS installations_approved_changed;
