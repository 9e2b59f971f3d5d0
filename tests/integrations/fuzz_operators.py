"""Schemathesis against the signed operator API: every operation, fuzzed with each request signed
by a registered operator (so the body really is decoded), must never answer 5xx.

    flock /tmp/tph-bench.lock .venv/bin/python -m tests.integrations.fuzz_operators [examples, 50]

Embedded PostgreSQL and Redis, `tanpuhui serve` on a free port. The operators' OpenAPI document
is the served one (``/schema/openapi.json``, operator paths) with the request bodies the handlers
read by hand added: ``POST /events`` as ``behaviours.events.EventBatch``'s JSON Schema, ``POST
/files`` as bytes. Each request is signed by ``tests.integrations.fuzz_signing`` (a schemathesis
``before_call`` hook that signs the exact bytes sent). Exit status is schemathesis's.
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
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from behaviours import service
from behaviours.events import EventBatch
from kit.db import transaction_on
from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import migrate
from server.seeds import apply_seeds
from server.settings import PrivacySettings
from tests.residents.factories import resident_with_id

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/api/operators/v1"
OPERATOR, KEY_ID, SECRET = "fuzz-op", "fz1", "fuzz-operator-secret-0123456789"


def _trip(**changes: Any) -> dict[str, Any]:
    trip = {
        "type": "transit_trip",
        "record_id": "r1",
        "subject": "someone",
        "mode": "metro",
        "boarded_at": "2024-05-01T08:00:00+08:00",
        "alighted_at": "2024-05-01T08:20:00+08:00",
    }
    return {"events": [trip | changes]}


# The findings of the hostile review, run first (schemathesis' examples phase) on every run.
HOSTILE_BATCHES = {
    "nul_record_id": {"value": _trip(record_id="a\u0000b")},
    "nul_subject": {"value": _trip(subject="\u0000")},
    "nul_stop": {"value": _trip(boarding_stop="A\u0000")},
    "no_utc_form": {"value": _trip(boarded_at="9999-12-31T23:59:59-05:00")},
    "before_year_one_utc": {"value": _trip(boarded_at="0001-01-01T00:00:00+01:00")},
    "year_9999": {"value": _trip(alighted_at="9999-12-31T23:59:59+00:00")},
    "huge_meter": {
        "value": {
            "events": [
                {
                    "type": "meter_reading",
                    "record_id": "m1",
                    "subject": "someone",
                    "utility": "electricity",
                    "account": "a1",
                    "period_start": "2024-04-01T00:00:00+08:00",
                    "period_end": "2024-05-01T00:00:00+08:00",
                    "quantity": 1.7e308,
                }
            ]
        }
    },
}


def operator_spec(served: dict[str, Any]) -> dict[str, Any]:
    """The served document, cut to the operator paths, with their request bodies."""
    (batch,), components = msgspec.json.schema_components(
        [EventBatch], ref_template="#/components/schemas/{name}"
    )
    spec = dict(served)
    spec["paths"] = {p: op for p, op in served["paths"].items() if p.startswith(PREFIX)}
    spec.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for path, item in spec["paths"].items():
        post = item.get("post")
        if post is None:
            continue
        if path.endswith("/events"):
            content = {"application/json": {"schema": batch, "examples": HOSTILE_BATCHES}}
        else:
            content = {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        post["requestBody"] = {"required": True, "content": content}
    return spec


def _past_the_signature(log: Path) -> int:
    """0 when signed batches were decoded (answered other than 401), else 4: a run whose every
    request was refused at the signature would fuzz nothing behind it."""
    lines = log.read_text().splitlines() if log.exists() else []
    events = [line.rsplit(" ", 1)[1] for line in lines if line.startswith(f"POST {PREFIX}/events")]
    decoded = sum(1 for status in events if status != "401")
    print(
        f"signed: {decoded} of {len(events)} POST /events answered past the signature", flush=True
    )
    return 0 if decoded else 4


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "200"
    tmp = Path(tempfile.mkdtemp(prefix="tph-ofuzz-"))
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    pg.start()
    rd = EmbeddedRedis(tmp / "redis", persist=False)
    redis_url = rd.start()
    db_url = f"postgresql://postgres@/fuzz?host={pg.data_dir}"

    async def prepare() -> None:
        admin = await asyncpg.connect(pg.admin_url())
        await admin.execute('CREATE DATABASE "fuzz"')
        await admin.close()
        conn = await asyncpg.connect(db_url)
        await migrate(conn)
        await apply_seeds(conn)
        rid = await resident_with_id(conn, str(uuid.uuid4()))
        async with transaction_on(conn) as tx:
            await service.register_operator(
                tx, OPERATOR, name="Fuzz", kind="transit", region_code="440300"
            )
            await service.add_signing_key(tx, OPERATOR, KEY_ID, SECRET, privacy=PrivacySettings())
            await service.link_operator(tx, rid, OPERATOR, ["*"])
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
        spec_path = tmp / "operators.json"
        spec_path.write_text(json.dumps(operator_spec(served)))
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
            "FUZZ_OPERATOR": OPERATOR,
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
