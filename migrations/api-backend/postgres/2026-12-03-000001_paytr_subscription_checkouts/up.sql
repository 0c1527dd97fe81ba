-- A subscription bought on the payment page of a PayTR provider with its Direct API: the first period is a
-- customer-present Direct API payment with `store_card=1` (the charge `charge_id`, bound to HighLevel's
-- transaction), and the subscription can only be created once PayTR's notification has stored the card. Until
-- then the terms (HighLevel's, as read when the checkout began) wait here, with the card tokens the contact
-- already had (the new card is the one PayTR lists that is not among them) and the id the subscription will
-- have. `status`: `pending` until PayTR's notification, then `created` or `failed`.
CREATE TABLE paytr_subscription_checkouts (
    charge_id TEXT PRIMARY KEY NOT NULL,
    location_id TEXT NOT NULL,
    live_mode BOOLEAN NOT NULL,
    transaction_id TEXT NOT NULL,
    ghl_subscription_id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    terms TEXT NOT NULL,
    known_cards TEXT NOT NULL,
    status TEXT NOT NULL,
    failure TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX paytr_subscription_checkouts_transaction
    ON paytr_subscription_checkouts (location_id, transaction_id);
