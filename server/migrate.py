"""Forward-only SQL migrations, applied in file-name order under an advisory lock.

Each file in ``server/migrations/`` runs in its own transaction and is recorded in
``schema_migrations`` with the SHA-256 of its text. A file whose text changed after it was applied
is refused: fix forward with a new file instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


async def migrate(conn: Any, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
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
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
