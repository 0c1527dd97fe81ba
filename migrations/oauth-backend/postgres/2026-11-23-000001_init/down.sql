DROP TABLE token_audit;
DROP TABLE webhook_events;
DROP TABLE oauth_states;
DROP TABLE tokens;
DROP TABLE installations;
