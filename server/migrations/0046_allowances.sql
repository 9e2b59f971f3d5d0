-- Targets and emission rights (issue 13, item 4; enterprises/allowances.py, docs/allowances.md).
--
-- A period is a region's control target for a year (region: a GB/T 2260 code; an enterprise is
-- in it when its district code starts with the region's code less its trailing "00" pairs).
-- Government allocates the target to the region's enterprises in rounds, each by one recorded
-- method; the allocated sum can never exceed the target (a CHECK on the period row, which every
-- allocation updates under its row lock). Allocated allowance is ALLOWANCE_G on the ledger,
-- moved from system:allowance_issuance (flagged) to each enterprise's account by one transfer
-- per line. An enterprise's position in the period (allocated, bought, sold, surrendered, and
-- what its open offers reserve) is one row, locked by every change of it; held allowance is
-- never negative. An enterprise has one position per year (one region's period).
-- No foreign key to the ledger (another owner's table): the service writes both in one
-- transaction, and tests/enterprises/test_allowances.py checks they agree.
CREATE TABLE allowance_periods (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    region_code text        NOT NULL CHECK (region_code ~ '^[1-9][0-9]{5}$'),
    year        integer     NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    target_g    bigint      NOT NULL CHECK (target_g > 0),
    allocated_g bigint      NOT NULL DEFAULT 0 CHECK (allocated_g >= 0),
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    UNIQUE (region_code, year),
    CONSTRAINT allowance_periods_within_target CHECK (allocated_g <= target_g),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

-- One allocation round: its method and the method's inputs (base years, benchmarks and their
-- source, or the explicit amounts), as the audit log's entry records them too.
CREATE TABLE allowance_allocations (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    period_id    bigint      NOT NULL REFERENCES allowance_periods (id),
    method       text        NOT NULL CHECK (method IN ('historical_share', 'benchmark', 'manual')),
    parameters   jsonb       NOT NULL,
    amount_g     bigint      NOT NULL CHECK (amount_g > 0),
    allocated_by text        NOT NULL CHECK (allocated_by <> ''),
    allocated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX allowance_allocations_period ON allowance_allocations (period_id, id);

CREATE TABLE allowance_allocation_lines (
    allocation_id bigint           NOT NULL REFERENCES allowance_allocations (id),
    enterprise_id uuid             NOT NULL REFERENCES enterprises (id),
    industry      text             NOT NULL,
    basis_value   double precision,            -- base emissions (kg), added value (10k CNY)
    amount_g      bigint           NOT NULL CHECK (amount_g > 0),
    transfer_id   bigint,
    PRIMARY KEY (allocation_id, enterprise_id)
);
CREATE INDEX allowance_allocation_lines_enterprise ON allowance_allocation_lines (enterprise_id);

CREATE TABLE allowance_positions (
    period_id      bigint      NOT NULL REFERENCES allowance_periods (id),
    enterprise_id  uuid        NOT NULL REFERENCES enterprises (id),
    year           integer     NOT NULL,
    allocated_g    bigint      NOT NULL DEFAULT 0 CHECK (allocated_g >= 0),
    bought_g       bigint      NOT NULL DEFAULT 0 CHECK (bought_g >= 0),
    sold_g         bigint      NOT NULL DEFAULT 0 CHECK (sold_g >= 0),
    surrendered_g  bigint      NOT NULL DEFAULT 0 CHECK (surrendered_g >= 0),
    offered_g      bigint      NOT NULL DEFAULT 0 CHECK (offered_g >= 0),  -- open offers
    surrendered_at timestamptz,
    PRIMARY KEY (period_id, enterprise_id),
    UNIQUE (enterprise_id, year),
    CONSTRAINT allowance_positions_held CHECK (
        allocated_g + bought_g - sold_g - surrendered_g >= offered_g)
);

-- An offer of surplus allowance for sale, bought whole at most once: the purchase is the
-- conditional update of an open row under its lock (status 'open' -> 'sold').
CREATE TABLE allowance_offers (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    period_id       bigint      NOT NULL REFERENCES allowance_periods (id),
    seller_id       uuid        NOT NULL REFERENCES enterprises (id),
    quantity_g      bigint      NOT NULL CHECK (quantity_g > 0),
    price_fen_per_t bigint      NOT NULL CHECK (price_fen_per_t BETWEEN 0 AND 100000000000),
    status          text        NOT NULL DEFAULT 'open'
                                CHECK (status IN ('open', 'sold', 'withdrawn')),
    buyer_id        uuid        REFERENCES enterprises (id),
    transfer_id     bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    settled_at      timestamptz,
    CHECK ((status = 'sold') = (buyer_id IS NOT NULL)),
    CHECK ((status = 'sold') = (transfer_id IS NOT NULL)),
    CHECK ((status = 'open') = (settled_at IS NULL)),
    CHECK (buyer_id IS DISTINCT FROM seller_id)
);
CREATE INDEX allowance_offers_open ON allowance_offers (period_id, created_at, id)
    WHERE status = 'open';
CREATE INDEX allowance_offers_sold ON allowance_offers (period_id, settled_at, id)
    WHERE status = 'sold';
CREATE INDEX allowance_offers_seller ON allowance_offers (seller_id, created_at);
CREATE INDEX allowance_offers_buyer ON allowance_offers (buyer_id, settled_at) WHERE buyer_id IS NOT NULL;

-- Surrendered allowance is final: what the surrender account (system:allowance_surrendered
-- ALLOWANCE_G) received never leaves it, whoever writes the ledger (as retired grams, 0051).
CREATE FUNCTION ledger_allowance_surrender_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE check_violation USING
        MESSAGE = format('account %s (system:allowance_surrendered) holds surrendered '
                         'allowance: it never leaves it', OLD.id),
        TABLE = 'ledger_accounts', CONSTRAINT = 'ledger_allowance_surrender_final';
END
$$;
CREATE TRIGGER ledger_allowance_surrender_final
    BEFORE UPDATE OF posted, pending_debits ON ledger_accounts
    FOR EACH ROW
    WHEN (OLD.owner_type = 'system' AND OLD.owner_id = 'allowance_surrendered'
          AND OLD.asset = 'ALLOWANCE_G'
          AND (NEW.posted < OLD.posted OR NEW.pending_debits > OLD.pending_debits))
    EXECUTE FUNCTION ledger_allowance_surrender_final();

-- History is kept: the application adds rows and moves their counters, never deletes them.
INSERT INTO app_grants (table_name, privileges) VALUES
    ('allowance_periods', 'SELECT, INSERT, UPDATE (target_g, allocated_g, status, updated_at, closed_at)'),
    ('allowance_allocations', 'SELECT, INSERT'),
    ('allowance_allocation_lines', 'SELECT, INSERT'),
    ('allowance_positions',
     'SELECT, INSERT, UPDATE (allocated_g, bought_g, sold_g, surrendered_g, offered_g, surrendered_at)'),
    ('allowance_offers', 'SELECT, INSERT, UPDATE (status, buyer_id, transfer_id, settled_at)');
