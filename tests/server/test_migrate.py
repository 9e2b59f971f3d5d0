import asyncpg
import pytest

from server.migrate import MigrationError, migrate


async def _fresh_db(stores, name):
    db_url, _ = stores
    admin = await asyncpg.connect(db_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return db_url.replace(db_url.split("?")[0].rsplit("/", 1)[1], name, 1)


async def test_applied_migration_whose_file_changed_is_refused(stores, tmp_path):
    url = await _fresh_db(stores, "tph_migrate_probe")
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "0002_b.sql").write_text("CREATE TABLE b (x int);")
    conn = await asyncpg.connect(url)
    try:
        assert await migrate(conn, tmp_path) == ["0001_a", "0002_b"]
        assert await migrate(conn, tmp_path) == []
        (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x bigint);")
        with pytest.raises(MigrationError, match="0001_a was changed after it was applied"):
            await migrate(conn, tmp_path)
        (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x int);")
        (tmp_path / "0003_c.sql").write_text("CREATE TABLE c (x int); SELECT nonsense;")
        with pytest.raises(asyncpg.PostgresError):
            await migrate(conn, tmp_path)
        # The failed file left nothing behind: no table, no record.
        assert await conn.fetchval("SELECT to_regclass('c')") is None
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        assert [r["version"] for r in versions] == ["0001_a", "0002_b"]
    finally:
        await conn.close()
        admin = await asyncpg.connect(stores[0])
        await admin.execute('DROP DATABASE "tph_migrate_probe" WITH (FORCE)')
        await admin.close()


async def test_the_project_migrations_are_applied_and_recorded(pool):
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    assert rows
    assert all(len(r["checksum"]) == 64 for r in rows)
