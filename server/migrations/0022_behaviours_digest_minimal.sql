-- Behaviours (issue 8): a content digest per record, and records that came without the
-- resident's consent keep only what their verdict needs. See docs/behaviours.md.

-- SHA-256 of the record's canonical form (the decoded event re-encoded as JSON, times in UTC):
-- the same record id sent again with the same content is a duplicate, with other content it is
-- refused (`record_id_reused`). NULL (rows stored before this migration, and records without
-- consent) means "not known": a resend is answered as a duplicate.
ALTER TABLE behaviour_events ADD COLUMN content_digest bytea;

-- A record without consent (unknown subject, consent revoked, not granted for the behaviour,
-- before the link) is kept only as its verdict: operator, record id, reason, received time.
-- No subject, no resident, no times or places, no digest of them.
ALTER TABLE behaviour_events
    ALTER COLUMN subject_ref DROP NOT NULL,
    ALTER COLUMN kind DROP NOT NULL,
    ALTER COLUMN mode DROP NOT NULL,
    ALTER COLUMN behaviour DROP NOT NULL,
    ALTER COLUMN started_at DROP NOT NULL,
    ALTER COLUMN ended_at DROP NOT NULL;

UPDATE behaviour_events
SET subject_ref = NULL, resident_id = NULL, kind = NULL, mode = NULL, behaviour = NULL,
    started_at = NULL, ended_at = NULL, distance_m = NULL, distance_source = NULL,
    quantity = NULL, account = NULL, district_code = NULL, methodology_code = NULL,
    methodology_version = NULL, factor_g = NULL, trip_key = NULL, activity_key = NULL,
    content_digest = NULL
WHERE reason_code IN ('unknown_subject', 'consent_revoked', 'scope_not_granted', 'before_consent');

ALTER TABLE behaviour_events ADD CONSTRAINT behaviour_events_without_consent_minimal CHECK (
    reason_code IS NULL
    OR reason_code NOT IN ('unknown_subject', 'consent_revoked', 'scope_not_granted',
                           'before_consent')
    OR (subject_ref IS NULL AND resident_id IS NULL AND kind IS NULL AND started_at IS NULL
        AND ended_at IS NULL AND distance_m IS NULL AND quantity IS NULL AND account IS NULL
        AND district_code IS NULL AND content_digest IS NULL)
);
-- Everything else (accepted, or rejected by a rule that needed the content) keeps it.
ALTER TABLE behaviour_events ADD CONSTRAINT behaviour_events_content_kept CHECK (
    coalesce(reason_code, '') IN ('unknown_subject', 'consent_revoked', 'scope_not_granted',
                                  'before_consent')
    OR (subject_ref IS NOT NULL AND kind IS NOT NULL AND mode IS NOT NULL
        AND behaviour IS NOT NULL AND started_at IS NOT NULL AND ended_at IS NOT NULL)
);
