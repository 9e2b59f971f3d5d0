"""The `tanpuhui` command: dev, serve, migrate, worker, beat, audit, settings, import-districts,
import-gtfs, project, liability, load-synthetic-district."""

from __future__ import annotations

import argparse
import asyncio
import csv
import fcntl
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import uvicorn

from behaviours.service import (
    district_count,
    districts_note,
    import_gtfs,
    seal_clear_secrets,
)
from enterprises import users as enterprise_users
from integrations.districts import GeoJsonError, read_districts_file
from integrations.gtfs import UNITS, GtfsError, GtfsFeed, Report
from kit.db import connect, transaction_on
from kit.errors import DomainError
from kit.logs import configure_logging
from points import witness
from points.audit import run_audit_cli
from reporting import admin, audit
from rewards import service as rewards
from rewards.donation_schemas import Project, ProjectInput
from rewards.liability import liability as liability_view
from rewards.liability import table as liability_table
from rewards.schemas import ItemSpec, MerchantRegistration
from server import admin_cli, offsets_cli, reporting_cli
from server.demo import add_arguments as demo_arguments
from server.demo import cmd_demo
from server.embedded import (
    EmbeddedError,
    EmbeddedPostgres,
    EmbeddedRedis,
    attached_postgres,
    default_dirs,
)
from server.migrate import MigrationError, migrate, role_facts
from server.seeds import apply_seeds
from server.settings import (
    PrivacySettings,
    Settings,
    SettingsError,
    describe,
    env_name,
    markdown_table,
)
from server.worker import broker_url, create_celery, mask_url


def _fail(message: str, status: int = 2, *, prog: str = "tanpuhui") -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return status


def _require_urls(settings: Settings, command: str) -> None:
    if not settings.database.url:
        raise SettingsError("DATABASE_URL", f"required by `tanpuhui {command}`{_DEV_HINT}")
    if not settings.redis.url:
        raise SettingsError("REDIS_URL", f"required by `tanpuhui {command}`{_DEV_HINT}")


# serve, worker and beat run against given stores; `tanpuhui dev` starts the embedded ones.
_DEV_HINT = " (`tanpuhui dev` / `make run` start the embedded stores and all three processes)"


async def _migrate(
    owner_url: str, app_url: str | None = None, *, settings: Settings | None = None
) -> list[str]:
    """Migrate as the owner; grant the application role (``app_url``'s) exactly its privileges
    (server/migrate.py); seed; encrypt operator secrets still stored in clear. Without a
    distinct application role least privilege is off: a warning, refused in prod."""

    prod = settings is not None and settings.env == "prod"
    app_role: str | None = None
    if app_url is not None and app_url != owner_url:
        conn = await connect(app_url)
        try:
            app_role = await conn.fetchval("SELECT current_user")
        finally:
            await conn.close()
    conn = await connect(owner_url)
    try:
        owner = await conn.fetchval("SELECT current_user")
        facts = await role_facts(conn, app_role) if app_role and app_role != owner else None
        off = (
            "the application connects as the owner of the schema"
            if facts is None
            else "the application role is a superuser"
            if facts.superuser
            else None
        )
        if off:
            hint = (
                "set TANPUHUI_DATABASE_OWNER_URL to the owner and DATABASE_URL to a role of the "
                "application's own (docs/ledger.md, 'Who may write the ledger')"
            )
            if prod:
                raise MigrationError(f"least privilege is required in prod: {off}; {hint}")
            print(f"tanpuhui: warning: least privilege is off: {off}; {hint}", file=sys.stderr)
        done = await migrate(conn, app_role=app_role if facts else None)
        await apply_seeds(conn, settings.region_code if settings else None)
        async with transaction_on(conn) as tx:
            await seal_clear_secrets(tx, settings.privacy if settings else PrivacySettings())
        return done
    finally:
        await conn.close()


