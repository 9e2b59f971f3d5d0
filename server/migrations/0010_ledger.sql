-- The regional ledger (points/): accounts, immutable transfers, batches (journal blocks), lots.
-- See docs/ledger.md. Invariants live here where the database can hold them:
--   * only system issuance accounts (flag bit 1) may go negative;
--   * a transfer moves one asset between two accounts of that asset;
--   * an idempotency key names one transfer; a hold is posted or voided once; a transfer is
--     reversed at most once;
--   * a lot never holds more than it was credited, nor less than nothing.

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
);

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
    pending_id        bigint      UNIQUE,   -- post_pending / void_pending: the hold, settled once
    reverses_id       bigint      UNIQUE,   -- a reversal: its original, reversed at most once
    timeout_at        timestamptz,          -- pending: when the hold is voided automatically
    hash              bytea       NOT NULL CHECK (length(hash) = 32),
    CHECK (debit_account_id <> credit_account_id),
    CHECK ((phase IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)),
    CHECK ((phase = 'pending') = (timeout_at IS NOT NULL)),
    CHECK (amount > 0 OR phase = 'void_pending'),
    CHECK (kind <> 'issuance' OR source_ref IS NOT NULL),
    FOREIGN KEY (batch_id) REFERENCES ledger_batches (id),
    FOREIGN KEY (debit_account_id, asset) REFERENCES ledger_accounts (id, asset),
    FOREIGN KEY (credit_account_id, asset) REFERENCES ledger_accounts (id, asset),
    FOREIGN KEY (pending_id) REFERENCES ledger_transfers (id),
    FOREIGN KEY (reverses_id) REFERENCES ledger_transfers (id)
);
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account_id, id);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account_id, id);
CREATE INDEX ledger_transfers_batch ON ledger_transfers (batch_id, id);
CREATE INDEX ledger_transfers_open_holds ON ledger_transfers (timeout_at) WHERE phase = 'pending';
CREATE INDEX ledger_transfers_source_ref ON ledger_transfers (source_ref) WHERE source_ref IS NOT NULL;

-- Each POINT credit to a resident forms a lot; debits consume lots nearest expiry first.
CREATE TABLE point_lots (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint      NOT NULL REFERENCES ledger_accounts (id),
    transfer_id bigint      NOT NULL UNIQUE REFERENCES ledger_transfers (id),
    amount      bigint      NOT NULL CHECK (amount > 0),
    remaining   bigint      NOT NULL,
    earned_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    CHECK (remaining >= 0 AND remaining <= amount),
    CHECK (expires_at > earned_at)
);
CREATE INDEX point_lots_open ON point_lots (account_id, expires_at, id) WHERE remaining > 0;
CREATE INDEX point_lots_expiring ON point_lots (expires_at) WHERE remaining > 0;
