"""Real PostgreSQL and Redis for every test run.

``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` point at running servers (a fresh database is created
on that server for the run and dropped after); without them an embedded PostgreSQL and Redis are
started in a temporary directory. Migrations run once per run; every test starts from empty
tables (reference data re-seeded) and an empty Redis database.

Two roles per run, named after its database (roles are cluster-wide: parallel runs on one server
must not share them), as in production (docs/ledger.md, "Who may write the ledger"): the owner,
which migrates, empties the tables between tests and tampers on purpose, and the application
role, which is all the ``pool`` fixture, the app and the workers connect as, so the whole suite
proves that the grants suffice.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from behaviours import service as behaviours_service
from kit.auth import JwtKeys
from kit.db import create_pool, transaction_on
from kit.redis import create_redis
from points import engine as ledger_engine
from points.audit import audit
from points.journal import seal
from server.app import create_app
from server.embedded import EmbeddedPostgres, EmbeddedRedis, provision, role_url
from server.migrate import migrate
from server.seeds import apply_seeds
from server.settings import Settings
from tests.behaviours.factories import reset_now

JWT_KEYS = "k2:test-secret-key-two-0123456789abcdef,k1:test-secret-key-one-0123456789abcdef"
# Ed25519 private key of the journal's checkpoints in tests (public: base64 of 32 fixed bytes).
WITNESS_KEY = "dGVzdC1sZWRnZXItd2l0bmVzcy1rZXktMDEyMzQ1Njc="


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class Databases(NamedTuple):
    app_url: str  # the application role: DATABASE_URL
    owner_url: str  # the owner of the schema: TANPUHUI_DATABASE_OWNER_URL
    superuser_url: str  # the server's superuser, on the server's own database
    redis_url: str


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    tmp = Path(tempfile.mkdtemp(prefix="tph-"))
    pg: EmbeddedPostgres | None = None
    rd: EmbeddedRedis | None = None
    base = os.environ.get("TEST_DATABASE_URL")
    dbname = f"tanpuhui_test_{secrets.token_hex(4)}"
    if base:
        admin = base
    else:
        pg = EmbeddedPostgres(tmp / "pg", database="postgres")
        pg.start()
        admin = pg.admin_url()
    owner, app, password = f"{dbname}_owner", f"{dbname}_app", secrets.token_hex(16)
    owner_url = role_url(admin, owner, password, dbname)
    db_url = role_url(admin, app, password, dbname)
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
        await provision(admin, dbname, owner=owner, app=app, password=password)
        conn = await asyncpg.connect(owner_url)
        try:
            await migrate(conn, app_role=app)
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await conn.execute(f'DROP ROLE IF EXISTS "{app}", "{owner}"')
        finally:
            await conn.close()

    asyncio.run(create())
    try:
        yield Databases(db_url, owner_url, admin, redis_url)
    finally:
        if base:
            asyncio.run(drop())
        if rd:
            rd.stop()
        if pg:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def stores(databases: Databases) -> tuple[str, str]:
    """(the application's database URL, the Redis URL)."""
    return databases.app_url, databases.redis_url


@pytest.fixture(scope="session")
def settings(databases: Databases, stores: tuple[str, str]) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": databases.app_url,
            "TANPUHUI_DATABASE_OWNER_URL": databases.owner_url,
            "TANPUHUI_POINTS_WITNESS_KEY": WITNESS_KEY,
            "REDIS_URL": databases.redis_url,
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
async def owner_pool(databases: Databases) -> AsyncIterator[Any]:
    """The schema owner's connections: emptying tables, tampering on purpose."""
    p = await create_pool(databases.owner_url, min_size=1, max_size=4)
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
    pool: Any, owner_pool: Any, redis: Any, request: pytest.FixtureRequest
) -> AsyncIterator[None]:
    """Empty tables (reference data re-seeded) and an empty Redis database before the test;
    after it, the ledger audit (hash chain, re-derived balances, zero sums) must pass, unless the
    test tampers with the ledger on purpose (``@pytest.mark.tampers_ledger``)."""
    # Isolation truncates instead of wrapping each test in a transaction rolled back after it,
    # because most of what a test exercises opens its own transactions on its own connections:
    # the app (``client``) and the services take connections from the pool and commit; the
    # worker, ``tanpuhui`` commands and the subprocess servers of tests/server connect on
    # their own. None of that can join a test's outer transaction, and what they commit must
    # be visible to the test (and to the audit below), so the data is committed and emptied
    # afterwards. TRUNCATE, as the owner role: DELETE is refused on the ledger by its
    # immutability triggers, and the application role has no TRUNCATE (least privilege);
    # RESTART IDENTITY resets the identity sequences (transfer, block and account ids, the
    # residents' usage seq) so every test numbers from 1; CASCADE follows foreign keys.
    async with owner_pool.acquire() as conn:
        tables = await conn.fetch(
            """
            SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name
            FROM pg_tables
            WHERE schemaname = 'public' AND tablename NOT IN ('schema_migrations', 'app_grants')
            """
        )
        if tables:
            names = ", ".join(t["name"] for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        await apply_seeds(conn)
    await redis.flushdb()
    behaviours_service.forget_district_names()  # names cached by this process
    yield
    if request.node.get_closest_marker("tampers_ledger") is None:
        async with pool.acquire() as conn:
            async with transaction_on(conn) as tx:
                await seal(tx)
            report = await audit(conn)
        assert report.ok, f"ledger audit failed after the test: {report.problems}"


@pytest.fixture(autouse=True)
def _test_clock() -> None:
    """Every test starts with a fresh factory clock (tests/behaviours/factories.py ``now``)."""
    reset_now()


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


@pytest.fixture
def strict_lock_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger lock taken out of the global order fails the test (in production it is a
    warning): the deadlock it could cause would otherwise show up one run in twenty. Not for
    the whole suite yet: tests that compose several ledger calls in one transaction on random
    resident ids would fail or pass by the ids' order."""
    monkeypatch.setattr(ledger_engine, "LOCK_ORDER_STRICT", True)