async def _districts_note(url: str) -> str:
    """What the programme's districts allow (none imported: trips with coordinates are refused)."""

    conn = await connect(url)
    try:
        return districts_note(await district_count(conn))
    finally:
        await conn.close()


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:

    _require_urls_db(settings, "migrate")
    assert settings.database.url
    owner_url = settings.database.owner_url or settings.database.url
    try:
        done = asyncio.run(_migrate(owner_url, settings.database.url, settings=settings))
    except MigrationError as exc:
        return _fail(f"migration refused: {exc}", 1)
    print(f"migrations applied: {', '.join(done) if done else 'none (up to date)'}")
    return 0


def _require_urls_db(settings: Settings, command: str) -> None:
    if not settings.database.url:
        raise SettingsError("DATABASE_URL", f"required by `tanpuhui {command}`")


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:

    _require_urls(settings, "worker")
    configure_logging(settings.log.level)
    app = create_celery(settings)
    app.worker_main(
        [
            "worker",
            "--loglevel",
            settings.log.level,
            "--concurrency",
            str(args.concurrency),
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def cmd_beat(settings: Settings, _: argparse.Namespace) -> int:

    _require_urls(settings, "beat")
    app = create_celery(settings)
    schedule = os.path.join(settings.embedded.data_dir, "celerybeat-schedule")
    os.makedirs(settings.embedded.data_dir, exist_ok=True)
    app.start(["beat", "--loglevel", settings.log.level, "--schedule", schedule])
    return 0


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's configuration for `serve` (and so `dev`): a bounded request head with the fast
    parser (server/http_limits.py), and `X-Forwarded-*` believed only from the configured
    proxies (none by default: the client address is the socket's peer)."""
    proxies = [p.strip() for p in (settings.http.trusted_proxies or "").split(",") if p.strip()]
    for proxy in proxies:
        try:
            if proxy != "*":
                ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise SettingsError(
                "TANPUHUI_HTTP_TRUSTED_PROXIES", f"{proxy!r} is not an IP address or network"
            ) from None
    return {
        "factory": True,
        "host": settings.http.host,
        "port": settings.http.port,
        "workers": settings.http.workers,
        "log_config": None,
        "access_log": False,
        "http": "server.http_limits:BoundedHttpToolsProtocol",
        "h11_max_incomplete_event_size": settings.http.max_header_bytes,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies,
    }


def cmd_serve(settings: Settings, _: argparse.Namespace) -> int:

    _require_urls(settings, "serve")
    broker_url(settings)  # refuse before starting: the API sends tasks only to its own broker
    uvicorn.run("server.app:create_app_from_env", **uvicorn_options(settings))
    return 0


def _setting_rows(settings: Settings) -> list[tuple[str, str, str, str]]:
    """(variable, value in effect, where it comes from, meaning) for every setting; secrets are
    masked, and so is the password of any URL."""

    values: dict[str, tuple[str, Any]] = {}
    for name in settings.__struct_fields__:
        value = getattr(settings, name)
        if isinstance(value, msgspec.Struct):
            for field in value.__struct_fields__:
                values[env_name(name, field)] = (field, getattr(value, field))
        else:
            values[env_name(None, name)] = (name, value)
    rows = []
    for variable, _, meaning in describe():
        field, value = values[variable]
        if value is None:
            shown = "(unset)"
        elif any(word in field for word in _SECRET_WORDS):
            shown = "***"
        else:
            shown = mask_url(str(value)) if "://" in str(value) else str(value)
        source = "environment" if os.environ.get(variable) else "default"
        rows.append((variable, shown, source, meaning))
    return rows


# A setting whose field name holds one of these is a secret: `tanpuhui settings` never shows it.
_SECRET_WORDS = ("secret", "key", "token", "password")


def cmd_settings(settings: Settings, args: argparse.Namespace) -> int:
    if args.defaults:
        print(markdown_table(), end="")
        return 0
    print("| variable | value | from | meaning |\n|---|---|---|---|")
    for variable, value, source, meaning in _setting_rows(settings):
        print(f"| `{variable}` | `{value}` | {source} | {meaning} |")
    return 0


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    """Verify the journal's hash chain and re-derive every balance; with --witness FILE, also
    that the journal extends every checkpoint kept in FILE, then add a signed checkpoint of the
    audited head to it (docs/ledger.md, "The witness"). Exit status 1 on any problem."""

    _require_urls_db(settings, "audit")
    assert settings.database.url
    path = Path(args.witness) if args.witness else None
    status: int = asyncio.run(
        run_audit_cli(
            settings.database.url,
            path,
            key=witness.settings_key(settings) if path else None,
            origin=witness.origin_of(settings.region_code),
        )
    )
    return status


async def _store_districts(url: str, raw: bytes) -> None:
    conn = await connect(url)
    try:
        async with transaction_on(conn) as tx:
            await admin.import_districts(tx, raw, actor=audit.cli_actor())  # audited
    finally:
        await conn.close()


def cmd_import_districts(settings: Settings, args: argparse.Namespace) -> int:
    """Import district boundaries from a GeoJSON FeatureCollection into DATABASE_URL (unset:
    the embedded PostgreSQL of TANPUHUI_EMBEDDED_DATA_DIR, as `make run` uses it). A district
    already there (same code) is replaced; prints each district imported."""

    assert settings.database.url
    prog = "tanpuhui import-districts"
    try:
        rows = read_districts_file(args.file)  # the checks and messages of this command
        asyncio.run(_store_districts(settings.database.url, Path(args.file).read_bytes()))
    except (GeoJsonError, ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(f"{prog}: {args.file}: not usable GeoJSON districts: {exc}\n")
        return 1
    for code, name, parent, _ in rows:
        sys.stdout.write(f"  {code} {name}" + (f" (in {parent})" if parent else "") + "\n")
    sys.stdout.write(f"{len(rows)} districts imported (inserted or replaced): {args.file}\n")
    return 0


async def _store_gtfs(url: str, feed_id: str, feed: GtfsFeed, unit: str | None) -> Report:
    conn = await connect(url)
    try:
        async with transaction_on(conn) as tx:
            report = await import_gtfs(
                tx,
                feed_id,
                feed.stops(),
                feed.shapes(),
                feed.trips(),
                feed.stop_times(),
                distance_unit=unit,
                report=feed.report,
            )
            await admin.record_gtfs_import(tx, feed_id, report, actor=audit.cli_actor())
            return report
    finally:
        await conn.close()


def cmd_import_gtfs(settings: Settings, args: argparse.Namespace) -> int:
    """Import a GTFS static feed (stops, shapes, trips, stop_times) into DATABASE_URL (unset:
    the embedded PostgreSQL of TANPUHUI_EMBEDDED_DATA_DIR, as `make run` uses it), replacing
    the feed of the same id whole, in one transaction. The feed is streamed (bounded memory for
    any number of stop_times) and validated: required files and columns, unknown stop, trip or
    shape references, repeated ids are errors naming file and line (nothing is imported, exit
    status 1); trips with fewer than 2 stop times, stops more than 100 m from their trip's
    shape, shape_dist_traveled that disagrees with the shape are warnings (imported, reported).
    Every trip's stops are located along its shape in stop order; shape_dist_traveled is used
    when consistent with the shape, in the unit given by --distance-unit or inferred from the
    shapes' lengths. Prints the report (docs/behaviours.md, "GTFS feeds")."""

    assert settings.database.url
    prog = "tanpuhui import-gtfs"
    if not args.path.exists():
        sys.stderr.write(f"{prog}: {args.path}: no such file or directory\n")
        return 1
    try:
        feed = GtfsFeed(args.path)
    except (OSError, zipfile.BadZipFile) as exc:
        sys.stderr.write(f"{prog}: {args.path}: not a usable GTFS feed: {exc}\n")
        return 1
    try:
        feed.check_files()
        if not feed.report.ok:
            raise GtfsError(feed.report)
        report = asyncio.run(
            _store_gtfs(settings.database.url, args.feed, feed, args.distance_unit)
        )
    except GtfsError as exc:
        sys.stderr.write(f"{prog}: {args.path}: GTFS feed refused, nothing imported\n")
        sys.stderr.write(exc.report.format() + "\n")
        return 1
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, csv.Error) as exc:
        sys.stderr.write(f"{prog}: {args.path}: not a usable GTFS feed: {exc}\n")
        return 1
    finally:
        feed.close()
    c = report.counts
    sys.stdout.write(
        f"GTFS feed {args.feed!r} replaced from {args.path}: {c.get('stops', 0)} stops, "
        f"{c.get('shapes', 0)} shapes, {c.get('trips', 0)} trips, "
        f"{c.get('stop_times', 0)} stop times\n"
    )
    sys.stdout.write(report.format() + "\n")
    return 0


def _preflight(settings: Settings, lock_path: Path) -> Any:
    """Refuse (DevRefused, before anything is started) a `tanpuhui dev` that could not run: the
    API's port taken, or this data directory's stores in use by another run. Returns the lock
    file held for the run's lifetime."""

    pg_dir, redis_dir = default_dirs(settings.embedded.data_dir)
    host, port = settings.http.host, settings.http.port
    if not _port_free(host, port):
        raise DevRefused(
            f"port {port} on {host} is already in use; stop what listens there or choose "
            "another with TANPUHUI_HTTP_PORT"
        )
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(lock_path, "a+")  # noqa: SIM115 (held open until the run ends)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        other = lock.read().strip() or "?"
        lock.close()
        raise DevRefused(
            f"another `tanpuhui dev` (pid {other}) is running on {settings.embedded.data_dir}; "
            "stop it first (Ctrl-C in its terminal)"
        ) from None
    try:
        if not settings.redis.url and EmbeddedRedis(redis_dir).answering():
            raise DevRefused(
                f"an embedded Redis already runs on {redis_dir / 'redis.sock'} (left by an "
                "earlier run?); stop that process first"
            )
        if not settings.database.url:
            users = EmbeddedPostgres(pg_dir).users()
            if users:
                raise DevRefused(
                    f"the embedded PostgreSQL in {pg_dir} is in use by pid "
                    f"{', '.join(map(str, users))}; stop that process first"
                )
    except BaseException:
        lock.close()
        raise
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


class DevRefused(Exception):
    pass


def _port_free(host: str, port: int) -> bool:

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return True  # uvicorn will say what is wrong with the host
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            try:
                sock.bind(address)
            except OSError:
                return False
    return True


def _port_answers(host: str, port: int) -> bool:

    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    """Embedded stores when no URLs are set, migrations, then API + worker + beat as children.

    Supervised: when any child (the API, the worker, beat, the embedded Redis or PostgreSQL)
    dies, it says which and stops everything, with exit status 1."""

    started = time.monotonic()
    pg_dir, redis_dir = default_dirs(settings.embedded.data_dir)
    # The children's broker, checked before anything starts (as `serve` will check it).
    broker_url(settings.with_urls(None, settings.redis.url or EmbeddedRedis(redis_dir).url))
    try:
        lock = _preflight(settings, pg_dir.parent / "dev.lock")
    except DevRefused as exc:
        return _fail(f"dev: {exc}", 1)
    pg = EmbeddedPostgres(pg_dir) if not settings.database.url else None
    rd = EmbeddedRedis(redis_dir) if not settings.redis.url else None
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False
    died: str | None = None

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    def dead() -> str | None:
        for name, child in children.items():
            if child.poll() is not None:
                return f"{name} exited with status {child.returncode}"
        if rd is not None and not rd.alive():
            return f"the embedded Redis exited with status {rd.returncode}"
        if pg is not None and not pg.alive():
            return "the embedded PostgreSQL stopped"
        return None

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        db_url: str | None
        owner_url: str | None
        if pg:
            roles = pg.start_with_roles()
            db_url, owner_url = roles.app_url, roles.owner_url
        else:
            db_url = settings.database.url
            owner_url = settings.database.owner_url or db_url
        redis_url = rd.start() if rd else settings.redis.url
        assert db_url and owner_url and redis_url
        done = asyncio.run(_migrate(owner_url, db_url, settings=settings))
        print(f"tanpuhui dev: migrations applied: {', '.join(done) or 'none (up to date)'}")
        print(f"tanpuhui dev: districts: {asyncio.run(_districts_note(db_url))}")
        env = {
            **{k: v for k, v in os.environ.items() if k != env_name("database", "owner_url")},
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_HTTP_WORKERS": "1",
        }
        py = sys.executable
        commands = {
            "the API": [py, "-m", "server.cli", "serve"],
            "the worker": [py, "-m", "server.cli", "worker", "--concurrency", "2"],
            "beat": [py, "-m", "server.cli", "beat"],
        }
        for name, argv in commands.items():
            children[name] = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True
            )
        # The banner only once the API answers: a start that fails says so instead.
        while not stopping and not _port_answers(settings.http.host, settings.http.port):
            died = dead()
            if died:
                break
            time.sleep(0.1)
        if not stopping and not died:
            base = f"http://{settings.http.host}:{settings.http.port}"
            print(
                f"tanpuhui dev: API {base}  (readiness {base}/readyz, OpenAPI {base}/schema)\n"
                f"tanpuhui dev: PostgreSQL {db_url}\n"
                f"tanpuhui dev: Redis {redis_url}\n"
                f"tanpuhui dev: started in {time.monotonic() - started:.1f} s; "
                "Ctrl-C stops everything",
                flush=True,
            )
        while not stopping and not died:
            died = dead()
            time.sleep(0.2)
        if died:
            print(f"tanpuhui dev: {died}; stopping everything", file=sys.stderr, flush=True)
        return 1 if died else 0
    finally:
        for child in children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if rd:
            rd.stop()
        if pg:
            pg.stop()
        lock.close()
        print("tanpuhui dev: stopped", file=sys.stderr)


async def _register_project(url: str, project: ProjectInput) -> Project:
    conn = await connect(url)
    try:
        async with transaction_on(conn) as tx:
            return await admin.approve_project(tx, project, actor=audit.cli_actor())
    finally:
        await conn.close()


def cmd_project(settings: Settings, args: argparse.Namespace) -> int:
    """Register a public-welfare project (`tanpuhui project register --title ...`): residents
    may then donate points or retire grams to it during its period; prints the project (JSON)."""

    assert settings.database.url
    prog = "tanpuhui project register"
    try:
        project = msgspec.convert(
            {
                "title": args.title,
                "beneficiary": args.beneficiary,
                "target_asset": args.target_asset,
                "target_amount": args.target,
                "starts_at": args.starts,
                "ends_at": args.ends,
                "description": args.description,
            },
            ProjectInput,
            strict=False,
        )
        done = asyncio.run(_register_project(settings.database.url, project))
    except (msgspec.ValidationError, DomainError) as exc:
        return _fail(str(exc), 1, prog=prog)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(done), indent=2).decode() + "\n")
    return 0


