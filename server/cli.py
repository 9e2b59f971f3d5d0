"""The `tanpuhui` command: dev, serve, migrate, worker, beat, audit, settings."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from server.settings import Settings, SettingsError, markdown_table


def _fail(message: str, status: int = 2) -> int:
    print(f"tanpuhui: {message}", file=sys.stderr)
    return status


def _require_urls(settings: Settings, command: str) -> None:
    if not settings.database.url:
        raise SettingsError("DATABASE_URL", f"required by `tanpuhui {command}`")
    if not settings.redis.url:
        raise SettingsError("REDIS_URL", f"required by `tanpuhui {command}`")


async def _migrate(url: str) -> list[str]:
    from server.db import connect
    from server.migrate import migrate
    from server.seeds import apply_seeds

    conn = await connect(url)
    try:
        done = await migrate(conn)
        await apply_seeds(conn)
        return done
    finally:
        await conn.close()


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    from server.migrate import MigrationError

    _require_urls_db(settings, "migrate")
    assert settings.database.url
    try:
        done = asyncio.run(_migrate(settings.database.url))
    except MigrationError as exc:
        return _fail(f"migration refused: {exc}", 1)
    print(f"migrations applied: {', '.join(done) if done else 'none (up to date)'}")
    return 0


def _require_urls_db(settings: Settings, command: str) -> None:
    if not settings.database.url:
        raise SettingsError("DATABASE_URL", f"required by `tanpuhui {command}`")


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from server.logs import configure_logging
    from server.worker import TASK_MODULES, create_celery

    _require_urls(settings, "worker")
    configure_logging(settings.log.level)
    app = create_celery(settings)
    for module in TASK_MODULES:
        __import__(module)
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
    from server.worker import create_celery

    _require_urls(settings, "beat")
    app = create_celery(settings)
    schedule = os.path.join(settings.embedded.data_dir, "celerybeat-schedule")
    os.makedirs(settings.embedded.data_dir, exist_ok=True)
    app.start(["beat", "--loglevel", settings.log.level, "--schedule", schedule])
    return 0


def cmd_serve(settings: Settings, _: argparse.Namespace) -> int:
    import uvicorn

    _require_urls(settings, "serve")
    uvicorn.run(
        "server.app:create_app_from_env",
        factory=True,
        host=settings.http.host,
        port=settings.http.port,
        workers=settings.http.workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )
    return 0


def cmd_settings(_: Settings | None, __: argparse.Namespace) -> int:
    print(markdown_table(), end="")
    return 0


def cmd_audit(settings: Settings, _: argparse.Namespace) -> int:
    from points.audit import run_audit_cli  # type: ignore[import-not-found,unused-ignore]

    _require_urls_db(settings, "audit")
    assert settings.database.url
    status: int = asyncio.run(run_audit_cli(settings.database.url))
    return status


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    """Embedded stores when no URLs are set, migrations, then API + worker + beat as children."""
    from server.embedded import EmbeddedPostgres, EmbeddedRedis, default_dirs

    started = time.monotonic()
    pg_dir, redis_dir = default_dirs(settings.embedded.data_dir)
    pg = EmbeddedPostgres(pg_dir) if not settings.database.url else None
    rd = EmbeddedRedis(redis_dir) if not settings.redis.url else None
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        db_url = pg.start() if pg else settings.database.url
        redis_url = rd.start() if rd else settings.redis.url
        assert db_url and redis_url
        done = asyncio.run(_migrate(db_url))
        print(f"tanpuhui dev: migrations applied: {', '.join(done) or 'none (up to date)'}")
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_HTTP_WORKERS": "1",
        }
        py = sys.executable
        commands = {
            "api": [py, "-m", "server.cli", "serve"],
            "worker": [py, "-m", "server.cli", "worker", "--concurrency", "2"],
            "beat": [py, "-m", "server.cli", "beat"],
        }
        for argv in commands.values():
            children.append(
                subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
            )
        base = f"http://{settings.http.host}:{settings.http.port}"
        print(
            f"tanpuhui dev: API {base}  (readiness {base}/readyz, OpenAPI {base}/schema)\n"
            f"tanpuhui dev: PostgreSQL {db_url}\n"
            f"tanpuhui dev: Redis {redis_url}\n"
            f"tanpuhui dev: worker and beat started ({time.monotonic() - started:.1f} s); "
            "Ctrl-C stops everything",
            flush=True,
        )
        while not stopping:
            for name, child in zip(commands, children, strict=True):
                if child.poll() is not None:
                    print(
                        f"tanpuhui dev: {name} exited with {child.returncode}; stopping",
                        file=sys.stderr,
                    )
                    stopping = True
            time.sleep(0.2)
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if rd:
            rd.stop()
        if pg:
            pg.stop()
        print("tanpuhui dev: stopped", file=sys.stderr)


COMMANDS = {
    "dev": (cmd_dev, "embedded stores if needed + migrate + API + worker + beat"),
    "serve": (cmd_serve, "production API: several worker processes; needs the URLs"),
    "migrate": (cmd_migrate, "apply pending migrations and seed reference data"),
    "worker": (cmd_worker, "a Celery worker"),
    "beat": (cmd_beat, "the Celery beat scheduler (periodic tasks)"),
    "audit": (cmd_audit, "verify the journal's hash chain and re-derive every balance"),
    "settings": (cmd_settings, "print every setting as a Markdown table"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tanpuhui", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == "worker":
            p.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        if args.command == "settings":
            return cmd_settings(None, args)
        settings = Settings.from_env()
        return COMMANDS[args.command][0](settings, args)
    except SettingsError as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
