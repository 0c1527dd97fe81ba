-- Idempotency-Key leases: the instance running a keyed request (owner) renews lease_until while it runs; a key
-- whose owner stopped renewing (a crashed or killed replica) can be taken over once lease_until has passed.
ALTER TABLE idempotency_records ADD COLUMN owner TEXT;
ALTER TABLE idempotency_records ADD COLUMN lease_until BIGINT;
-- The scheduled purge of finished records older than IDEMPOTENCY_RETENTION.
CREATE INDEX idempotency_records_purge ON idempotency_records (updated_at, state);
-- Scans for charges still pending after a while read by status and age.
CREATE INDEX payment_charges_status_created ON payment_charges (status, created_at);
