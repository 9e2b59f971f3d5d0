-- Overlapping trip claims resolved independently of arrival order (issue 10, item 1;
-- docs/behaviours.md "Overlapping claims: one rule, whatever the order").
--
-- A credited trip that a more trusted (or, between equals, more conservative) overlapping claim
-- displaces is `superseded`: its credit is reversed through the ledger and it leaves the
-- exclusion constraint of migration 0021 (which only compares `accepted` rows), so the constraint
-- stays the guarantee that no two credited trips of one person overlap.
ALTER TABLE behaviour_events DROP CONSTRAINT behaviour_events_status_check;
ALTER TABLE behaviour_events ADD CONSTRAINT behaviour_events_status_check
    CHECK (status IN ('accepted', 'rejected', 'superseded'));

-- The claim's own reduction before the caps (grams), kept for every trip that reached the
-- resolution (credited, superseded, or refused for an overlap): the resolution ranks stored
-- claims by it (conservativeness) and credits it when a refused claim is reinstated. NULL on rows
-- stored before this migration (an accepted one ranks by its credited reduction_g).
ALTER TABLE behaviour_events ADD COLUMN claim_g bigint CHECK (claim_g >= 0);
-- How many times the event was credited again after a displacement was undone: its issuance's
-- source reference in the ledger is the event id (NULL: its first credit) or "<event id>/<n>",
-- so every credit of the event points at exactly one issuance and each can be reversed once.
ALTER TABLE behaviour_events ADD COLUMN credit_seq integer CHECK (credit_seq > 0);
-- A superseded claim: the claim that displaced it (NULL otherwise).
ALTER TABLE behaviour_events ADD COLUMN superseded_by uuid;
-- The event's earlier verdicts, oldest first, each {"status", "reason_code", "reduction_g",
-- "points", "until"}, appended when the resolution changes its status (NULL: never changed).
ALTER TABLE behaviour_events ADD COLUMN history jsonb;
