"""Schemathesis against the signed meters API: every operation, fuzzed with each request signed
by a registered pusher (so the body really is decoded), must never answer 5xx.

    flock /tmp/tph-bench.lock .venv/bin/python -m tests.enterprises.fuzz_meters [examples, 50]

Embedded PostgreSQL and Redis, `tanpuhui serve` on a free port; a pusher with a cumulative and an
interval meter whose references the generated readings use (besides the random ones). The
request body the handler reads by hand is added to the served document as
``enterprises.energy_schemas.ReadingsBatch``'s JSON Schema, with the hostile review's cases as
examples. Each request is signed by ``tests.integrations.fuzz_signing``. Exit status is
schemathesis's (4: every request was refused at the signature).
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

import asyncpg
import msgspec

from behaviours import service as behaviours
from enterprises import energy, service
from enterprises.energy_schemas import MeterIn, ReadingsBatch, SiteIn
from integrations.districts import read_districts_file
from kit.db import transaction_on
from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import migrate
from server.seeds import apply_seeds
from server.settings import PrivacySettings
from tests.enterprises.factories import enterprise

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/api/meters/v1"
DISTRICTS = ROOT / "tests" / "integrations" / "data" / "districts.geojson"
PUSHER, KEY_ID, SECRET = "fuzz-grid", "fz1", "fuzz-meters-secret-0123456789"


def _reading(**changes: Any) -> dict[str, Any]:
    return {"readings": [{"meter": "C1", "at": "2026-01-01T00:15:00+08:00", "value": 1} | changes]}


HOSTILE = {
    "no_utc_form": {"value": _reading(at="9999-12-31T23:59:59-05:00")},
    "before_year_one_utc": {"value": _reading(at="0001-01-01T00:00:00+01:00")},
    "huge_value": {"value": _reading(value=1.7e308, unit="GWh")},
    "negative": {"value": _reading(meter="I1", value=-1)},
    "nul_unit": {"value": _reading(unit="k\u0000Wh")},
    "backwards": {
        "value": {
            "readings": [
                {"meter": "C1", "at": "2026-01-01T00:15:00+08:00", "value": 10},
                {"meter": "C1", "at": "2026-01-01T00:30:00+08:00", "value": 5},
                {"meter": "C1", "at": "2026-01-01T00:30:00+08:00", "value": 6},
            ]
        }
    },
}


def meters_spec(served: dict[str, Any]) -> dict[str, Any]:
    (batch,), components = msgspec.json.schema_components(
        [ReadingsBatch], ref_template="#/components/schemas/{name}"
    )
    spec = dict(served)
    spec["paths"] = {p: op for p, op in served["paths"].items() if p.startswith(PREFIX)}
    spec.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for item in spec["paths"].values():
        item["post"]["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": batch, "examples": HOSTILE}},
        }
    return spec


async def prepare(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    await migrate(conn)
    await apply_seeds(conn)
    async with transaction_on(conn) as tx:
        await behaviours.import_districts(tx, read_districts_file(DISTRICTS))
        await behaviours.register_operator(
            tx, PUSHER, name="Fuzz grid", kind="utility", region_code="440300"
        )
        await behaviours.add_signing_key(tx, PUSHER, KEY_ID, SECRET, privacy=PrivacySettings())
        e = (await service.register(tx, enterprise(1))).enterprise.id
        site = await energy.add_site(tx, e, SiteIn(name="Fuzz plant"))
        for ref, register in (("C1", "cumulative"), ("I1", "interval")):
            await energy.add_meter(
                tx,
                e,
                MeterIn(
                    site_id=site.id,
                    ref=ref,
                    kind="electricity",
                    unit="kWh",
                    pusher=PUSHER,
                    register=register,  # type: ignore[arg-type]
                ),
            )
    await conn.close()


def _past_the_signature(log: Path) -> int:
    lines = log.read_text().splitlines() if log.exists() else []
    posts = [line.rsplit(" ", 1)[1] for line in lines if line.startswith(f"POST {PREFIX}/")]
    decoded = sum(1 for status in posts if status != "401")
    print(f"signed: {decoded} of {len(posts)} POST readings answered past the signature")
    return 0 if decoded else 4


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "50"
    tmp = Path(tempfile.mkdtemp(prefix="tph-mfuzz-"))
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    pg.start()
    rd = EmbeddedRedis(tmp / "redis", persist=False)
    redis_url = rd.start()
    db_url = f"postgresql://postgres@/fuzz?host={pg.data_dir}"

    async def create() -> None:
        admin = await asyncpg.connect(pg.admin_url())
        await admin.execute('CREATE DATABASE "fuzz"')
        await admin.close()
        await prepare(db_url)

    server = None
    try:
        asyncio.run(create())
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
        spec_path = tmp / "meters.json"
        spec_path.write_text(json.dumps(meters_spec(served)))
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
        print("$", " ".join(cmd), "(each request signed)", flush=True)
        hooks_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SCHEMATHESIS_HOOKS": "tests.integrations.fuzz_signing",
            "FUZZ_OPERATOR": PUSHER,
            "FUZZ_KEY_ID": KEY_ID,
            "FUZZ_SECRET": SECRET,
            "FUZZ_STATUS_LOG": str(tmp / "statuses.log"),
        }
        code = subprocess.run(cmd, check=False, env=hooks_env, cwd=ROOT).returncode
        return code or _past_the_signature(tmp / "statuses.log")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        rd.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
