-- What an event is about, when HighLevel must hear its events in order: a subscription's id for
-- `subscription.*`. An event is sent only once every earlier event of its subject has been delivered, so a
-- retried `subscription.trialing` never lands after the `subscription.active` that follows it.
ALTER TABLE payment_events ADD COLUMN subject TEXT;
UPDATE payment_events SET subject = payload::jsonb #>> '{subscriptionSnapshot,id}'
    WHERE event_type LIKE 'subscription.%' AND delivered_at IS NULL;
CREATE INDEX payment_events_subject ON payment_events (subject, created_at) WHERE delivered_at IS NULL;
