-- The residents' history reads newest first on the history time, least(started_at,
-- received_at) (a record claiming a future time sits at its receipt), with id as the tie
-- breaker: this index serves that keyset page in index order instead of sorting all of a
-- resident's rows. behaviour_events_resident (resident_id, started_at) stays for the
-- pipeline's window reads (caps, overlaps).
CREATE INDEX behaviour_events_resident_history
    ON behaviour_events (resident_id, (least(started_at, received_at)) DESC, id DESC);
