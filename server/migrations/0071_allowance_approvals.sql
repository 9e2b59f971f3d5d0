-- Government approval of emission-right transfers (issue 13, items 4 and 6; docs/allowances.md,
-- "Approval"). With TANPUHUI_ENTERPRISES_ALLOWANCE_APPROVAL=government a purchase that passes the
-- legality checks does not settle: the offer waits in 'pending_approval' with its buyer
-- recorded (still reserving the seller's grams, out of the open list, not withdrawable) until a
-- government administrator approves it (the checks run again, then the ledger transfer) or
-- rejects it with a reason (the offer is open again). Every request and its decision is one row
-- of allowance_approvals: the history a buyer and a seller read in their transfers listing.

-- The offer's states: 'pending_approval' has a buyer and no transfer, and is not settled.
DO $$
DECLARE c record;
BEGIN
    FOR c IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'allowance_offers'::regclass AND contype = 'c'
          AND pg_get_constraintdef(oid) LIKE '%status%'
    LOOP
        EXECUTE format('ALTER TABLE allowance_offers DROP CONSTRAINT %I', c.conname);
    END LOOP;
END
$$;
ALTER TABLE allowance_offers
    ADD CONSTRAINT allowance_offers_status
        CHECK (status IN ('open', 'pending_approval', 'sold', 'withdrawn')),
    ADD CONSTRAINT allowance_offers_buyer
        CHECK ((status IN ('pending_approval', 'sold')) = (buyer_id IS NOT NULL)),
    ADD CONSTRAINT allowance_offers_transfer CHECK ((status = 'sold') = (transfer_id IS NOT NULL)),
    ADD CONSTRAINT allowance_offers_settled
        CHECK ((status IN ('open', 'pending_approval')) = (settled_at IS NULL));
CREATE INDEX allowance_offers_pending ON allowance_offers (period_id, created_at, id)
    WHERE status = 'pending_approval';

-- One row per purchase waiting for (or given) the government's decision. At most one pending
-- request per offer, whatever the application does (the partial unique index).
CREATE TABLE allowance_approvals (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    offer_id     uuid        NOT NULL REFERENCES allowance_offers (id),
    buyer_id     uuid        NOT NULL REFERENCES enterprises (id),
    status       text        NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_at timestamptz NOT NULL,
    decided_by   text        CHECK (decided_by <> ''),
    decided_at   timestamptz,
    reason       text        CHECK (char_length(reason) BETWEEN 1 AND 500),
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK ((status = 'pending') = (decided_by IS NULL)),
    CHECK (status <> 'rejected' OR reason IS NOT NULL)
);
CREATE UNIQUE INDEX allowance_approvals_one_pending ON allowance_approvals (offer_id)
    WHERE status = 'pending';
CREATE INDEX allowance_approvals_offer ON allowance_approvals (offer_id, id);
CREATE INDEX allowance_approvals_buyer ON allowance_approvals (buyer_id, requested_at);

-- History is kept: requests are added and decided once, never deleted.
INSERT INTO app_grants (table_name, privileges) VALUES
    ('allowance_approvals', 'SELECT, INSERT, UPDATE (status, decided_by, decided_at, reason)');
