import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from server.migrate import MigrationError, migrate


async def _fresh_db(databases, name):
    admin = await asyncpg.connect(databases.superuser_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(databases.superuser_url)._replace(path="/" + name))


async def test_applied_migration_whose_file_changed_is_refused(databases, tmp_path):
    name = f"tph_migrate_probe_{secrets.token_hex(4)}"  # parallel runs may share a server
    url = await _fresh_db(databases, name)
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
        admin = await asyncpg.connect(databases.superuser_url)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_the_project_migrations_are_applied_and_recorded(pool):
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    assert rows
    assert all(len(r["checksum"]) == 64 for r in rows)


async def test_grants_follow_app_grants_for_every_table_a_later_migration_adds(databases, tmp_path):
    """The grant step is generic: a table created by a later migration is granted the default
    (read and write rows; never TRUNCATE); a table listed in app_grants gets exactly that; the
    application role can never become the owner."""
    from server.embedded import provision, role_url
    from server.migrate import grant_application_role

    name = f"tph_grants_probe_{secrets.token_hex(4)}"
    owner, app = f"{name}_owner", f"{name}_app"
    await provision(databases.superuser_url, name, owner=owner, app=app, password="pw-probe")
    owner_url = role_url(databases.superuser_url, owner, "pw-probe", name)
    app_url = role_url(databases.superuser_url, app, "pw-probe", name)
    (tmp_path / "0001_grants.sql").write_text(
        "CREATE TABLE app_grants (table_name text PRIMARY KEY, privileges text NOT NULL);"
        "CREATE TABLE kept (x int); INSERT INTO app_grants VALUES ('kept', 'SELECT, INSERT');"
    )
    conn = await asyncpg.connect(owner_url)
    try:
        await migrate(conn, tmp_path, app_role=app)
        (tmp_path / "0002_later.sql").write_text("CREATE TABLE later (x int);")
        await migrate(conn, tmp_path, app_role=app)
        as_app = await asyncpg.connect(app_url)
        try:
            await as_app.execute("INSERT INTO later VALUES (1); UPDATE later SET x = 2")
            await as_app.execute("DELETE FROM later")
            await as_app.execute("INSERT INTO kept VALUES (1)")
            assert await as_app.fetchval("SELECT x FROM kept") == 1
            for sql in (
                "UPDATE kept SET x = 2",
                "DELETE FROM kept",
                "TRUNCATE later",
                "ALTER TABLE later ADD COLUMN y int",
                "CREATE TABLE mine (x int)",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await as_app.execute(sql)
            # A grant taken out of app_grants is taken from the role at the next run.
            await conn.execute(
                "UPDATE app_grants SET privileges = 'SELECT' WHERE table_name = 'kept'"
            )
            await migrate(conn, tmp_path, app_role=app)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await as_app.execute("INSERT INTO kept VALUES (1)")
        finally:
            await as_app.close()
        with pytest.raises(MigrationError, match="is the owner"):
            await grant_application_role(conn, owner)
    finally:
        await conn.close()
        admin = await asyncpg.connect(databases.superuser_url)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE "{app}", "{owner}"')
        await admin.close()


async def test_prod_refuses_to_migrate_without_a_role_of_the_applications_own(settings):
    import msgspec

    from server.cli import _migrate

    prod = msgspec.structs.replace(settings, env="prod")
    assert settings.database.owner_url
    with pytest.raises(MigrationError, match="least privilege is required in prod"):
        await _migrate(settings.database.owner_url, settings.database.owner_url, settings=prod)
    # With the two roles the same command is fine (nothing pending).
    assert await _migrate(settings.database.owner_url, settings.database.url, settings=prod) == []


async def test_app_grants_take_column_names_with_digits_and_nothing_that_ends_a_statement(
    owner_pool,
):
    with pytest.raises(_RollBack):
        await _probe_grants(owner_pool)


async def _probe_grants(owner_pool):
    async with owner_pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO app_grants VALUES ('probe_digits', 'SELECT, UPDATE (co2e_g, carry_g)')"
        )
        for hostile in ("SELECT; DROP TABLE ledger_accounts", "SELECT -- x", "SELECT, 'x'"):
            with pytest.raises(asyncpg.CheckViolationError):
                async with conn.transaction():
                    await conn.execute("INSERT INTO app_grants VALUES ('probe_bad', $1)", hostile)
        stored = await conn.fetchval(
            "SELECT privileges FROM app_grants WHERE table_name = 'probe_digits'"
        )
        assert stored == "SELECT, UPDATE (co2e_g, carry_g)"
        raise _RollBack  # leave app_grants as the migrations made it


class _RollBack(Exception):
    pass
