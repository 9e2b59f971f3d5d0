-- Donation (issue 11, rewards/): public-welfare projects, residents' donations and their
-- certificates, and the guard that makes a retirement final. See docs/rewards.md, "Donation".
--
-- A project collects points (donations) and verified grams (retirements) in ledger accounts of
-- its own, `project:<id>` (POINT and CO2E_G); its target is in one of the two. No foreign key
-- to the ledger or to residents (other owners' tables): the service writes both in one
-- transaction.

CREATE TABLE donation_projects (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    title         text        NOT NULL CHECK (btrim(title) <> '' AND length(title) <= 200),
    beneficiary   text        NOT NULL CHECK (btrim(beneficiary) <> '' AND length(beneficiary) <= 200),
    description   text        NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    target_asset  text        NOT NULL CHECK (target_asset IN ('POINT', 'CO2E_G')),
    target_amount bigint      NOT NULL CHECK (target_amount > 0),
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX donation_projects_listed ON donation_projects (starts_at DESC, id);

-- One row per donation (points) or retirement (grams). The serial is the certificate's number,
-- human-readable and unique: TPH-<vintage year>-<P|G>-<8 digits of the row id>, e.g.
-- TPH-2026-P-00000042 (P: points donated, G: grams retired). `transfer_id` is the certified
-- ledger transfer (the donation pool to the project: docs/rewards.md says why two legs), set
-- in the same transaction as the row.
CREATE TABLE donations (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    vintage           integer     NOT NULL CHECK (vintage BETWEEN 2000 AND 9999),
    asset             text        NOT NULL CHECK (asset IN ('POINT', 'CO2E_G')),
    serial            text        GENERATED ALWAYS AS (
        'TPH-' || vintage::text || '-' || CASE asset WHEN 'POINT' THEN 'P' ELSE 'G' END || '-'
        || lpad(id::text, 8, '0')
    ) STORED UNIQUE,
    project_id        uuid        NOT NULL REFERENCES donation_projects (id),
    resident_id       uuid        NOT NULL,
    donor             text        NOT NULL CHECK (donor ~ '^donor-[0-9a-f]{12}$'),
    amount            bigint      NOT NULL CHECK (amount > 0),
    pool_transfer_id  bigint,
    transfer_id       bigint      UNIQUE,
    donated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX donations_by_resident ON donations (resident_id, id DESC);
CREATE INDEX donations_by_project ON donations (project_id, asset);

-- A retirement is final: grams credited to a project's CO2E_G account (its retirement account)
-- can never be moved on, held, sold or offset again, whoever writes the ledger. The ledger's
-- balance update is the one way a transfer takes grams out of an account, so refusing any
-- decrease of that account's posted balance, and any hold on it, closes every debit path
-- (posted transfers, holds, reversals of the retirement itself). The WHEN clause is evaluated
-- without calling the function, so the ledger's other balance updates pay one comparison.
CREATE FUNCTION ledger_retirement_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE check_violation USING
        MESSAGE = format('account %s (project:%s CO2E_G) holds retired grams: they never leave it',
                         OLD.id, OLD.owner_id),
        TABLE = 'ledger_accounts', CONSTRAINT = 'ledger_retirement_final';
END
$$;
CREATE TRIGGER ledger_retirement_final BEFORE UPDATE OF posted, pending_debits ON ledger_accounts
    FOR EACH ROW
    WHEN (OLD.owner_type = 'project' AND OLD.asset = 'CO2E_G'
          AND (NEW.posted < OLD.posted OR NEW.pending_debits > OLD.pending_debits))
    EXECUTE FUNCTION ledger_retirement_final();
