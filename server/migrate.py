"""Forward-only SQL migrations, applied in file-name order under an advisory lock.

Each file in ``server/migrations/`` runs in its own transaction and is recorded in
``schema_migrations`` with the SHA-256 of its text. A file whose text changed after it was applied
is refused: fix forward with a new file instead.

Given the application role, :func:`migrate` then grants it what the ``app_grants`` table says
(migration 0003): re-applied after every run, so the tables a new migration creates are granted
too, with no grant statement in the migration itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x74616E70  # "tanp"


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = [
        Migration(version=p.stem, path=p, sql=p.read_text(encoding="utf-8"))
        for p in sorted(directory.glob("*.sql"))
    ]
    versions = [m.version.split("_", 1)[0] for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number in {directory}")
    return found


async def migrate(
    conn: Any, directory: Path = MIGRATIONS_DIR, *, app_role: str | None = None
) -> list[str]:
    """Apply pending migrations, then (``app_role`` given) the application role's grants;
    return the versions applied now. ``conn`` is the owner's connection."""
    migrations = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    text PRIMARY KEY,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        applied = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        known = {m.version for m in migrations}
        for version in applied:
            if version not in known:
                raise MigrationError(
                    f"migration {version} is recorded as applied but its file is missing"
                )
        done: list[str] = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version} was changed after it was applied "
                        f"(recorded checksum {applied[m.version][:12]}, file {m.checksum[:12]}); "
                        "migrations are forward-only: restore the file and add a new one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    m.version,
                    m.checksum,
                )
            done.append(m.version)
        if app_role is not None:
            await grant_application_role(conn, app_role)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


# Every table not listed in app_grants. Never TRUNCATE, REFERENCES or TRIGGER.
DEFAULT_APP_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


class RoleFacts(msgspec.Struct, frozen=True):
    name: str
    superuser: bool
    member_of_owner: bool  # inherits the owner's rights: least privilege would be void


async def role_facts(conn: Any, role: str) -> RoleFacts | None:
    """What the owner's connection ``conn`` knows of ``role`` (None: no such role)."""
    r = await conn.fetchrow(
        "SELECT rolsuper, NOT rolsuper AND pg_has_role(oid, (SELECT oid FROM pg_roles "
        "WHERE rolname = current_user), 'USAGE') AS member FROM pg_roles WHERE rolname = $1",
        role,
    )
    return None if r is None else RoleFacts(role, r["rolsuper"], r["member"])


async def grant_application_role(conn: Any, role: str) -> None:
    """Make ``role``'s privileges on the public schema exactly what ``app_grants`` says (every
    privilege revoked first, so a grant removed from the table is removed from the role)."""
    owner = await conn.fetchval("SELECT current_user")
    if role == owner:
        raise MigrationError(
            f"the application role {role!r} is the owner: migrations need the owner's URL "
            "(TANPUHUI_DATABASE_OWNER_URL) and the application another role (DATABASE_URL)"
        )
    facts = await role_facts(conn, role)
    if facts is None:
        raise MigrationError(f"no role {role!r} to grant to")
    if facts.member_of_owner:
        raise MigrationError(
            f"role {role!r} is a member of the owner {owner!r}: it would inherit the right to "
            "alter the ledger; revoke that membership"
        )
    listed: dict[str, str] = {}
    if await conn.fetchval("SELECT to_regclass('public.app_grants')") is not None:
        listed = {
            r["table_name"]: r["privileges"]
            for r in await conn.fetch("SELECT table_name, privileges FROM app_grants")
        }
    tables = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') ORDER BY 1"
    )
    grantee = _ident(role)
    statements = [
        f"REVOKE ALL ON SCHEMA public FROM {grantee}",
        f"GRANT USAGE ON SCHEMA public TO {grantee}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {grantee}",
    ]
    for t in tables:
        name = f"public.{_ident(t['relname'])}"
        privileges = listed.get(t["relname"], DEFAULT_APP_PRIVILEGES)
        statements.append(f"REVOKE ALL ON TABLE {name} FROM {grantee}")
        statements.append(f"GRANT {privileges} ON TABLE {name} TO {grantee}")
    async with conn.transaction():
        for statement in statements:
            await conn.execute(statement)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
