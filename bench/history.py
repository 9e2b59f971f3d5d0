"""Stored history for the ingestion benchmark (issue 10, item 5: cost that does not grow with
the history): ``BENCH_STORED`` accepted metro trips already in ``behaviour_events`` and credited
in the ledger as ingestion credits them (a CO2E_G and a POINT transfer per event, a lot per
POINT credit, the residents' accounts with their balances, the issuance account's negative
total), spread over the year before the run, in batches of 5,000 as the API writes them.

    BENCH_STORED=10000000 flock /tmp/tph-bench.lock .venv/bin/python bench/bench_ingest.py

Written set-wise in SQL (a few statements, ~minutes for 10M events), not through the API, so it
is history and not part of the measured run. The history belongs to residents of its own
(``BENCH_STORED / 10`` of them, ten trips each, 36 days apart): the run's residents are still
new to the ledger, so the run does the same work as on an empty database and only the tables'
and indexes' size differs. Leaf hashes follow ``points.content`` format v1 exactly (the audit
after the run re-hashes every one of them; ``check_leaf`` compares one with Python's first).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

BATCH = 5000
GRAMS = 600  # per historical trip: 60 points at the default 10 g a point, no carry
POINTS = 60

# A v7-layout uuid (time-ordered as the pipeline's ids) for event e at time ts.
_UUID = (
    "(lpad(to_hex((extract(epoch FROM {ts}) * 1000)::bigint), 12, '0') || '7' "
    "|| substr(md5('h' || {e}), 1, 19))::uuid"
)
_TS = "date_trunc('second', ts0 + (e::float8 / n) * span)"  # leaves carry whole seconds


def _leaf_sql(key: str, asset: str, amount: str) -> str:
    """The v1 leaf of an issuance transfer, as points.content.TransferContent.leaf."""
    return (
        "sha256('\\x00'::bytea || convert_to(format("
        '\'[1,"%s","posted","issuance","verified_reduction","%s","system",'
        '"issuance.0","resident","%s",%s,"%s","%s","%s",null,null,null]\', '
        f"{key}, '{asset}', rid, {amount}, ev::text, district, "
        "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'), 'UTF8'))"
    )


async def check_leaf(conn: Any) -> None:
    """One leaf computed by the SQL above equals Python's (format v1)."""
    from points.content import TransferContent
    from points.schemas import Owner

    ts = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    got = await conn.fetchval(
        "SELECT "
        + _leaf_sql("'issuance:co2e:' || ev", "CO2E_G", "600")
        + " FROM (SELECT $1::uuid AS ev, $2::text AS rid, '440301'::text AS district,"
        " $3::timestamptz AS ts) x",
        "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011",
        "00000000-0000-0000-0000-000000000001",
        ts,
    )
    want = TransferContent(
        idempotency_key="issuance:co2e:0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011",
        phase="posted",
        kind="issuance",
        reason_code="verified_reduction",
        asset="CO2E_G",
        debit=Owner("system", "issuance.0"),
        credit=Owner("resident", "00000000-0000-0000-0000-000000000001"),
        amount=600,
        source_ref="0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011",
        region_code="440301",
        occurred_at=ts,
    ).leaf()
    assert bytes(got) == want, "the SQL leaf differs from points.content's"


