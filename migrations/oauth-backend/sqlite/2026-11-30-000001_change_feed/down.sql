DROP TRIGGER tokens_deleted;
DROP TRIGGER tokens_version_changed;
DROP TRIGGER installations_state_changed;
DROP TABLE installation_changes;