async def _merchant(settings: Settings, args: argparse.Namespace) -> Any:
    assert settings.database.url
    cfg = rewards.config_of(settings)
    actor = audit.cli_actor()  # every action below is written to the audit log
    conn = await connect(settings.database.url)
    try:
        async with transaction_on(conn) as tx:
            if args.action == "register":
                registration = msgspec.convert(
                    {
                        "id": args.id,
                        "name": args.name,
                        "settlement_contact": args.contact,
                        "webhook_url": args.webhook_url,
                    },
                    MerchantRegistration,
                )
                return await admin.approve_merchant(tx, cfg, registration, actor=actor)
            if args.action == "issue-key":
                return await admin.issue_merchant_key(tx, cfg, args.id, args.key_id, actor=actor)
            if args.action == "add-item":
                spec = msgspec.json.decode(Path(args.file).read_bytes(), type=ItemSpec)
                return await admin.add_merchant_item(tx, spec, actor=actor)
            raw = Path(args.file).read_bytes()
            return await admin.import_merchant_codes(tx, cfg, args.item, raw, actor=actor)
    finally:
        await conn.close()


def cmd_merchant(settings: Settings, args: argparse.Namespace) -> int:
    """Merchants that honour rewards (a programme administrator's commands): `register` one
    (its ledger account opened; a webhook secret printed once when --webhook-url is given),
    `issue-key` (a signing key for the merchant API, its secret printed once), `add-item` (a
    catalogue item from a JSON file), `import-codes` (a coupon item's codes from a CSV file,
    all or none). Prints JSON."""

    prog = f"tanpuhui merchant {args.action}"
    missing = {
        "register": ("id", "name", "contact"),
        "issue-key": ("id", "key_id"),
        "add-item": ("file",),
        "import-codes": ("item", "file"),
    }[args.action]
    for name in missing:
        if not getattr(args, name):
            return _fail(f"--{name.replace('_', '-')} is required", 2, prog=prog)
    try:
        done = asyncio.run(_merchant(settings, args))
    except (msgspec.ValidationError, msgspec.DecodeError, DomainError, OSError) as exc:
        errors = getattr(exc, "errors", None) or []
        detail = "; ".join(f"{e.path}: {e.message}" for e in errors)
        return _fail(f"{exc}" + (f" ({detail})" if detail else ""), 1, prog=prog)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(done), indent=2).decode() + "\n")
    return 0


