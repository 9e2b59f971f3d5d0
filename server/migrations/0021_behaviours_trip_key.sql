-- The overlap guard on numrange (128-bit resident id << 32 + seconds) made every insert pay for
-- numeric arithmetic in GiST penalty/consistency calls: 5,000-row inserts took seconds once the
-- table held ~600k trips. Residents get a compact sequence number (their usage row, which the
-- pipeline locks anyway) and the key becomes an int8range:
--   (seq << 31) + seconds since 2020-01-01 UTC   (seq < 2^32, times until 2088).
ALTER TABLE behaviour_events DROP CONSTRAINT behaviour_events_no_overlap;
ALTER TABLE behaviour_events DROP COLUMN trip_key;
ALTER TABLE behaviour_events ADD COLUMN trip_key int8range;
ALTER TABLE behaviour_usage ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE behaviour_usage ADD CONSTRAINT behaviour_usage_seq UNIQUE (seq);
ALTER TABLE behaviour_events ADD CONSTRAINT behaviour_events_no_overlap
    EXCLUDE USING gist (trip_key WITH &&) WHERE (status = 'accepted' AND trip_key IS NOT NULL);
