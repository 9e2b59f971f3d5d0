-- The same real trip from two sources (operator + app, two operators) is credited once: the
-- database refuses a second accepted trip of the same person overlapping in time.
--
-- btree_gist is not available in the embedded PostgreSQL, so resident and time are packed into
-- one GiST-indexable value. Residents get a compact sequence number (their usage row, which the
-- pipeline creates under the per-resident lock) and each accepted trip the degenerate box
--   x: [start, end - 1] in whole seconds since 2020-01-01 UTC,  y: [seq, seq]
-- (float8 coordinates, exact for these integers). Boxes are closed, so two trips of one
-- resident conflict exactly when their half-open [start, end) second ranges overlap; trips of
-- different residents never do (different y).
--
-- History (measured, 5,000-row inserts): a numrange of the 128-bit resident id << 32 + seconds
-- took seconds per batch at ~600k trips (numeric arithmetic in GiST penalty calls); an
-- int8range (seq << 31) + seconds took ~38 ms per 5,000 rows at 1M trips, the box ~18 ms
-- (gist box_ops penalties are plain float arithmetic, no fmgr calls per subtype_diff).
-- GENERATED ALWAYS: only the sequence assigns it (an insert naming seq is refused), so it is
-- unique without a second index to maintain for every new resident.
ALTER TABLE behaviour_usage ADD COLUMN seq bigint NOT NULL GENERATED ALWAYS AS IDENTITY;
ALTER TABLE behaviour_events ADD COLUMN trip_key box;
ALTER TABLE behaviour_events ADD CONSTRAINT behaviour_events_no_overlap
    EXCLUDE USING gist (trip_key WITH &&) WHERE (status = 'accepted' AND trip_key IS NOT NULL);
