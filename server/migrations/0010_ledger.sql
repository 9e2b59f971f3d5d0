-- The regional ledger (points/): accounts, immutable transfers, batches (journal blocks), lots.
-- See docs/ledger.md. Invariants live here where the database can hold them:
--   * only system issuance accounts (flag bit 1) may go negative;
--   * a transfer moves one asset between two accounts of that asset;
--   * an idempotency key names one transfer; a hold is posted or voided once; a transfer is
--     reversed at most once;
--   * a lot never holds more than it was credited, nor less than nothing.
--
-- References from transfers and lots to accounts, batches and transfers are checked once per
-- statement (set-wise triggers over the transition table) instead of by per-row foreign keys:
-- the same guarantee, since the referenced rows can never be deleted nor re-keyed (guard
-- triggers below), at a fraction of the cost on the bulk path (docs/ledger.md, "Performance").

CREATE TABLE ledger_accounts (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_type     text        NOT NULL
        CHECK (owner_type IN ('resident', 'enterprise', 'project', 'merchant', 'system')),
    owner_id       text        NOT NULL CHECK (owner_id <> ''),
    asset          text        NOT NULL CHECK (asset IN ('CO2E_G', 'POINT')),
    flags          integer     NOT NULL DEFAULT 0 CHECK (flags & ~1 = 0),  -- 1: issuance
    posted         bigint      NOT NULL DEFAULT 0,       -- credits minus debits, posted
    pending_debits bigint      NOT NULL DEFAULT 0 CHECK (pending_debits >= 0),
    carry_g        bigint      NOT NULL DEFAULT 0 CHECK (carry_g >= 0),  -- grams not yet a point
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_type, owner_id, asset),
    UNIQUE (id, asset),
    CONSTRAINT ledger_accounts_issuance_is_system CHECK (flags & 1 = 0 OR owner_type = 'system'),
    CONSTRAINT ledger_accounts_not_overdrawn CHECK (flags & 1 = 1 OR posted - pending_debits >= 0)
) WITH (fillfactor = 80);  -- room on each page for HOT balance updates (no index churn)

-- One row per committed batch of transfers; sealed into the hash chain after commit (the block).
CREATE TABLE ledger_batches (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at     timestamptz NOT NULL DEFAULT now(),
    seq            bigint      UNIQUE CHECK (seq >= 1),
    prev_hash      bytea,
    merkle_root    bytea,
    block_hash     bytea,
    transfer_count integer,
    sealed_at      timestamptz,
    CHECK ((seq IS NULL) = (block_hash IS NULL)),
    CHECK ((seq IS NULL) = (merkle_root IS NULL)),
    CHECK ((seq IS NULL) = (prev_hash IS NULL))
);
CREATE INDEX ledger_batches_unsealed ON ledger_batches (id) WHERE seq IS NULL;

-- phase: posted (moves amount now) | pending (a hold: reserves amount on the debit account)
--        | post_pending (settles a hold, moving amount <= held) | void_pending (releases a hold).
CREATE TABLE ledger_transfers (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id          bigint      NOT NULL,
    idempotency_key   text        NOT NULL UNIQUE,
    phase             text        NOT NULL
        CHECK (phase IN ('posted', 'pending', 'post_pending', 'void_pending')),
    kind              text        NOT NULL CHECK (kind <> ''),
    reason_code       text        NOT NULL CHECK (reason_code <> ''),
    asset             text        NOT NULL,
    debit_account_id  bigint      NOT NULL,
    credit_account_id bigint      NOT NULL,
    amount            bigint      NOT NULL CHECK (amount >= 0),
    source_ref        text,
    region_code       text        NOT NULL,
    occurred_at       timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    pending_id        bigint,   -- post_pending / void_pending: the hold, settled once (index)
    reverses_id       bigint,   -- a reversal: its original, reversed at most once (index)
    timeout_at        timestamptz,          -- pending: when the hold is voided automatically
    hash              bytea       NOT NULL CHECK (length(hash) = 32),
    CHECK (debit_account_id <> credit_account_id),
    CHECK ((phase IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)),
    CHECK ((phase = 'pending') = (timeout_at IS NOT NULL)),
    CHECK (amount > 0 OR phase = 'void_pending'),
    CHECK (kind <> 'issuance' OR source_ref IS NOT NULL),
    -- Only settlements and reversals carry these: per-row checks, but none on the bulk path.
    FOREIGN KEY (pending_id) REFERENCES ledger_transfers (id),
    FOREIGN KEY (reverses_id) REFERENCES ledger_transfers (id)
);
-- Partial (most rows have neither): same names as the UNIQUE constraints they replace, which is
-- how a violation is reported (hold_already_settled, already_reversed).
CREATE UNIQUE INDEX ledger_transfers_pending_id_key ON ledger_transfers (pending_id)
    WHERE pending_id IS NOT NULL;
