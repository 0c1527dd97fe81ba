DROP TRIGGER tokens_deleted ON tokens;
DROP TRIGGER tokens_version_changed ON tokens;
DROP TRIGGER installations_state_changed ON installations;
DROP FUNCTION note_installation_change();
DROP TABLE installation_changes;
