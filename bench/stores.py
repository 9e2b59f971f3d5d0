"""The benchmarks' stores, one way for every script.

- ``postgres()``: with ``BENCH_DATABASE_URL``, a fresh database on that server, dropped
  afterwards (``scratch=True``), or that database itself (``scratch=False``: the ingestion and
  meter benchmarks, whose database is audited afterwards with ``tanpuhui audit``); otherwise an
  embedded PostgreSQL in a temporary directory, removed afterwards, with :data:`TUNED` applied
  (ALTER SYSTEM and a restart) unless ``BENCH_PG_DEFAULTS`` is set or ``tuned=False``.
  Durability is never touched: ``fsync``, ``synchronous_commit`` and ``full_page_writes`` stay
  on, so every commit a benchmark counts is durable.
- ``redis()``: ``BENCH_REDIS_URL``, or an embedded Redis that keeps nothing on disk.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import asyncpg

# The benchmarks' server configuration: the write-heavy working set of a 1M-resident city stays
# cached, and checkpoints come by time rather than every ~1 GB of WAL.
TUNED: Mapping[str, str] = {
    "shared_buffers": "1GB",  # events, links, usage, accounts and their indexes stay cached
    "wal_buffers": "64MB",  # a 5,000-event batch writes several MB of WAL
    "max_wal_size": "8GB",  # checkpoints by time, not every ~1 GB of WAL
    "min_wal_size": "1GB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "wal_compression": "pglz",  # full-page images after a checkpoint are most of the WAL
}


class Postgres(NamedTuple):
    url: str
    embedded: Any  # server.embedded.EmbeddedPostgres, or None for BENCH_DATABASE_URL

    @property
    def postmaster_pid(self) -> int | None:
        """The embedded server's process (for CPU accounting); None for another server."""
        if self.embedded is None:
            return None
        return int((self.embedded.data_dir / "postmaster.pid").read_text().split()[0])


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def tune(url: str, settings: Mapping[str, str] = TUNED) -> None:
    """ALTER SYSTEM the ``settings`` (they take effect at the next start)."""
    await _execute(url, *(f"ALTER SYSTEM SET {k} = '{v}'" for k, v in settings.items()))


def tuned_line() -> str:
    return "postgres: " + " ".join(f"{k}={v}" for k, v in TUNED.items())


@contextmanager
def postgres(*, scratch: bool = True, tuned: bool = True) -> Iterator[Postgres]:
    base = os.environ.get("BENCH_DATABASE_URL")
    if base and not scratch:
        yield Postgres(base, None)
        return
    if base:
        name = f"tanpuhui_bench_{secrets.token_hex(4)}"
        asyncio.run(_execute(base, f'CREATE DATABASE "{name}"'))
        try:
            yield Postgres(urlunsplit(urlsplit(base)._replace(path="/" + name)), None)
        finally:
            asyncio.run(_execute(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return
    from server.embedded import EmbeddedPostgres

    tmp = Path(tempfile.mkdtemp(prefix="tph-bench-"))
    pg = EmbeddedPostgres(tmp / "pg", database="bench")
    try:
        url = pg.start()
        if tuned and not os.environ.get("BENCH_PG_DEFAULTS"):
            asyncio.run(tune(url))
            pg.stop()
            url = pg.start()
        yield Postgres(url, pg)
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # a 1M-event run leaves ~9 GB of data


@contextmanager
def redis() -> Iterator[str]:
    url = os.environ.get("BENCH_REDIS_URL")
    if url:
        yield url
        return
    from server.embedded import EmbeddedRedis

    tmp = Path(tempfile.mkdtemp(prefix="tph-bench-redis-"))
    rd = EmbeddedRedis(tmp / "redis", persist=False)
    try:
        yield rd.start()
    finally:
        rd.stop()
        shutil.rmtree(tmp, ignore_errors=True)
