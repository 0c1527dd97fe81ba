DROP TABLE paytr_customers;
ALTER TABLE payment_methods DROP COLUMN gateway_ref;
ALTER TABLE payment_providers DROP COLUMN paytr_direct_api;
