-- The marketplace app id HighLevel answered when the provider was registered (payment events carry it).
ALTER TABLE payment_providers ADD COLUMN marketplace_app_id TEXT;
