-- Transit trips whose distance no stops or GTFS shape can check are credited at most the
-- mode's typical trip length (issue 10, item 2; docs/behaviours.md "Distances checked against
-- evidence"). Part of the versioned methodology data: NULL means no cap for that factor.
ALTER TABLE methodology_factors
    ADD COLUMN typical_trip_m integer CHECK (typical_trip_m > 0);

-- The default set seeded before this column existed (behaviours/data/methodologies.json,
-- low-carbon-travel version 1) gets the same defaults the seeder now writes; an
-- administrator's own versions are left as they are.
UPDATE methodology_factors
SET typical_trip_m = CASE mode
        WHEN 'bus' THEN 10000
        WHEN 'metro' THEN 20000
        WHEN 'tram' THEN 10000
        WHEN 'ferry' THEN 10000
    END
WHERE code = 'low-carbon-travel' AND version = 1
  AND mode IN ('bus', 'metro', 'tram', 'ferry') AND typical_trip_m IS NULL;
