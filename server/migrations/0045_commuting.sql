-- Employee commuting programmes (issue 13, item 3; enterprises/commuting.py, docs/commuting.md).
--
-- An enterprise runs a programme; residents join it from the app with an employee code the
-- enterprise handed out or with the programme's invitation link, giving explicit consent (the
-- version of the consent text they accepted is recorded), and may leave at any time. The
-- enterprise sees only aggregates of its current members (suppressed below a minimum group
-- size); it never sees who joined. Bonus points for members' verified commuting trips are paid
-- from the enterprise's own POINT account (ledger transfers, once per programme and trip).
-- No foreign key to residents, the ledger or behaviours' events (other owners' tables): the
-- service writes in one transaction and reads their published functions.
CREATE TABLE commuting_programmes (
    id                uuid        PRIMARY KEY,
    enterprise_id     uuid        NOT NULL REFERENCES enterprises (id),
    name              text        NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 100),
    -- The bonus rule in force (the data file's default, or the enterprise's own values).
    rule              jsonb       NOT NULL,
    -- SHA-256 of the invitation link's token (the token itself is shown once, never stored).
    invitation_hash bytea       UNIQUE CHECK (octet_length(invitation_hash) = 32),
    created_by        uuid        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- Events received up to here were considered by the last bonus run (NULL: no run yet).
    bonus_watermark   timestamptz,
    UNIQUE (enterprise_id, name)
);

-- The employee codes the enterprise handed out, hashed with the programme's id; a code is
-- bound to the first resident who joins with it (no one else can use it after).
CREATE TABLE commuting_employee_codes (
    programme_id uuid        NOT NULL REFERENCES commuting_programmes (id),
    code_hash  bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
    resident_id  uuid,
    claimed_at   timestamptz,
    PRIMARY KEY (programme_id, code_hash)
);

-- Current membership: one row per programme and resident; leaving sets left_at (rejoining
-- starts a new membership: joined_at and the consent are replaced, left_at cleared). A
-- resident is an active member of at most one programme at a time (one employer's bonus).
CREATE TABLE commuting_members (
    programme_id    uuid        NOT NULL REFERENCES commuting_programmes (id),
    resident_id     uuid        NOT NULL,
    joined_at       timestamptz NOT NULL,
    left_at         timestamptz,
    via             text        NOT NULL CHECK (via IN ('employee_code', 'invitation')),
    consent_version text        NOT NULL CHECK (length(consent_version) BETWEEN 1 AND 40),
    PRIMARY KEY (programme_id, resident_id),
    CHECK (left_at IS NULL OR left_at >= joined_at)
);
CREATE UNIQUE INDEX commuting_members_one_active ON commuting_members (resident_id)
    WHERE left_at IS NULL;

-- Every consent given or withdrawn, append-only (the evidence of consent).
CREATE TABLE commuting_consents (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    programme_id    uuid        NOT NULL REFERENCES commuting_programmes (id),
    resident_id     uuid        NOT NULL,
    action          text        NOT NULL CHECK (action IN ('join', 'leave')),
    consent_version text,
    at              timestamptz NOT NULL DEFAULT now(),
    CHECK (action = 'leave' OR consent_version IS NOT NULL)
);

-- Each bonus run of a programme: paid, or underfunded (nothing paid; why recorded).
CREATE TABLE commuting_bonus_runs (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    programme_id   uuid        NOT NULL REFERENCES commuting_programmes (id),
    ran_at         timestamptz NOT NULL,
    status         text        NOT NULL CHECK (status IN ('paid', 'underfunded')),
    trips          integer     NOT NULL CHECK (trips >= 0),
    points         bigint      NOT NULL CHECK (points >= 0),
    available      bigint      NOT NULL,
    reason         text
);
CREATE INDEX commuting_bonus_runs_programme ON commuting_bonus_runs (programme_id, ran_at DESC);

-- The bonus paid for one trip of one programme: never twice (primary key, and the ledger
-- transfer's idempotency key commuting-bonus:<programme>:<event>).
CREATE TABLE commuting_bonuses (
    programme_id uuid        NOT NULL REFERENCES commuting_programmes (id),
    event_id     uuid        NOT NULL,
    resident_id  uuid        NOT NULL,
    points       bigint      NOT NULL CHECK (points > 0),
    run_id       bigint      NOT NULL REFERENCES commuting_bonus_runs (id),
    transfer_id  bigint      NOT NULL,
    PRIMARY KEY (programme_id, event_id)
);

-- Consents, runs and bonuses are history: added, never changed or deleted.
INSERT INTO app_grants (table_name, privileges) VALUES
    ('commuting_programmes', 'SELECT, INSERT, UPDATE (invitation_hash, bonus_watermark)'),
    ('commuting_employee_codes', 'SELECT, INSERT, UPDATE (resident_id, claimed_at)'),
    ('commuting_members', 'SELECT, INSERT, UPDATE (joined_at, left_at, via, consent_version)'),
    ('commuting_consents', 'SELECT, INSERT'),
    ('commuting_bonus_runs', 'SELECT, INSERT'),
    ('commuting_bonuses', 'SELECT, INSERT');
