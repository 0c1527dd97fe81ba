-- HighLevel's rate budget, shared by every api-backend replica: each resource (a location, or a company) has
-- `max` slots; a request claims one (`claimed`, until its lease, `busy_until`) before it is sent, and once its
-- answer is in, the slot stays taken for one interval from then (`claimed` false). A claimed slot cannot free
-- sooner than one interval from now, which tells a waiting replica how long to sleep. Only PostgreSQL deployments run several replicas; a
-- SQLite deployment paces in its one process. UNLOGGED: the rows are a few seconds of state, not worth WAL; a
-- crash empties the table, which only forgets slots that were about to lapse anyway.
CREATE UNLOGGED TABLE hl_rate_slots (
    resource TEXT NOT NULL,
    slot INTEGER NOT NULL,
    busy_until TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
    holder BIGINT NOT NULL DEFAULT 0,
    claimed BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (resource, slot)
);
