-- PayTR card storage (its Direct API): whether the merchant holds PayTR's Direct API, Non3D and recurring
-- permissions (without them a PayTR provider takes one-time iFrame payments only); PayTR's card token
-- (`ctoken`) of a saved card, in `gateway_ref`; and PayTR's customer token (`utoken`) of each contact, which
-- groups the contact's cards at PayTR, kept sealed like the merchant's credentials (absent until PayTR's
-- first notification for the contact brings it), with the address the contact last saved a card from (PayTR's
-- off-session charge wants a `user_ip`).
ALTER TABLE payment_providers ADD COLUMN paytr_direct_api BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE payment_methods ADD COLUMN gateway_ref TEXT;
CREATE TABLE paytr_customers (
    location_id TEXT NOT NULL,
    live_mode BOOLEAN NOT NULL,
    contact_id TEXT NOT NULL,
    utoken_sealed TEXT,
    user_ip TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (location_id, live_mode, contact_id)
);
