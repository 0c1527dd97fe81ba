-- Idempotency-Key records: one per (location, key); the first answer is kept and replayed.
CREATE TABLE idempotency_records (
    location_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    response TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (location_id, idem_key)
);

-- The payments custom provider of each location: api keys only as hashes, gateway secrets sealed.
CREATE TABLE payment_providers (
    location_id TEXT PRIMARY KEY NOT NULL,
    installation_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    image_url TEXT NOT NULL,
    gateway TEXT NOT NULL,
    gateway_credentials TEXT,
    -- api keys are derived from SERVICE_JWT_SECRET and this salt (payments/keys.rs), never stored
    api_key_salt TEXT NOT NULL,
    test_api_key_hash TEXT NOT NULL,
    live_api_key_hash TEXT NOT NULL,
    test_publishable_key TEXT NOT NULL,
    live_publishable_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX payment_providers_test_key ON payment_providers (test_api_key_hash);
CREATE INDEX payment_providers_live_key ON payment_providers (live_api_key_hash);
