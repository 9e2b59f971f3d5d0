"""Real PostgreSQL and Redis for every test run.

``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` point at running servers (a fresh database is created
on that server for the run and dropped after); without them an embedded PostgreSQL and Redis are
started in a temporary directory. Migrations run once per run; every test starts from empty
tables (reference data re-seeded) and an empty Redis database.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from points.audit import audit
from points.journal import seal
from server.app import create_app
from server.auth import JwtKeys
from server.db import create_pool, transaction_on
from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import migrate
from server.redis import create_redis
from server.seeds import apply_seeds
from server.settings import Settings

JWT_KEYS = "k2:test-secret-key-two-0123456789abcdef,k1:test-secret-key-one-0123456789abcdef"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def stores() -> Iterator[tuple[str, str]]:
    tmp = Path(tempfile.mkdtemp(prefix="tph-"))
    pg: EmbeddedPostgres | None = None
    rd: EmbeddedRedis | None = None
    base = os.environ.get("TEST_DATABASE_URL")
    dbname = f"tanpuhui_test_{secrets.token_hex(4)}"
    if base:
        admin = base
        db_url = _with_database(base, dbname)
    else:
        pg = EmbeddedPostgres(tmp / "pg", database="postgres")
        pg.start()
        admin = pg.admin_url()
        db_url = f"postgresql://postgres@/{dbname}?host={pg.data_dir}"
    redis_url = os.environ.get("TEST_REDIS_URL")
    if redis_url:
        parts = urlsplit(redis_url)
        if parts.path in ("", "/"):
            # A database of its own per run, so parallel runs on one server do not collide.
            redis_url = urlunsplit(parts._replace(path=f"/{os.getpid() % 15 + 1}"))
    else:
        rd = EmbeddedRedis(tmp / "redis", persist=False)
        redis_url = rd.start()

    import asyncio

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{dbname}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(db_url)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    try:
        yield db_url, redis_url
    finally:
        if base:
            asyncio.run(drop())
        if rd:
            rd.stop()
        if pg:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(stores: tuple[str, str]) -> Settings:
    db_url, redis_url = stores
    return Settings.from_env(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_ENV": "test",
            "TANPUHUI_AUTH_JWT_KEYS": JWT_KEYS,
            "TANPUHUI_DATABASE_POOL_MAX": "20",
        }
    )


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[Any]:
    assert settings.database.url
    p = await create_pool(settings.database.url, min_size=2, max_size=40)
    yield p
    await p.close()


@pytest.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[Any]:
    assert settings.redis.url
    r = create_redis(settings.redis.url)
    yield r
    await r.aclose()


@pytest.fixture
async def clean_stores(
    pool: Any, redis: Any, request: pytest.FixtureRequest
) -> AsyncIterator[None]:
    """Empty tables (reference data re-seeded) and an empty Redis database before the test;
    after it, the ledger audit (hash chain, re-derived balances, zero sums) must pass, unless the
    test tampers with the ledger on purpose (``@pytest.mark.tampers_ledger``)."""
    async with pool.acquire() as conn:
        tables = await conn.fetch(
            """
            SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name
            FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
            """
        )
        if tables:
            names = ", ".join(t["name"] for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        await apply_seeds(conn)
    await redis.flushdb()
    yield
    if request.node.get_closest_marker("tampers_ledger") is None:
        async with pool.acquire() as conn:
            async with transaction_on(conn) as tx:
                await seal(tx)
            report = await audit(conn)
        assert report.ok, f"ledger audit failed after the test: {report.problems}"


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    """Every test that touches the stores starts from clean ones."""
    if "stores" in request.fixturenames:
        request.getfixturevalue("clean_stores")


@pytest.fixture(scope="session")
def jwt_keys(settings: Settings) -> JwtKeys:
    return JwtKeys.from_settings(settings.auth)


@pytest.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as c:
        yield c