CREATE UNIQUE INDEX ledger_transfers_reverses_id_key ON ledger_transfers (reverses_id)
    WHERE reverses_id IS NOT NULL;
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account_id, id);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account_id, id);
CREATE INDEX ledger_transfers_batch ON ledger_transfers (batch_id, id);
CREATE INDEX ledger_transfers_open_holds ON ledger_transfers (timeout_at) WHERE phase = 'pending';
-- No index on source_ref: an event's issuance transfers are found by their idempotency keys
-- (issuance:co2e:<event>, issuance:point:<event>).

-- Each POINT credit to a resident forms a lot; debits consume lots nearest expiry first.
CREATE TABLE point_lots (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint      NOT NULL,           -- checked per statement (trigger below)
    transfer_id bigint      NOT NULL UNIQUE,    -- checked per statement (trigger below)
    amount      bigint      NOT NULL CHECK (amount > 0),
    remaining   bigint      NOT NULL,
    earned_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    CHECK (remaining >= 0 AND remaining <= amount),
    CHECK (expires_at > earned_at)
);
CREATE INDEX point_lots_open ON point_lots (account_id, expires_at, id) WHERE remaining > 0;
CREATE INDEX point_lots_expiring ON point_lots (expires_at) WHERE remaining > 0;

-- Referential integrity, set-wise -------------------------------------------------------------
-- One query per INSERT/UPDATE statement over its transition table replaces five per-row foreign
-- key checks per transfer (+ two per lot). Equivalent to the foreign keys because accounts,
-- batches and transfers referenced here can never be deleted or change id/asset (guards below),
-- so what exists when the statement ends exists for good; `tanpuhui audit` re-checks it too.

CREATE FUNCTION ledger_transfers_check_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    -- Scalar subqueries (never turned into joins): one primary-key probe per reference, so
    -- the cost follows the statement's rows whatever plan the transition table would get.
    SELECT n.id INTO bad FROM ledger_new_transfers n
    WHERE (SELECT a.asset FROM ledger_accounts a WHERE a.id = n.debit_account_id)
              IS DISTINCT FROM n.asset
       OR (SELECT a.asset FROM ledger_accounts a WHERE a.id = n.credit_account_id)
              IS DISTINCT FROM n.asset
       OR (SELECT b.id FROM ledger_batches b WHERE b.id = n.batch_id) IS NULL
    LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('transfer %s: no such batch, or no account of its asset', bad),
            TABLE = 'ledger_transfers', CONSTRAINT = 'ledger_transfers_refs';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_transfers_refs_insert AFTER INSERT ON ledger_transfers
    REFERENCING NEW TABLE AS ledger_new_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_check_refs();

CREATE FUNCTION point_lots_check_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad bigint;
BEGIN
    -- A lot belongs to the POINT account its transfer credited.
    SELECT n.id INTO bad FROM point_lots_new n
    WHERE (SELECT t.credit_account_id FROM ledger_transfers t
           WHERE t.id = n.transfer_id AND t.asset = 'POINT') IS DISTINCT FROM n.account_id
    LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('lot %s: no POINT transfer crediting its account', bad),
            TABLE = 'point_lots', CONSTRAINT = 'point_lots_refs';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER point_lots_refs_insert AFTER INSERT ON point_lots
    REFERENCING NEW TABLE AS point_lots_new
    FOR EACH STATEMENT EXECUTE FUNCTION point_lots_check_refs();
CREATE TRIGGER point_lots_refs_update AFTER UPDATE ON point_lots
    REFERENCING NEW TABLE AS point_lots_new
    FOR EACH STATEMENT EXECUTE FUNCTION point_lots_check_refs();

-- Transfers are immutable: a mistake is corrected by a compensating transfer, never by an edit.
-- (This also keeps every lot's transfer and every transfer's references as they were checked.)
CREATE FUNCTION ledger_transfers_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE restrict_violation USING
        MESSAGE = 'ledger transfers are immutable: correct them with a compensating transfer',
        TABLE = 'ledger_transfers';
END
$$;
CREATE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_immutable();

-- Guards: referenced rows are never deleted and never re-keyed (TRUNCATE, which empties every
-- table at once, is still possible for tests and resets).
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE restrict_violation USING
        MESSAGE = format('%s rows are referenced by the ledger: never deleted or re-keyed',
                         TG_TABLE_NAME),
        TABLE = TG_TABLE_NAME;
END
$$;
CREATE TRIGGER ledger_accounts_keep BEFORE DELETE OR UPDATE OF id, asset ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_batches_keep BEFORE DELETE OR UPDATE OF id ON ledger_batches
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
