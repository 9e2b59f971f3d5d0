-- Offsets: enterprises buy pooled reductions and retire them (issue 13, item 2;
-- enterprises/offsets.py, SQL in enterprises/offsets_repository.py; docs/offsets.md).
--
-- A purchase takes the lowest serials the programme still holds (those of the issued blocks,
-- offset_issuances, that no live holding covers) and records them as holdings of the buyer:
-- rows of serial sub-ranges, each inside one block, with a holder and a state. A retirement
-- ends some of the holder's `held` rows and writes in their place a `retired` row for the part
-- retired and a `held` row for any remainder (each naming the row it came from, `parent_id`),
-- so a serial is traced from its block through every row that held it to its current holder.
-- Serials move on the ledger too (enterprises/offsets.py): the programme's account to the
-- buyer's offsets account at purchase, that account to the buyer's retired offsets account at
-- retirement (enterprise:<id>:offsets_retired: one per enterprise, so that concurrent
-- retirements never wait for one hot account row);
-- the transfers' source_ref name the serials. No foreign key to the ledger (another owner's
-- table): the service writes both in one transaction.

CREATE TABLE offset_purchases (
    id                bigint        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_key       text          NOT NULL UNIQUE CHECK (length(request_key) BETWEEN 1 AND 300),
    enterprise_id     uuid          NOT NULL REFERENCES enterprises (id),
    amount            bigint        NOT NULL CHECK (amount > 0),
    -- recorded for the enterprise's statement; no payment is processed
    price_yuan_per_t  numeric(14, 2) NOT NULL CHECK (price_yuan_per_t >= 0),
    transfer_id       bigint        UNIQUE,
    purchased_at      timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX offset_purchases_by_enterprise ON offset_purchases (enterprise_id, id DESC);

-- One row per retirement: the certificate's serial is TPH-<period>-O-<8 digits of the id>
-- (O: an offset retired against the enterprise's emissions of <period>, a calendar year).
-- The enterprise's name is kept as it was when it retired (the certificate shows it).
CREATE TABLE offset_retirements (
    id                bigint        GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_key       text          NOT NULL UNIQUE CHECK (length(request_key) BETWEEN 1 AND 300),
    enterprise_id     uuid          NOT NULL REFERENCES enterprises (id),
    enterprise_name   text          NOT NULL,
    period            integer       NOT NULL CHECK (period BETWEEN 2000 AND 9999),
    amount            bigint        NOT NULL CHECK (amount > 0),
    serial            text          GENERATED ALWAYS AS (
        'TPH-' || period::text || '-O-' || lpad(id::text, 8, '0')
    ) STORED UNIQUE,
    transfer_id       bigint        UNIQUE,
    retired_at        timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX offset_retirements_by_enterprise ON offset_retirements (enterprise_id, period);

CREATE TABLE offset_holdings (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issuance_id    bigint      NOT NULL REFERENCES offset_issuances (id),
    serial_start   bigint      NOT NULL CHECK (serial_start > 0),
    serial_end     bigint      NOT NULL CHECK (serial_end >= serial_start),
    serials        int8range   GENERATED ALWAYS AS (int8range(serial_start, serial_end, '[]')) STORED,
    enterprise_id  uuid        NOT NULL REFERENCES enterprises (id),
    state          text        NOT NULL CHECK (state IN ('held', 'retired')),
    purchase_id    bigint      NOT NULL REFERENCES offset_purchases (id),
    retirement_id  bigint      REFERENCES offset_retirements (id),
    parent_id      bigint      REFERENCES offset_holdings (id),
    ended_at       timestamptz, -- a held row split by a retirement (NULL: live)
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'retired') = (retirement_id IS NOT NULL)),
    CHECK (state = 'held' OR ended_at IS NULL),
    -- Live holdings never overlap, whoever writes: a serial has at most one live holder, and a
    -- retired row is live for ever, so nothing can ever hold a retired serial again.
    EXCLUDE USING gist (serials WITH &&) WHERE (ended_at IS NULL)
);
CREATE INDEX offset_holdings_held ON offset_holdings (enterprise_id, serial_start)
    WHERE state = 'held' AND ended_at IS NULL;
CREATE INDEX offset_holdings_by_issuance ON offset_holdings (issuance_id, serial_start)
    WHERE ended_at IS NULL;
CREATE INDEX offset_holdings_by_retirement ON offset_holdings (retirement_id)
    WHERE retirement_id IS NOT NULL;

-- A holding lies inside its block and starts live.
CREATE FUNCTION offset_holding_checked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ended_at IS NOT NULL THEN
        RAISE check_violation USING MESSAGE = 'a holding starts live',
            TABLE = 'offset_holdings', CONSTRAINT = 'offset_holding_checked';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM offset_issuances i
                   WHERE i.id = NEW.issuance_id
                     AND int8range(NEW.serial_start, NEW.serial_end, '[]') <@ i.serials) THEN
        RAISE check_violation USING
            MESSAGE = format('serials %s-%s are not in issuance %s',
                             NEW.serial_start, NEW.serial_end, NEW.issuance_id),
            TABLE = 'offset_holdings', CONSTRAINT = 'offset_holding_checked';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER offset_holding_checked BEFORE INSERT ON offset_holdings
    FOR EACH ROW EXECUTE FUNCTION offset_holding_checked();

