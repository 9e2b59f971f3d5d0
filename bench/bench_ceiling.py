"""The bare stack's ceiling for the ingestion benchmark (issue 10, item 4): the same HTTP server
(uvicorn, uvloop, httptools, the same number of worker processes), the same pre-encoded signed
batches over the same keep-alive connections, the same decoding (msgspec), and the same event
rows written by one binary COPY per batch into a table with the events table's columns and
indexes, in a durable transaction (fsync, synchronous_commit on) — and no logic: no signature
check, no links, rules, quantification, ledger, caps or usage. What ingestion does per event
beyond this is the price of its logic; the ratio of the two figures says how much of the
stack's capacity that logic leaves.

    flock /tmp/tph-bench.lock .venv/bin/python bench/bench_ingest.py   # both, and the ratio
    flock /tmp/tph-bench.lock .venv/bin/python bench/bench_ceiling.py  # the ceiling alone

The ASGI app below is plain (no framework, no project code): the architecture allows asyncpg
in the benchmarks for exactly this. Its table is its own (``ceiling_events``): the same column
list and index set as ``behaviour_events`` (migrations 0020-0026), written out here, so no
project SQL is copied. Rows: every column ingestion stores that can be filled without logic
(operator from the request's header, record, subject, kind, mode, behaviour, times, the claimed
distance and the digest of the record's bytes; a resident id derived from the subject stands
for the link lookup); the rest NULL.

``CEILING_SHAPE=credit`` (the second figure bench_ingest.py prints) is the *credit floor*: the
same, plus the least a durable credit with per-resident balances writes, still with no logic —
in the same transaction, one transfer row for the batch, one narrow posting row per record and
asset (grams and points: ``(transfer, resident, asset, amount)`` with one index) and the
resident's two balance rows updated in place (accounts opened before the run, the cheapest
case). No lots, no leaf hashes, no idempotency keys, no usage, no locks beyond the update's.
Whatever design the ledger takes, a benchmark that credits every event to its resident's
balance by the end of the run cannot beat this figure on the same machine.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

TABLE = "ceiling_events"
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id uuid PRIMARY KEY, operator_id text NOT NULL, record_id text NOT NULL,
    subject_ref text, resident_id uuid, kind text, mode text, behaviour text,
    started_at timestamptz, ended_at timestamptz, received_at timestamptz NOT NULL,
    status text NOT NULL CHECK (status IN ('accepted', 'rejected', 'superseded')),
    reason_code text, reason_message text, distance_m integer, distance_source text,
    quantity double precision, account text, district_code text, methodology_code text,
    methodology_version integer, factor_g double precision,
    reduction_g bigint NOT NULL DEFAULT 0, points bigint NOT NULL DEFAULT 0,
    activity_key text, trip_key box, content_digest bytea, claim_g bigint,
    credit_seq integer, superseded_by uuid, history jsonb
);
CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_record ON {TABLE} (operator_id, record_id);
CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_activity ON {TABLE} (activity_key)
    WHERE status = 'accepted' AND activity_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS {TABLE}_resident ON {TABLE} (resident_id, started_at DESC)
    WHERE resident_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS {TABLE}_meter ON {TABLE} (operator_id, mode, account, started_at)
    WHERE kind = 'meter_reading';
CREATE INDEX IF NOT EXISTS {TABLE}_history
    ON {TABLE} (resident_id, (least(started_at, received_at)) DESC, id DESC);
CREATE INDEX IF NOT EXISTS {TABLE}_no_overlap ON {TABLE} USING gist (trip_key)
    WHERE status = 'accepted' AND trip_key IS NOT NULL;
"""
SHAPE = os.environ.get("CEILING_SHAPE", "events")  # "credit": the credit floor; "postings"
CREDIT_DDL = """
CREATE TABLE IF NOT EXISTS ceiling_accounts (
    resident_id uuid NOT NULL, asset smallint NOT NULL, posted bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (resident_id, asset)
) WITH (fillfactor = 80);  -- HOT balance updates, as the ledger's accounts
CREATE TABLE IF NOT EXISTS ceiling_transfers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ceiling_postings (
    transfer_id bigint NOT NULL, resident_id uuid NOT NULL, asset smallint NOT NULL,
    amount bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS ceiling_postings_account
    ON ceiling_postings (resident_id, asset, transfer_id);
"""
# One statement per batch after the events' COPY: the transfer, its postings, the balances.
CREDIT = """
WITH t AS (INSERT INTO ceiling_transfers DEFAULT VALUES RETURNING id),
legs AS (SELECT * FROM unnest($1::uuid[], $2::smallint[], $3::bigint[]) AS u(r, a, amount)),
p AS (
    INSERT INTO ceiling_postings (transfer_id, resident_id, asset, amount)
    SELECT t.id, legs.r, legs.a, legs.amount FROM t, legs
)
UPDATE ceiling_accounts c SET posted = c.posted + legs.amount
FROM legs WHERE c.resident_id = legs.r AND c.asset = legs.a
"""
# ``CEILING_SHAPE=postings``: the same postings, appended only (balances left to be folded
# later, outside the figure): what the floor owes to updating balances in place.
POSTINGS = """
WITH t AS (INSERT INTO ceiling_transfers DEFAULT VALUES RETURNING id)
INSERT INTO ceiling_postings (transfer_id, resident_id, asset, amount)
SELECT t.id, u.r, u.a, u.amount
FROM t, unnest($1::uuid[], $2::smallint[], $3::bigint[]) AS u(r, a, amount)
"""
GRAMS, POINTS = 100, 10  # no quantification: every record earns the same

