-- Operators' scopes: the behaviours an operator is registered to report (issue 14: "operators,
-- their kinds and scopes"). An event outside its operator's scopes is rejected
-- (`scope_not_allowed`) before its content is kept, like the consent rejections; residents may
-- grant an operator only (part of) its scopes, and an operator with none (an enterprise's meter
-- gateway) is not among the operators residents may link. Backfilled by kind with the defaults
-- of behaviours/data/operator_kinds.json at the time of this migration.

ALTER TABLE operators ADD COLUMN scopes text[] NOT NULL DEFAULT '{}'
    CHECK (scopes <@ ARRAY['transit', 'cycling', 'walking', 'household', 'vehicle']::text[]);

UPDATE operators SET scopes = CASE kind
    WHEN 'transit' THEN ARRAY['transit']
    WHEN 'bike_share' THEN ARRAY['cycling']
    WHEN 'utility' THEN ARRAY['household']
    WHEN 'vehicle' THEN ARRAY['vehicle']
    WHEN 'platform' THEN ARRAY['cycling', 'transit', 'walking']
    ELSE ARRAY['cycling', 'household', 'transit', 'vehicle', 'walking']
END;

-- A rejection for want of a scope keeps no content, as the consent rejections (0022): the two
-- checks are replaced by the same ones with the new reason; NOT VALID then VALIDATE, so the
-- check of the stored rows does not block ingestion.
ALTER TABLE behaviour_events DROP CONSTRAINT behaviour_events_without_consent_minimal;
ALTER TABLE behaviour_events DROP CONSTRAINT behaviour_events_content_kept;

ALTER TABLE behaviour_events ADD CONSTRAINT behaviour_events_without_consent_minimal CHECK (
    reason_code IS NULL
    OR reason_code NOT IN ('unknown_subject', 'consent_revoked', 'scope_not_granted',
                           'scope_not_allowed', 'before_consent')
    OR (subject_ref IS NULL AND resident_id IS NULL AND kind IS NULL AND started_at IS NULL
        AND ended_at IS NULL AND distance_m IS NULL AND quantity IS NULL AND account IS NULL
        AND district_code IS NULL AND content_digest IS NULL)
) NOT VALID;
ALTER TABLE behaviour_events ADD CONSTRAINT behaviour_events_content_kept CHECK (
    coalesce(reason_code, '') IN ('unknown_subject', 'consent_revoked', 'scope_not_granted',
                                  'scope_not_allowed', 'before_consent')
    OR (subject_ref IS NOT NULL AND kind IS NOT NULL AND mode IS NOT NULL
        AND behaviour IS NOT NULL AND started_at IS NOT NULL AND ended_at IS NOT NULL)
) NOT VALID;
ALTER TABLE behaviour_events VALIDATE CONSTRAINT behaviour_events_without_consent_minimal;
ALTER TABLE behaviour_events VALIDATE CONSTRAINT behaviour_events_content_kept;
