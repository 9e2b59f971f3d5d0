-- What the application may do on the ledger (docs/ledger.md, "Who may write the ledger"):
-- insert and read transfers, never update, delete or truncate them. Balances, lots and the
-- sealing of blocks are the only updates, column by column. (ON CONFLICT ... DO UPDATE SET
-- flags, which creates-and-locks accounts, needs UPDATE on flags.)
INSERT INTO app_grants (table_name, privileges) VALUES
    ('ledger_transfers', 'SELECT, INSERT'),
    ('ledger_accounts', 'SELECT, INSERT, UPDATE (flags, posted, pending_debits, carry_g)'),
    ('point_lots', 'SELECT, INSERT, UPDATE (remaining)'),
    ('ledger_batches',
     'SELECT, INSERT, UPDATE (seq, prev_hash, merkle_root, block_hash, transfer_count, sealed_at)');

-- Sealing fills a block's chain fields once; a sealed block is final (the application's UPDATE
-- grant on those columns is for sealing only, and it cannot disable this trigger).
CREATE FUNCTION ledger_batches_sealed_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seq IS NOT NULL THEN
        RAISE restrict_violation USING
            MESSAGE = format('journal block %s is sealed: it never changes', OLD.seq),
            TABLE = 'ledger_batches';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER ledger_batches_sealed_once BEFORE UPDATE ON ledger_batches
    FOR EACH ROW EXECUTE FUNCTION ledger_batches_sealed_once();
