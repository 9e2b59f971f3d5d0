"""Schemathesis against the public API (``/api/public/v1``, no login): every operation of the
served OpenAPI document (its public paths), fuzzed, must never answer 5xx.

    flock /tmp/tph-bench.lock .venv/bin/python -m tests.fuzz_public [max examples, 50]

Embedded PostgreSQL and Redis, `tanpuhui serve` on a free port. The database holds a project,
a donation whose certificate is sealed and a journal with blocks, and the path parameters carry
them as examples, so the explicit phase reads real rows (a sealed certificate, its block, the
project) and the generated phase everything else. Exit status is schemathesis's.
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
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from kit.db import transaction_on
from points import journal
from points import service as ledger
from points.schemas import Issuance, PointsPolicy
from rewards import donations, projects
from rewards.donation_schemas import ProjectInput
from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import migrate
from server.seeds import apply_seeds
from tests.conftest import WITNESS_KEY
from tests.residents.factories import resident_with_id

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "/api/public/v1"


async def seed(conn: Any) -> dict[str, str]:
    """A project, a resident's sealed donation: the path examples (project id, serial)."""
    policy = PointsPolicy()
    now = datetime.now(UTC)
    rid = await resident_with_id(conn, str(uuid.uuid4()))
    async with transaction_on(conn) as tx:
        p = await projects.register(
            tx,
            ProjectInput(
                title="Fuzz forest",
                beneficiary="Fuzz foundation",
                target_asset="POINT",
                target_amount=1000,
                starts_at=now - timedelta(days=1),
                ends_at=now + timedelta(days=30),
            ),
        )
        await ledger.issue_reductions(
            tx,
            [Issuance(resident_id=rid, reduction_g=5000, source_ref="evt-fuzz",
                      region_code="440300", occurred_at=now)],
            policy,
        )  # fmt: skip
        d = await donations.donate(
            tx, policy, resident_id=rid, project_id=p.id, asset="POINT", amount=100,
            region_code="440300",
        )  # fmt: skip
    async with transaction_on(conn) as tx:
        await journal.seal(tx)
    return {"project_id": p.id, "serial": d.serial, "seq": "1"}


def public_spec(served: dict[str, Any], examples: dict[str, str]) -> dict[str, Any]:
    """The served document, cut to the public paths, the seeded rows as path examples."""
    spec = dict(served)
    spec["paths"] = {p: op for p, op in served["paths"].items() if p.startswith(PREFIX)}
    for item in spec["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []):
                if param.get("in") == "path" and param["name"] in examples:
                    value: Any = examples[param["name"]]
                    param["example"] = int(value) if param["name"] == "seq" else value
    return spec


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "50"
    tmp = Path(tempfile.mkdtemp(prefix="tph-pfuzz-"))
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    pg.start()
    rd = EmbeddedRedis(tmp / "redis", persist=False)
    redis_url = rd.start()
    db_url = f"postgresql://postgres@/fuzz?host={pg.data_dir}"
    seeded: dict[str, str] = {}

    async def prepare() -> None:
        admin = await asyncpg.connect(pg.admin_url())
        await admin.execute('CREATE DATABASE "fuzz"')
        await admin.close()
        conn = await asyncpg.connect(db_url)
        await migrate(conn)
        await apply_seeds(conn)
        seeded.update(await seed(conn))
        await conn.close()

    server = None
    try:
        asyncio.run(prepare())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_HTTP_PORT": str(port),
            "TANPUHUI_HTTP_WORKERS": "1",
            "TANPUHUI_LOG_LEVEL": "ERROR",
            "TANPUHUI_POINTS_WITNESS_KEY": WITNESS_KEY,
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
        with urllib.request.urlopen(f"{base}{PREFIX}/certificates/{seeded['serial']}") as r:  # noqa: S310
            if json.load(r)["status"] != "sealed":
                print("the seeded certificate is not sealed", flush=True)
                return 3
        spec_path = tmp / "public.json"
        spec_path.write_text(json.dumps(public_spec(served, seeded)))
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
        ]
        print("$", " ".join(cmd), flush=True)
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