-- Retired serials never move again, and holdings are history: no row is ever deleted, a
-- retired row never changes, and a held row changes once, to end it (ended_at set, nothing
-- else), whatever role writes (the application role may not even try: its grants below).
CREATE FUNCTION offset_holding_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE check_violation USING MESSAGE = format('holding %s: holdings are never deleted', OLD.id),
            TABLE = 'offset_holdings', CONSTRAINT = 'offset_holding_final';
    END IF;
    IF OLD.state = 'retired' THEN
        RAISE check_violation USING
            MESSAGE = format('holding %s: retired serials %s-%s never move again',
                             OLD.id, OLD.serial_start, OLD.serial_end),
            TABLE = 'offset_holdings', CONSTRAINT = 'offset_holding_final';
    END IF;
    IF OLD.ended_at IS NOT NULL OR NEW.ended_at IS NULL
       OR (NEW.issuance_id, NEW.serial_start, NEW.serial_end, NEW.enterprise_id, NEW.state,
           NEW.purchase_id, NEW.retirement_id, NEW.parent_id, NEW.created_at)
          IS DISTINCT FROM
          (OLD.issuance_id, OLD.serial_start, OLD.serial_end, OLD.enterprise_id, OLD.state,
           OLD.purchase_id, OLD.retirement_id, OLD.parent_id, OLD.created_at) THEN
        RAISE check_violation USING
            MESSAGE = format('holding %s: a held row may only be ended, once', OLD.id),
            TABLE = 'offset_holdings', CONSTRAINT = 'offset_holding_final';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER offset_holding_final BEFORE UPDATE OR DELETE ON offset_holdings
    FOR EACH ROW EXECUTE FUNCTION offset_holding_final();

-- A retirement is never deleted nor changed, but for its transfer's link, set once.
CREATE FUNCTION offset_retirement_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.transfer_id IS NOT NULL
       OR (NEW.request_key, NEW.enterprise_id, NEW.enterprise_name, NEW.period, NEW.amount,
           NEW.retired_at)
          IS DISTINCT FROM
          (OLD.request_key, OLD.enterprise_id, OLD.enterprise_name, OLD.period, OLD.amount,
           OLD.retired_at) THEN
        RAISE check_violation USING MESSAGE = format('retirement %s is final', OLD.id),
            TABLE = 'offset_retirements', CONSTRAINT = 'offset_retirement_final';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER offset_retirement_final BEFORE UPDATE OR DELETE ON offset_retirements
    FOR EACH ROW EXECUTE FUNCTION offset_retirement_final();

-- On the ledger, the grams retired as offsets (enterprise:<id>:offsets_retired CO2E_G) never leave
-- their account either: as for residents' retirements (0051, ledger_retirement_final), any
-- decrease of its posted balance and any hold on it is refused.
CREATE FUNCTION ledger_offsets_retired_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE check_violation USING
        MESSAGE = format('account %s (enterprise:%s CO2E_G) holds retired offsets: they never leave it', OLD.id, OLD.owner_id),
        TABLE = 'ledger_accounts', CONSTRAINT = 'ledger_offsets_retired_final';
END
$$;
CREATE TRIGGER ledger_offsets_retired_final BEFORE UPDATE OF posted, pending_debits ON ledger_accounts
    FOR EACH ROW
    WHEN (OLD.owner_type = 'enterprise' AND OLD.asset = 'CO2E_G' AND OLD.owner_id LIKE '%:offsets_retired'
          AND (NEW.posted < OLD.posted OR NEW.pending_debits > OLD.pending_debits))
    EXECUTE FUNCTION ledger_offsets_retired_final();

-- Least privilege: purchases and retirements are added and linked to their transfer; holdings
-- added and ended; nothing deleted.
INSERT INTO app_grants (table_name, privileges) VALUES
    ('offset_purchases', 'SELECT, INSERT, UPDATE (transfer_id)'),
    ('offset_retirements', 'SELECT, INSERT, UPDATE (transfer_id)'),
    ('offset_holdings', 'SELECT, INSERT, UPDATE (ended_at)');

-- The vintage's verified grams (all methodologies) when a block was issued: residents may
-- retire grams of a pooled vintage only within what pooling left (verified - retired - pooled),
-- and this snapshot lets a donation check that without re-reading a year of events
-- (enterprises.pooling.retirement_room; docs/offsets.md, "Residents' retirements after pooling").
ALTER TABLE offset_issuances ADD COLUMN vintage_verified_g bigint CHECK (vintage_verified_g >= 0);
