DROP INDEX token_audit_at;
DROP INDEX webhook_events_received;
DROP INDEX oauth_states_expiry;
DROP TABLE oauth_used_states;
