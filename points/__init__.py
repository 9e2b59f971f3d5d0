"""The regional ledger: accounts, transfers, holds, reversals, lots and expiry, the journal."""
