-- Where each stop time lies along its trip's path, in metres (issue 16; docs/behaviours.md "GTFS
-- feeds"): located at import on the trip's shape in stop order (or taken from
-- shape_dist_traveled, converted from the feed's unit, when it is consistent with the shape).
-- In-vehicle distance between two stops of a trip is the difference. NULL: unknown (no shape
-- and no usable shape_dist_traveled); rows imported before this column are located when the
-- reference cache loads.
ALTER TABLE gtfs_stop_times ADD COLUMN shape_dist_m double precision;
