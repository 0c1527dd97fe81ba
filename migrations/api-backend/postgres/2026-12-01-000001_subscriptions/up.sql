-- Subscriptions as HighLevel creates them (`create_subscription`) and this service renews them.
-- `ghl_subscription_id` is HighLevel's own id (what `verify` and `cancel_subscription` name); `amount_minor`
-- is the recurring amount and `first_amount_minor` the first period's (HighLevel's `amount`).
-- `next_charge_at` is when the current period falls due (or, once every cycle is paid, when the last period
-- ends); `attempt_at` is when the scheduler next tries it (later than `next_charge_at` while a declined renewal
-- waits for its retry); `failed_attempts` counts the declines of the current period.
-- A scheduler pass claims a due subscription (`claimed_by`, `claimed_until`) with one conditional update, so
-- replicas never charge the same period twice; a claim whose holder died lapses at `claimed_until`.
ALTER TABLE payment_subscriptions ADD COLUMN ghl_subscription_id TEXT;
ALTER TABLE payment_subscriptions ADD COLUMN first_amount_minor BIGINT;
ALTER TABLE payment_subscriptions ADD COLUMN trial_end BIGINT;
ALTER TABLE payment_subscriptions ADD COLUMN total_cycles INTEGER;
ALTER TABLE payment_subscriptions ADD COLUMN cycles_paid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payment_subscriptions ADD COLUMN next_charge_at BIGINT;
ALTER TABLE payment_subscriptions ADD COLUMN attempt_at BIGINT;
ALTER TABLE payment_subscriptions ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payment_subscriptions ADD COLUMN claimed_by TEXT;
ALTER TABLE payment_subscriptions ADD COLUMN claimed_until BIGINT;
CREATE UNIQUE INDEX payment_subscriptions_ghl ON payment_subscriptions (location_id, ghl_subscription_id);
CREATE INDEX payment_subscriptions_due ON payment_subscriptions (status, attempt_at);
