DROP INDEX payment_refunds_request;
ALTER TABLE payment_refunds DROP COLUMN updated_at;
ALTER TABLE payment_refunds DROP COLUMN request_key;
ALTER TABLE payment_refunds DROP COLUMN status;