async def _liability(url: str, unit: Any, timezone: str, until: Any) -> Any:
    conn = await connect(url)
    try:
        return await liability_view(conn, unit=unit, timezone=timezone, until=until)
    finally:
        await conn.close()


def cmd_liability(settings: Settings, args: argparse.Namespace) -> int:
    """The programme's points liability per period (issued, redeemed, refunded, expired,
    donated, outstanding and on hold at each period's end, grams issued and retired, points per
    kg CO2e), from one read of the ledger; --json for the report's data."""

    assert settings.database.url
    until = None
    if args.until:
        try:
            until = msgspec.convert(args.until, datetime, strict=False)
        except msgspec.ValidationError as exc:
            return _fail(f"--until: {exc}", 1, prog="tanpuhui liability")
    view = asyncio.run(_liability(settings.database.url, args.period, settings.timezone, until))
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(view), indent=2).decode() + "\n")
    else:
        sys.stdout.write(liability_table(view))
    return 0


async def _add_enterprise_admin(url: str, args: argparse.Namespace, password: str) -> Any:
    conn = await connect(url)
    try:
        async with transaction_on(conn) as tx:
            user = await enterprise_users.add_first_admin(
                tx, args.credit_code, login=args.login, display_name=args.name, password=password
            )
            await audit.record(
                tx,
                actor=audit.cli_actor(),
                action="enterprise.admin.add",
                target=args.credit_code,
                after=user,
            )
            return user
    finally:
        await conn.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def cmd_enterprise(settings: Settings, args: argparse.Namespace) -> int:
    """Enterprise accounts: `tanpuhui enterprise add-admin CREDIT_CODE LOGIN --name NAME` creates
    the first administrator of a registered enterprise (the programme's way in; administrators
    then add their own users through the enterprise API). The password is asked twice, or read
    from the first line of stdin with --password-stdin; prints the user (JSON, no password)."""

    assert settings.database.url
    prog = "tanpuhui enterprise add-admin"
    try:
        password = _read_password(args.password_stdin)
        user = asyncio.run(_add_enterprise_admin(settings.database.url, args, password))
    except DomainError as exc:
        fields = "; ".join(f"{e.path}: {e.message}" for e in exc.errors or [])
        return _fail(f"{exc.detail}{' ' + fields if fields else ''}", 1, prog=prog)
    except (ValueError, EOFError) as exc:
        return _fail(str(exc) or "no password given", 1, prog=prog)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(user), indent=2).decode() + "\n")
    return 0


