DROP TABLE hl_rate_slots;
