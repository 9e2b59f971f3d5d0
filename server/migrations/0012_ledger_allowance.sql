-- A third asset on the ledger (issue 13, item 4): ALLOWANCE_G, grams of CO2e an enterprise may
-- emit, allocated from the region's control target (enterprises/allowances.py, migration 0046;
-- docs/allowances.md). Same engine, same invariants per asset (balances sum to zero, only
-- flagged system accounts go negative, a transfer moves one asset between two accounts of it).
--
-- Allowance is held by enterprises and by system accounts only (the issuance account it is
-- allocated from, the account surrendered allowance ends in): never by a resident, a project or
-- a merchant, whatever writes the ledger. `tanpuhui audit` re-checks both (points/audit.py).
ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_asset_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_asset_check
    CHECK (asset IN ('CO2E_G', 'POINT', 'ALLOWANCE_G'));
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_allowance_holders
    CHECK (asset <> 'ALLOWANCE_G' OR owner_type IN ('enterprise', 'system'));
