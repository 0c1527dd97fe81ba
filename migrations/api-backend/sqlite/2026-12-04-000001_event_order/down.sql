DROP INDEX payment_events_subject;
ALTER TABLE payment_events DROP COLUMN subject;