async def _load_synthetic(url: str, settings: Settings, args: argparse.Namespace) -> Any:
    from zoneinfo import ZoneInfo

    from enterprises import synthetic

    def progress(n: int, total: int, readings: int) -> None:
        if n % 25 == 0 or n == total:
            sys.stderr.write(f"  {n}/{total} enterprises, {readings} readings\n")

    conn = await connect(url)
    try:
        return await synthetic.load(
            conn,
            seed=args.seed,
            enterprises=args.enterprises,
            days=args.days,
            year=args.year,
            zone=ZoneInfo(settings.timezone),
            privacy=settings.privacy,
            region_code=settings.region_code,
            progress=progress,
            with_pollutants=args.pollutants,
        )
    finally:
        await conn.close()


def cmd_load_synthetic_district(settings: Settings, args: argparse.Namespace) -> int:
    """Load a synthetic industrial district into DATABASE_URL (unset: the embedded PostgreSQL
    of TANPUHUI_EMBEDDED_DATA_DIR, as `make run` uses it; migrate first): enterprises over a
    dozen industries in the programme's districts (the test districts are imported when there
    are none), each with a 15-minute electricity meter and its readings, and monthly reports of
    fuels, output, added value and tax. Deterministic by --seed; loading it again changes
    nothing but adds a signing key for the synthetic utility. Prints what was loaded and the
    key (docs/enterprises.md, "A synthetic district")."""

    assert settings.database.url
    if args.enterprises < 1 or not 1 <= args.days <= 366:
        return _fail(
            "--enterprises must be >= 1 and --days 1 to 366",
            prog="tanpuhui load-synthetic-district",
        )
    loaded = asyncio.run(_load_synthetic(settings.database.url, settings, args))
    sys.stdout.write(
        f"synthetic district (seed {args.seed}, {args.year}): {loaded.enterprises} enterprises, "
        f"{loaded.readings} readings ({loaded.flagged} flagged), {loaded.reports} reports\n"
        f"pusher synthetic-grid, key {loaded.key_id}: {loaded.secret}\n"
    )
    return 0


