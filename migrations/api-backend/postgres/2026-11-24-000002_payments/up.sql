-- Charges made through the custom provider. One per (location, HighLevel transactionId): a repeated
-- transactionId never charges twice. Amounts in minor units (cents).
CREATE TABLE payment_charges (
    id TEXT PRIMARY KEY NOT NULL,
    location_id TEXT NOT NULL,
    live_mode BOOLEAN NOT NULL,
    transaction_id TEXT NOT NULL,
    gateway TEXT NOT NULL,
    gateway_ref TEXT,
    status TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    refunded_minor BIGINT NOT NULL DEFAULT 0,
    contact_id TEXT,
    payment_method_id TEXT,
    subscription_id TEXT,
    description TEXT,
    failure TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (location_id, transaction_id)
);

CREATE TABLE payment_refunds (
    id TEXT PRIMARY KEY NOT NULL,
    charge_id TEXT NOT NULL REFERENCES payment_charges (id),
    location_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE payment_subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    location_id TEXT NOT NULL,
    live_mode BOOLEAN NOT NULL,
    transaction_id TEXT NOT NULL,
    contact_id TEXT,
    payment_method_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    interval_unit TEXT NOT NULL,
    interval_count INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (location_id, transaction_id)
);

-- Saved cards: brand, last four digits and expiry only, never a card number.
CREATE TABLE payment_methods (
    id TEXT PRIMARY KEY NOT NULL,
    location_id TEXT NOT NULL,
    live_mode BOOLEAN NOT NULL,
    contact_id TEXT NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    exp_month INTEGER NOT NULL,
    exp_year INTEGER NOT NULL,
    -- what the sandbox does when this card is charged again: success | decline | wait
    sandbox_outcome TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX payment_methods_contact ON payment_methods (location_id, contact_id);

-- Events for HighLevel's custom-provider webhook, kept until delivered (a restart loses none).
CREATE TABLE payment_events (
    id TEXT PRIMARY KEY NOT NULL,
    location_id TEXT NOT NULL,
    live_mode BOOLEAN NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX payment_events_due ON payment_events (delivered_at, next_attempt_at);