COLUMNS = (
    "id",
    "operator_id",
    "record_id",
    "subject_ref",
    "resident_id",
    "kind",
    "mode",
    "behaviour",
    "started_at",
    "ended_at",
    "received_at",
    "status",
    "distance_m",
    "content_digest",
)
BEHAVIOUR = {"metro": "transit", "bus": "transit", "shared_bike": "cycling", "walk": "walking"}


class Point(msgspec.Struct):
    lat: float
    lon: float


class Record(msgspec.Struct, kw_only=True):
    """Any trip record of the benchmark, decoded with its times as datetimes (as ingestion
    decodes them), nothing validated beyond the types."""

    type: str
    record_id: str
    subject: str
    mode: str = "walk"
    boarded_at: datetime | None = None
    alighted_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    boarding_stop: str | None = None
    alighting_stop: str | None = None
    start: Point | None = None
    end: Point | None = None
    distance_m: int | None = None


class Batch(msgspec.Struct):
    events: list[Record]


class Result(msgspec.Struct):
    record_id: str
    status: str = "accepted"
    reason_code: str | None = None


class Answer(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: int
    results: list[Result]


_decoder = msgspec.json.Decoder(Batch)
_encoder = msgspec.json.Encoder()
_RESIDENTS = uuid.UUID("6f1c7a1e-0000-4000-8000-000000000000")
_pool: Any = None


def _ids(n: int) -> list[uuid.UUID]:
    """Time-ordered ids (48-bit milliseconds, then random bits and the position), as ingestion
    uses: the primary key grows at its right edge."""
    ms = int(time.time() * 1000) & 0xFFFF_FFFF_FFFF
    base = (ms << 80) | (0x7 << 76) | (secrets.randbits(12) << 64) | (0b10 << 62)
    base |= secrets.randbits(42) << 20
    return [uuid.UUID(int=base + i) for i in range(n)]


def _rows(operator: str, batch: Batch, raw: bytes) -> list[tuple[Any, ...]]:
    now = datetime.now().astimezone()
    digest = hashlib.sha256(raw).digest()  # one hash of the body stands for the records' own
    out = []
    for r, event_id in zip(batch.events, _ids(len(batch.events)), strict=True):
        start = r.boarded_at or r.started_at
        end = r.alighted_at or r.ended_at
        out.append(
            (
                event_id,
                operator,
                r.record_id,
                r.subject,
                uuid.uuid5(_RESIDENTS, r.subject),
                r.type,
                r.mode,
                BEHAVIOUR.get(r.mode, "transit"),
                start,
                end,
                now,
                "accepted",
                r.distance_m,
                digest,
            )
        )
    return out


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """POST any path: the batch's rows in one durable COPY; the answer lists every record."""
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(
                    os.environ["CEILING_DATABASE_URL"], min_size=1, max_size=8
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    raw = await _body(receive)
    operator = dict(scope["headers"]).get(b"x-operator-id", b"ceiling").decode()
    batch = _decoder.decode(raw)
    rows = _rows(operator, batch, raw)
    async with _pool.acquire() as conn, conn.transaction():
        await conn.copy_records_to_table(TABLE, records=rows, columns=COLUMNS)
        if SHAPE in ("credit", "postings"):
            # one resident per record in the benchmark's batches; two legs each
            residents = [row[4] for row in rows for _ in (0, 1)]
            await conn.execute(
                CREDIT if SHAPE == "credit" else POSTINGS,
                residents,
                [0, 1] * len(rows),
                [GRAMS, POINTS] * len(rows),
            )
        elif SHAPE != "events":
            raise ValueError(f"unknown CEILING_SHAPE {SHAPE!r}")
    body = _encoder.encode(Answer(len(rows), 0, 0, [Result(r.record_id) for r in batch.events]))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def create_table(db_url: str, subjects: list[str] | None = None) -> None:
    """The events table, empty; with ``subjects``, the credit floor's tables too, every
    subject's two accounts opened."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            f"DROP TABLE IF EXISTS {TABLE}, ceiling_accounts, ceiling_transfers, ceiling_postings"
        )
        await conn.execute(DDL)
        if subjects is not None:
            await conn.execute(CREDIT_DDL)
            residents = {uuid.uuid5(_RESIDENTS, s) for s in subjects}
            await conn.copy_records_to_table(
                "ceiling_accounts",
                records=[(r, a) for r in residents for a in (0, 1)],
                columns=("resident_id", "asset"),
            )
            await conn.execute("VACUUM ANALYZE ceiling_accounts")
    finally:
        await conn.close()


def subjects(batches: list[tuple[str, bytes]]) -> list[str]:
    """Every record's subject in the batches (the accounts the credit floor opens)."""
    return [r.subject for _, body in batches for r in _decoder.decode(body).events]


def command(port: int) -> list[str]:
    """The uvicorn command line of one server process: the ingestion benchmark's, with this
    app (bench_ingest.start_servers runs BENCH_WORKERS of them)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench_ceiling:app",
        "--app-dir",
        str(Path(__file__).resolve().parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]


if __name__ == "__main__":
    os.environ["BENCH_CEILING"] = "only"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_ingest import main

    sys.exit(main())
