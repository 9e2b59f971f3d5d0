"""Schemathesis against the government reports: every operation of the served OpenAPI document
under ``/api/gov/v1/reports``, fuzzed with a valid gov_admin's token (so the admin-only
operations are reached too), must never answer 5xx.

    flock /tmp/tph-bench.lock .venv/bin/python -m tests.reporting.fuzz_reports [examples, 50]

Embedded PostgreSQL and Redis, `tanpuhui serve` on a free port; a gov administrator made
through reporting.users, a few days of green travel ingested through behaviours and the
rollups refreshed, so the reports have rows to cut. Exit status is schemathesis's.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from behaviours import service as behaviours
from behaviours.events import Source, TransitTrip
from kit.auth import JwtKeys, Role
from kit.db import connect, transaction_on
from reporting import rollups, users
from residents import service as residents
from server.app import ingest_policy
from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import migrate
from server.seeds import apply_seeds
from server.settings import PrivacySettings, Settings

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/api/gov/v1/reports"
KEY = "fuzz-reports-key-0123456789abcdef"


def reports_spec(served: dict[str, Any]) -> dict[str, Any]:
    spec = dict(served)
    spec["paths"] = {p: op for p, op in served["paths"].items() if p.startswith(PREFIX)}
    return spec


async def prepare(db_url: str) -> str:
    """The administrator's user id, after a few trips were ingested and rolled up."""
    settings = Settings()
    conn = await connect(db_url)
    await migrate(conn)
    await apply_seeds(conn)
    now = datetime.now(UTC).replace(microsecond=0)
    async with transaction_on(conn) as tx:
        admin = await users.add_user(
            tx, settings.gov_users, settings.privacy, login="fuzz.admin",
            display_name="Fuzz", role="gov_admin", password="fuzz password one two",
            actor="cli:fuzz",
        )  # fmt: skip
        await behaviours.register_operator(
            tx, "metro", name="Metro", kind="transit", region_code="440300", gtfs_feed=None
        )
        await behaviours.add_signing_key(
            tx, "metro", "k1", "op-secret-0123456789abcdef", privacy=PrivacySettings()
        )
    async with transaction_on(conn) as tx:
        [rid] = await residents.create_residents(tx.conn, ["440303"])
        link = await behaviours.link_operator(tx, rid, "metro", ["*"])
    trips = [
        TransitTrip(
            record_id=f"f{i}", subject=link.subject_ref, mode="metro",
            boarded_at=now - timedelta(hours=3 + i), alighted_at=now - timedelta(hours=2 + i),
            distance_m=8000,
        )
        for i in range(3)
    ]  # fmt: skip
    async with transaction_on(conn) as tx:
        await behaviours.ingest(
            tx, Source(operator_id="metro"), trips, policy=ingest_policy(settings)
        )
    async with transaction_on(conn) as tx:
        await rollups.refresh_window(
            tx, timezone=settings.timezone, settings=settings.reporting,
            ent=settings.enterprises, years=True,
        )  # fmt: skip
    await conn.close()
    return str(admin.user.id)


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "50"
    tmp = Path(tempfile.mkdtemp(prefix="tph-rfuzz-"))
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    pg.start()
    rd = EmbeddedRedis(tmp / "redis", persist=False)
    redis_url = rd.start()
    db_url = f"postgresql://postgres@/fuzz?host={pg.data_dir}"

    async def create() -> str:
        admin = await asyncpg.connect(pg.admin_url())
        await admin.execute('CREATE DATABASE "fuzz"')
        await admin.close()
        return await prepare(db_url)

    server = None
    try:
        user_id = asyncio.run(create())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_AUTH_JWT_KEYS": f"fz:{KEY}",
            "TANPUHUI_HTTP_PORT": str(port),
            "TANPUHUI_HTTP_WORKERS": "1",
            "TANPUHUI_LOG_LEVEL": "ERROR",
        }
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "tanpuhui"), "serve"],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        served: dict[str, Any] | None = None
        for _ in range(150):
            try:
                with urllib.request.urlopen(base + "/schema/openapi.json", timeout=2) as r:  # noqa: S310
                    served = json.load(r)
                break
            except OSError:
                time.sleep(0.2)
        if served is None:
            print("the server did not start", flush=True)
            return 3
        spec_path = tmp / "reports.json"
        spec_path.write_text(json.dumps(reports_spec(served)))
        token = JwtKeys([("fz", KEY)]).issue(user_id, Role.GOV_ADMIN, 3600, extra={"typ": "access"})
        cmd = [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            str(spec_path),
            "--url",
            base,
            "--checks",
            "not_a_server_error",
            "--max-examples",
            examples,
            "-H",
            f"Authorization: Bearer {token}",
        ]
        print("$", " ".join(cmd[:-1]), "'Authorization: Bearer <gov admin token>'", flush=True)
        return subprocess.run(cmd, check=False, cwd=ROOT).returncode
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        rd.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
