"""The ingestion benchmark's stored history (bench/history.py) is a ledger the audit accepts:
its SQL-computed leaf hashes, balances, lots and issuance totals are what the ledger itself
would have written, so the 10M-stored run's "audit passed" means something."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from points.audit import audit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import history

pytestmark = pytest.mark.usefixtures("clean_stores")


async def test_a_stored_history_passes_the_audit_with_its_counts(owner_pool: Any) -> None:
    async with owner_pool.acquire() as conn:
        await history.preload(conn, 12_345)
        counts = await conn.fetchrow(
            """
            SELECT (SELECT count(*) FROM behaviour_events) AS events,
                   (SELECT count(*) FROM ledger_transfers) AS transfers,
                   (SELECT count(*) FROM point_lots) AS lots,
                   (SELECT count(*) FROM ledger_batches) AS batches,
                   (SELECT sum(posted) FROM ledger_accounts WHERE asset = 'POINT') AS points
            """
        )
        report = await audit(conn)
    assert (counts["events"], counts["transfers"], counts["lots"]) == (12_345, 24_690, 12_345)
    assert counts["batches"] == 3  # 5,000 events a batch
    assert counts["points"] == 0  # residents' points are minus the issuance account's
    assert report.ok, report.problems


async def test_the_sql_leaf_is_the_ledgers(owner_pool: Any) -> None:
    async with owner_pool.acquire() as conn:
        await history.check_leaf(conn)  # raises AssertionError if points.content's v1 differs
