DROP TABLE payment_events;
DROP TABLE payment_methods;
DROP TABLE payment_subscriptions;
DROP TABLE payment_refunds;
DROP TABLE payment_charges;