COMMANDS = {
    "dev": (cmd_dev, "embedded stores if needed + migrate + API + worker + beat"),
    "serve": (cmd_serve, "production API: several worker processes; needs the URLs"),
    "migrate": (cmd_migrate, "apply pending migrations and seed reference data"),
    "worker": (cmd_worker, "a Celery worker"),
    "beat": (cmd_beat, "the Celery beat scheduler (periodic tasks)"),
    "audit": (cmd_audit, "verify the journal's hash chain and re-derive every balance"),
    "settings": (cmd_settings, "print the settings in effect (secrets masked) as a table"),
    "import-districts": (cmd_import_districts, "import district boundaries from GeoJSON"),
    "import-gtfs": (cmd_import_gtfs, "import (replace) a GTFS static feed"),
    "project": (cmd_project, "register a public-welfare project (donations, retirements)"),
    "liability": (cmd_liability, "the programme's points liability per period"),
    "merchant": (cmd_merchant, "merchants: register, issue-key, add-item, import-codes"),
    "enterprise": (cmd_enterprise, "enterprise accounts: add an enterprise's first admin"),
    "demo": (cmd_demo, "load the demo city: districts, GTFS, trips, rewards, enterprises"),
    "load-synthetic-district": (
        cmd_load_synthetic_district,
        "load a synthetic industrial district (enterprises, meters, a year of data)",
    ),
    "admin": (admin_cli.cmd_admin, "administer the programme (gov users, operators, keys, ...)"),
    "reporting": (reporting_cli.cmd_reporting, "refresh or reconcile the reports' rollups"),
    "offsets": (offsets_cli.cmd_offsets, "pooled reductions: issue a serial block, list blocks"),
}

