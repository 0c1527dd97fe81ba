-- Timestamps are Unix epoch milliseconds (BIGINT) on both backends.
CREATE TABLE installations (
    id TEXT PRIMARY KEY NOT NULL,
    install_key TEXT NOT NULL UNIQUE,          -- 'Company:<companyId>' or 'Location:<locationId>'
    auth_class TEXT NOT NULL,
    company_id TEXT NOT NULL,
    location_id TEXT,
    app_id TEXT,
    user_id TEXT,
    scopes TEXT NOT NULL,                      -- space separated, as HighLevel sends them
    is_bulk BOOLEAN NOT NULL DEFAULT FALSE,
    approved_locations TEXT NOT NULL DEFAULT '[]', -- JSON array
    state TEXT NOT NULL,
    last_refresh_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX installations_company ON installations (company_id);
CREATE INDEX installations_location ON installations (location_id);

-- One row per token an installation owns: scope_key '' is the installation's own token (with its refresh
-- token); any other value is the location id of a Location token minted from a Company token.
CREATE TABLE tokens (
    installation_id TEXT NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    scope_key TEXT NOT NULL,
    access_token_enc TEXT,
    refresh_token_enc TEXT,
    access_token_hash TEXT,
    expires_at BIGINT,
    token_version BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (installation_id, scope_key)
);
CREATE INDEX tokens_expiry ON tokens (expires_at);

CREATE TABLE oauth_states (
    id TEXT PRIMARY KEY NOT NULL,
    user_type TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE webhook_events (
    webhook_id TEXT PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    received_at BIGINT NOT NULL
);

CREATE TABLE token_audit (
    id BIGSERIAL PRIMARY KEY,
    caller TEXT NOT NULL,
    installation_id TEXT NOT NULL,
    location_id TEXT,
    outcome TEXT NOT NULL,
    at BIGINT NOT NULL,                        -- the first read of this row
    count BIGINT NOT NULL DEFAULT 1            -- identical reads in one write batch share a row
);
CREATE INDEX token_audit_installation ON token_audit (installation_id, at);
