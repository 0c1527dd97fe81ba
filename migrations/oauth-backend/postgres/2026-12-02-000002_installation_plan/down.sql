ALTER TABLE installations DROP COLUMN plan_changed_at;
ALTER TABLE installations DROP COLUMN plan_id;