async def preload(conn: Any, n: int) -> None:
    """``n`` stored, credited events (see the module docstring)."""
    if n <= 0:
        return
    await check_leaf(conn)
    residents = max(1, n // 10)
    t0 = time.perf_counter()
    await conn.execute("SET synchronous_commit = off")  # history: the run itself is durable
    await conn.execute(
        f"""
        CREATE TEMP TABLE hist_params AS
        SELECT {int(n)}::bigint AS n, {int(residents)}::bigint AS h,
               now() - interval '400 days' AS ts0, interval '360 days' AS span
        """
    )
    # The issuance account (shard 0) carries minus the whole history, as ingestion leaves it.
    await conn.execute(
        f"""
        INSERT INTO ledger_accounts (owner_type, owner_id, asset, flags, posted)
        SELECT 'system', 'issuance.0', a, 1,
               -(p.n * CASE a WHEN 'CO2E_G' THEN {GRAMS} ELSE {POINTS} END)
        FROM hist_params p, unnest(ARRAY['CO2E_G', 'POINT']) a
        ON CONFLICT (owner_type, owner_id, asset)
        DO UPDATE SET posted = ledger_accounts.posted + EXCLUDED.posted
        """
    )
    await conn.execute(
        f"""
        CREATE TEMP TABLE hist_accounts AS
        WITH ins AS (
            INSERT INTO ledger_accounts (owner_type, owner_id, asset, flags, posted)
            SELECT 'resident', md5('hist-resident' || r)::uuid::text, a, 0,
                   (p.n / p.h + (r < p.n % p.h)::int)
                   * CASE a WHEN 'CO2E_G' THEN {GRAMS} ELSE {POINTS} END
            FROM hist_params p, generate_series(0, p.h - 1) r,
                 unnest(ARRAY['CO2E_G', 'POINT']) a
            RETURNING id, owner_id, asset
        )
        SELECT owner_id AS rid,
               max(id) FILTER (WHERE asset = 'CO2E_G') AS co2e,
               max(id) FILTER (WHERE asset = 'POINT') AS point
        FROM ins GROUP BY owner_id
        """
    )
    await conn.execute(
        """
        CREATE TEMP TABLE hist_batches AS
        WITH ins AS (
            INSERT INTO ledger_batches (created_at)
            SELECT p.ts0 + (b::float8 * 5000 / p.n) * p.span
            FROM hist_params p, generate_series(0, (p.n - 1) / 5000) b
            RETURNING id
        )
        SELECT id, row_number() OVER (ORDER BY id) - 1 AS b FROM ins
        """
    )
    issuance = await conn.fetch(
        "SELECT asset, id FROM ledger_accounts WHERE owner_type = 'system'"
        " AND owner_id = 'issuance.0'"
    )
    src = {r["asset"]: r["id"] for r in issuance}
    print(f"  history: accounts and batches in {time.perf_counter() - t0:.0f} s", flush=True)
    # The events' common part: id, resident, time, district.
    await conn.execute(
        f"""
        CREATE TEMP TABLE hist_events AS
        SELECT e, {_UUID.format(ts=_TS, e="e")} AS ev, {_TS} AS ts,
               md5('hist-resident' || (e % h))::uuid::text AS rid, e % h AS r,
               '4403' || lpad(((e % 16) + 1)::text, 2, '0') AS district
        FROM hist_params, generate_series(0, n - 1) e
        """
    )
    print(f"  history: {n:,} events laid out in {time.perf_counter() - t0:.0f} s", flush=True)
    for asset, key, amount in (
        ("CO2E_G", "'issuance:co2e:' || ev", str(GRAMS)),
        ("POINT", "'issuance:point:' || ev", str(POINTS)),
    ):
        column = "co2e" if asset == "CO2E_G" else "point"
        await conn.execute(
            f"""
            INSERT INTO ledger_transfers (batch_id, idempotency_key, phase, kind, reason_code,
                asset, debit_account_id, credit_account_id, amount, source_ref, region_code,
                occurred_at, recorded_at, hash)
            SELECT b.id, {key}, 'posted', 'issuance', 'verified_reduction', '{asset}',
                   {src[asset]}, a.{column}, {amount}, ev::text, district, ts, ts,
                   {_leaf_sql(key, asset, amount)}
            FROM hist_events x
            JOIN hist_accounts a USING (rid)
            JOIN hist_batches b ON b.b = x.e / 5000
            ORDER BY x.e
            """
        )
        print(f"  history: {asset} transfers in {time.perf_counter() - t0:.0f} s", flush=True)
    await conn.execute(
        f"""
        INSERT INTO point_lots (account_id, transfer_id, amount, remaining, earned_at,
                                expires_at)
        SELECT t.credit_account_id, t.id, {POINTS}, {POINTS}, t.recorded_at,
               date_trunc('year', t.recorded_at) + interval '3 years'
        FROM ledger_transfers t JOIN hist_batches b ON b.id = t.batch_id
        WHERE t.asset = 'POINT'
        """
    )
    print(f"  history: lots in {time.perf_counter() - t0:.0f} s", flush=True)
    await conn.execute(
        f"""
        INSERT INTO behaviour_events (id, operator_id, record_id, subject_ref, resident_id,
            kind, mode, behaviour, started_at, ended_at, received_at, status, distance_m,
            distance_source, district_code, methodology_code, methodology_version, factor_g,
            reduction_g, points, trip_key, content_digest, claim_g)
        SELECT ev, 'metro', 'h' || e, 'h' || r, rid::uuid, 'transit_trip', 'metro', 'transit',
               ts, ts + interval '20 minutes', ts + interval '1 hour', 'accepted', 8000, 'gtfs',
               district, 'CN-TRANSIT', 1, 75.0, {GRAMS}, {POINTS},
               box(point(extract(epoch FROM ts), 10000000 + r),
                   point(extract(epoch FROM ts) + 1200, 10000000 + r)),
               sha256(convert_to(ev::text, 'UTF8')), {GRAMS}
        FROM hist_events ORDER BY e
        """
    )
    print(f"  history: events in {time.perf_counter() - t0:.0f} s", flush=True)
    await conn.execute("DROP TABLE hist_events, hist_accounts, hist_batches, hist_params")
    await conn.execute("RESET synchronous_commit")
    await conn.execute("VACUUM ANALYZE behaviour_events")
    await conn.execute("VACUUM ANALYZE ledger_transfers")
    await conn.execute("VACUUM ANALYZE point_lots")
    await conn.execute("VACUUM ANALYZE ledger_accounts")
    print(f"history: {n:,} stored events in {time.perf_counter() - t0:.0f} s", flush=True)
