"""Schemathesis against the enterprise API: every operation of the served OpenAPI document under
``/api/enterprise/v1`` (and the public report check), fuzzed with a valid enterprise
administrator's token, must never answer 5xx.

    flock /tmp/tph-bench.lock .venv/bin/python -m tests.enterprises.fuzz_enterprise [examples, 50]

Embedded PostgreSQL and Redis, `tanpuhui serve` on a free port; one enterprise with its
administrator, a site and an issued report. The document fuzzed is the one the server serves
(``/schema/openapi.json``), with the ``enterprise_id`` path parameter pinned to the
administrator's enterprise so that the handlers behind the scope check are reached (another
enterprise is a 404 before anything is read: tests/enterprises/test_scope.py). Exit status is
schemathesis's.
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
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from behaviours import service as behaviours
from enterprises import energy, report, service, users
from enterprises.energy_schemas import SiteIn
from integrations.districts import read_districts_file
from kit.auth import JwtKeys, Role
from kit.db import transaction_on
from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import migrate
from server.seeds import apply_seeds
from tests.enterprises.factories import enterprise

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("/api/enterprise/v1", "/api/public/v1/enterprise-reports")
DISTRICTS = ROOT / "tests" / "integrations" / "data" / "districts.geojson"
KEY = "fuzz-enterprise-key-0123456789abcdef"


def enterprise_spec(served: dict[str, Any], enterprise_id: str) -> dict[str, Any]:
    """The served document's enterprise operations, ``enterprise_id`` pinned to ours."""
    spec = dict(served)
    spec["paths"] = {p: op for p, op in served["paths"].items() if p.startswith(PREFIXES)}
    for item in spec["paths"].values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            for param in op.get("parameters", []):
                if param.get("name") == "enterprise_id" and param.get("in") == "path":
                    param["schema"] = {"type": "string", "enum": [enterprise_id]}
    return spec


async def prepare(db_url: str) -> tuple[str, str]:
    """(enterprise id, administrator's user id)."""
    conn = await asyncpg.connect(db_url)
    await migrate(conn)
    await apply_seeds(conn)
    async with transaction_on(conn) as tx:
        await behaviours.import_districts(tx, read_districts_file(DISTRICTS))
        e = (await service.register(tx, enterprise(1))).enterprise
        admin = await users.add_first_admin(
            tx, e.credit_code, login="fuzz-admin", display_name="Fuzz", password="fuzz password 1"
        )
        await energy.add_site(tx, e.id, SiteIn(name="Fuzz plant"))
        await report.issue(
            tx, e.id, "2026-01", [], issued_by=admin.id, zone=ZoneInfo("Asia/Shanghai")
        )
    await conn.close()
    return str(e.id), str(admin.id)


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "50"
    tmp = Path(tempfile.mkdtemp(prefix="tph-efuzz-"))
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    pg.start()
    rd = EmbeddedRedis(tmp / "redis", persist=False)
    redis_url = rd.start()
    db_url = f"postgresql://postgres@/fuzz?host={pg.data_dir}"

    async def create() -> tuple[str, str]:
        admin = await asyncpg.connect(pg.admin_url())
        await admin.execute('CREATE DATABASE "fuzz"')
        await admin.close()
        return await prepare(db_url)

    server = None
    try:
        enterprise_id, user_id = asyncio.run(create())
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
        spec_path = tmp / "enterprise.json"
        spec_path.write_text(json.dumps(enterprise_spec(served, enterprise_id)))
        token = JwtKeys([("fz", KEY)]).issue(
            user_id,
            Role.ENTERPRISE_ADMIN,
            3600,
            extra={"typ": "access", "ent": enterprise_id},
        )
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
        print("$", " ".join(cmd[:-1]), "'Authorization: Bearer <admin token>'", flush=True)
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
