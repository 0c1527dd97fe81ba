-- A refund's outcome at the gateway: `pending` while unknown (the answer was lost), then `succeeded` or
-- `failed`. `request_key` is what HighLevel sent (its refund id, or transactionId and amount): a repeat of the
-- same request answers the first refund instead of refunding again.
ALTER TABLE payment_refunds ADD COLUMN status TEXT NOT NULL DEFAULT 'succeeded';
ALTER TABLE payment_refunds ADD COLUMN request_key TEXT;
ALTER TABLE payment_refunds ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX payment_refunds_request ON payment_refunds (location_id, request_key);
