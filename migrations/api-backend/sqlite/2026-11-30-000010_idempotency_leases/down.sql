DROP INDEX payment_charges_status_created;
DROP INDEX idempotency_records_purge;
ALTER TABLE idempotency_records DROP COLUMN lease_until;
ALTER TABLE idempotency_records DROP COLUMN owner;
