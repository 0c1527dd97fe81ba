DROP TABLE payment_providers;
DROP TABLE idempotency_records;