# Commands that need only PostgreSQL: without DATABASE_URL they use the embedded one of
# TANPUHUI_EMBEDDED_DATA_DIR (attached when `make run` runs, started for the command otherwise).
_EMBEDDED_DB: dict[str, bool] = {  # command: may create it
    "migrate": True,
    "audit": False,
    "import-districts": False,
    "import-gtfs": False,
    "project": False,
    "liability": False,
    "merchant": False,
    "enterprise": False,
    "load-synthetic-district": False,
    "admin": False,
    "reporting": False,
    "offsets": False,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tanpuhui", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (function, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=function.__doc__ or help_text)
        if name == "worker":
            p.add_argument("--concurrency", type=int, default=2)
        if name == "audit":
            p.add_argument(
                "--witness",
                metavar="FILE",
                help="keep signed checkpoints in FILE; fail if the journal no longer extends them",
            )
        if name == "import-districts":
            p.add_argument("file", type=Path, help="the .geojson file")
        if name == "import-gtfs":
            p.add_argument("feed", help="the feed's id, e.g. shenzhen-metro")
            p.add_argument("path", type=Path, help="the GTFS directory or .zip")
            p.add_argument(
                "--distance-unit",
                choices=sorted(UNITS),
                help="the unit of shape_dist_traveled (default: inferred from the shapes' "
                "lengths; ignored when it cannot be)",
            )
        if name == "project":
            p.add_argument("action", choices=["register"])
            p.add_argument("--title", required=True)
            p.add_argument("--beneficiary", required=True)
            p.add_argument("--target-asset", choices=["POINT", "CO2E_G"], required=True)
            p.add_argument("--target", type=int, required=True, help="points, or grams")
            p.add_argument("--starts", required=True, help="ISO 8601 with offset")
            p.add_argument("--ends", required=True, help="ISO 8601 with offset")
            p.add_argument("--description", default="")
        if name == "merchant":
            p.add_argument("action", choices=["register", "issue-key", "add-item", "import-codes"])
            p.add_argument("--id", help="the merchant's id (a-z, 0-9, -)")
            p.add_argument("--name")
            p.add_argument("--contact", help="settlement contact")
            p.add_argument("--webhook-url")
            p.add_argument("--key-id")
            p.add_argument("--item", help="the coupon item's id (import-codes)")
            p.add_argument("--file", help="the item's JSON (add-item) or the codes' CSV")
        if name == "liability":
            p.add_argument("--period", choices=["month", "quarter", "year"], default="month")
            p.add_argument("--until", help="ISO 8601 with offset (default: now)")
            p.add_argument("--json", action="store_true", help="JSON instead of a table")
        if name == "enterprise":
            p.add_argument("action", choices=["add-admin"])
            p.add_argument("credit_code", help="the enterprise's unified social credit code")
            p.add_argument("login", help="the administrator's login (lower case)")
            p.add_argument("--name", required=True, help="the administrator's display name")
            p.add_argument(
                "--password-stdin", action="store_true", help="read the password from stdin"
            )
        if name == "load-synthetic-district":
            p.add_argument("--seed", type=int, default=7, help="the same seed, the same district")
            p.add_argument("--enterprises", type=int, default=300, help="how many (default 300)")
            p.add_argument("--year", type=int, default=2025, help="the data's calendar year")
            p.add_argument(
                "--days", type=int, default=365, help="days of 15-minute readings (default 365)"
            )
            p.add_argument(
                "--pollutants",
                action="store_true",
                help="each enterprise's monthly SO2, NOx, PM and VOCs too (docs/pollutants.md)",
            )
        if name == "demo":
            demo_arguments(p)
        if name == "admin":
            admin_cli.configure(p)
        if name == "reporting":
            reporting_cli.configure(p)
        if name == "offsets":
            offsets_cli.configure(p)
        if name == "settings":
            p.add_argument(
                "--defaults", action="store_true", help="the defaults instead (the README's table)"
            )
    args = parser.parse_args(argv)
    command = COMMANDS[args.command][0]
    if args.command in _EMBEDDED_DB:
        return with_database(
            lambda settings: command(settings, args), create=_EMBEDDED_DB[args.command]
        )
    try:
        return command(Settings.from_env(), args)
    except SettingsError as exc:
        return _fail(str(exc))


def with_database(
    run: Callable[[Settings], int], *, create: bool = False, prog: str = "tanpuhui"
) -> int:
    """``run(settings)`` for a command that needs only PostgreSQL (migrate, audit, the
    importers): ``DATABASE_URL``, or when it is unset the embedded PostgreSQL of
    TANPUHUI_EMBEDDED_DATA_DIR, as `tanpuhui dev` uses it (attached when it runs, started for the
    command otherwise; ``create`` lets a first command create it). Failures are one line on
    stderr: status 2 for a setting, 1 for anything else."""

    try:
        settings = Settings.from_env()
        if settings.database.url:
            return run(settings)
        with attached_postgres(settings.embedded.data_dir, create=create) as roles:
            return run(
                settings.with_urls(roles.app_url, settings.redis.url, owner_url=roles.owner_url)
            )
    except SettingsError as exc:
        return _fail(str(exc), prog=prog)
    except (EmbeddedError, OSError, asyncpg.PostgresError) as exc:
        return _fail(str(exc) or type(exc).__name__, 1, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
