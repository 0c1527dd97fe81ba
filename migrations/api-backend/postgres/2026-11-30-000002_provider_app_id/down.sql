ALTER TABLE payment_providers DROP COLUMN marketplace_app_id;
