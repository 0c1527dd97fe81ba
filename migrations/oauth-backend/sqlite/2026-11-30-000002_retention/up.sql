-- Single use of signed OAuth states: a state's id is recorded when its callback is accepted, and refused if
-- it is already there. `/oauth/install` writes nothing. Rows go once the state has expired.
CREATE TABLE oauth_used_states (
    id TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth_used_states_expiry ON oauth_used_states (expires_at);

-- The purge deletes by age: these keep it an index range scan.
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);
CREATE INDEX webhook_events_received ON webhook_events (received_at);
CREATE INDEX token_audit_at ON token_audit (at);
