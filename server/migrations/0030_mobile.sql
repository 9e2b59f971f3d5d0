-- Residents' personal data and sign-in state for the mobile API (server/mobile/).
-- Kept apart from `residents` and from ledger / event rows: erasing an account deletes the row
-- here and leaves the resident's uuid as the pseudonym under which its ledger entries stay.

CREATE TABLE resident_identities (
    resident_id        uuid        PRIMARY KEY REFERENCES residents (id) ON DELETE CASCADE,
    phone_hmac         bytea       UNIQUE,      -- HMAC-SHA256(privacy key, normalised phone)
    phone_masked       text,                    -- "138****5678", for display only
    wechat_openid_hmac bytea       UNIQUE,      -- HMAC-SHA256(privacy key, openid)
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (phone_hmac IS NOT NULL OR wechat_openid_hmac IS NOT NULL)
);

-- One family per sign-in; every refresh rotates the token inside its family. Presenting a token
-- that was already rotated (a stolen copy) revokes the whole family.
CREATE TABLE refresh_families (
    id             uuid        PRIMARY KEY,
    resident_id    uuid        NOT NULL REFERENCES residents (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_reason text                          -- signed_out | reuse_detected | account_deleted
);
CREATE INDEX refresh_families_resident ON refresh_families (resident_id);

CREATE TABLE refresh_tokens (
    token_hash  bytea       PRIMARY KEY,         -- SHA-256 of the opaque token; never the token
    family_id   uuid        NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz                      -- set once, when exchanged for a successor
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

-- District leaderboards are keyed by residents.district_code.
CREATE INDEX residents_district ON residents (district_code) WHERE deleted_at IS NULL;
