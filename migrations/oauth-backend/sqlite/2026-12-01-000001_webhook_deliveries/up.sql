-- The outbox of HighLevel webhooks forwarded to the app's own endpoints (WEBHOOK_FORWARD_URLS): one row per
-- event and endpoint, written in the transaction that records the webhook as processed, sent by a background
-- loop until the endpoint answers 2xx (`delivered`) or the retry window is spent (`dead`, replayable).
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    -- The Standard Webhooks `webhook-id`: the same for every attempt and replay of this event.
    event_id TEXT NOT NULL,
    -- HighLevel's webhookId (or the body's hash when HighLevel sent none).
    webhook_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    url TEXT NOT NULL,
    installation_id TEXT,
    location_id TEXT,
    company_id TEXT,
    -- The exact body sent (the envelope around HighLevel's payload).
    payload TEXT NOT NULL,
    -- pending | delivered | dead
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    -- When a sender may next take it; a sender's claim moves it ahead by a lease.
    next_attempt_at BIGINT NOT NULL,
    -- Start of the current retry window (enqueue or replay); past WEBHOOK_FORWARD_RETRY's total it is dead.
    retry_from BIGINT NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    -- HighLevel's timestamp of the event (epoch ms).
    occurred_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    updated_at BIGINT NOT NULL
);
-- The sender's scan of what is due, the listing by state, and the purge by age.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (state, created_at);
CREATE INDEX webhook_deliveries_age ON webhook_deliveries (state, updated_at);
