-- Pooled reductions with serials (issue 13, enterprises/pooling.py; docs/offsets.md).
--
-- An issuance pools residents' verified grams of one vintage (the reductions' year) and
-- methodology into a block of serials, one serial a gram, [serial_start, serial_end]. Blocks
-- never overlap, whatever writes the table (the exclusion constraint on the int8range); a zero
-- amount is refused. The pooled grams move on the ledger from the residents' pool account
-- (system:residents_pool CO2E_G) to the programme's account (system:offset_programme CO2E_G) by
-- the transfer `transfer_id`, whose source_ref names the block. No foreign key to the ledger
-- (another owner's table): the service writes both in one transaction.
CREATE TABLE offset_issuances (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_key     text        NOT NULL UNIQUE CHECK (length(request_key) BETWEEN 1 AND 200),
    programme       text        NOT NULL CHECK (programme ~ '^[a-z0-9_-]{1,60}$'),
    methodology     text        NOT NULL CHECK (btrim(methodology) <> '' AND length(methodology) <= 100),
    vintage         integer     NOT NULL CHECK (vintage BETWEEN 2000 AND 9999),
    amount          bigint      NOT NULL CHECK (amount > 0),
    serial_start    bigint      NOT NULL CHECK (serial_start > 0),
    serial_end      bigint      NOT NULL,
    serials         int8range   GENERATED ALWAYS AS (int8range(serial_start, serial_end, '[]')) STORED,
    transfer_id     bigint,
    issued_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (serial_end - serial_start + 1 = amount),
    EXCLUDE USING gist (serials WITH &&)
);
CREATE INDEX offset_issuances_vintage ON offset_issuances (vintage, methodology);

-- Issued blocks are history: the application may add and link them, never delete them.
INSERT INTO app_grants (table_name, privileges) VALUES
    ('offset_issuances', 'SELECT, INSERT, UPDATE (transfer_id)');
