-- The installation's plan of a paid app: `planId` of the INSTALL webhook, then `newPlanId` of each PLAN_CHANGE.
-- `plan_changed_at` is HighLevel's time of the event that set it: an older event arriving later changes nothing.
ALTER TABLE installations ADD COLUMN plan_id TEXT;
ALTER TABLE installations ADD COLUMN plan_changed_at BIGINT;
