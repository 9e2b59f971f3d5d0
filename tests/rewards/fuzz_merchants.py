"""Schemathesis against the signed merchant API: every operation, fuzzed with each request signed
by a registered merchant (so the body really is decoded), must never answer 5xx.

    flock /tmp/tph-bench.lock .venv/bin/python -m tests.rewards.fuzz_merchants [examples, 50]

Embedded PostgreSQL and Redis, `tanpuhui serve` on a free port. The merchants' OpenAPI document
is the served one (``/schema/openapi.json``, merchant paths) with the request bodies the handlers
read by hand added (``CodeRequest``, ``RefundRequest``, the delivery's), and examples naming a
real reward (its code, its QR payload, its id) so the examples phase reaches confirm and refund.
Each request is signed by ``tests.integrations.fuzz_signing`` (the operators' scheme: the
merchant's id travels in ``X-Operator-Id``). Exit status is schemathesis's.
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
import msgspec

from kit.db import transaction_on
from points import service as ledger
from points.schemas import Issuance
from rewards import service
from rewards.schemas import CodeRequest, ItemSpec, MerchantRegistration, RefundRequest
from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.merchants.routes import PREFIX, DeliveryRequest
from server.migrate import migrate
from server.seeds import apply_seeds
from server.settings import Settings
from tests.residents.factories import resident_with_id

ROOT = Path(__file__).resolve().parents[2]
MERCHANT, KEY_ID, SECRET = "fuzz-shop", "fz1", "fuzz-merchant-secret-0123456789"


def merchant_spec(served: dict[str, Any], reward: dict[str, str]) -> dict[str, Any]:
    """The served document, cut to the merchant paths, with their request bodies."""
    schemas, components = msgspec.json.schema_components(
        [CodeRequest, RefundRequest, DeliveryRequest], ref_template="#/components/schemas/{name}"
    )
    code, refund, delivery = schemas
    spec = dict(served)
    spec["paths"] = {p: op for p, op in served["paths"].items() if p.startswith(PREFIX)}
    spec.setdefault("components", {}).setdefault("schemas", {}).update(components)
    code_examples = {
        "text": {"value": {"code": reward["code"]}},
        "qr": {"value": {"code": reward["qr_payload"]}},
        "other_merchant_qr": {"value": {"code": "TPH1:someone-else:ABCD"}},
        "nul": {"value": {"code": "A\u0000B"}},
        "huge_unicode": {"value": {"code": "码" * 200}},
    }
    for path, item in spec["paths"].items():
        post = item.get("post")
        if post is None:
            continue
        if path.endswith("/refund"):
            schema: dict[str, Any] = refund
            examples: dict[str, Any] = {"real": {"value": {"reward_id": reward["id"]}}}
        elif path.endswith("/delivery"):
            schema, examples = delivery, {"shipped": {"value": {"status": "delivered"}}}
        else:
            schema, examples = code, code_examples
        content = {"application/json": {"schema": schema, "examples": examples}}
        post["requestBody"] = {"required": True, "content": content}
    return spec


def _past_the_signature(log: Path) -> int:
    lines = log.read_text().splitlines() if log.exists() else []
    posts = [line.rsplit(" ", 1)[1] for line in lines if line.startswith(f"POST {PREFIX}/rewards")]
    decoded = sum(1 for status in posts if status != "401")
    print(f"signed: {decoded} of {len(posts)} POST /rewards/* answered past the signature")
    return 0 if decoded else 4


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "50"
    tmp = Path(tempfile.mkdtemp(prefix="tph-mfuzz-"))
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    pg.start()
    rd = EmbeddedRedis(tmp / "redis", persist=False)
    redis_url = rd.start()
    db_url = f"postgresql://postgres@/fuzz?host={pg.data_dir}"
    reward: dict[str, str] = {}

    async def prepare() -> None:
        admin = await asyncpg.connect(pg.admin_url())
        await admin.execute('CREATE DATABASE "fuzz"')
        await admin.close()
        conn = await asyncpg.connect(db_url)
        await migrate(conn)
        await apply_seeds(conn)
        cfg = service.config_of(Settings())
        rid = await resident_with_id(conn, str(uuid.uuid4()))
        now = datetime.now(UTC)
        async with transaction_on(conn) as tx:
            await service.register_merchant(
                tx,
                cfg,
                MerchantRegistration(id=MERCHANT, name="Fuzz", settlement_contact="f@example.org"),
            )
            await service.issue_key(tx, cfg, MERCHANT, KEY_ID, SECRET)
            made = await service.add_item(
                tx,
                ItemSpec(
                    merchant_id=MERCHANT,
                    kind="physical",
                    title="Fuzz item",
                    cost_points=1,
                    total_stock=10,
                    active_from=now - timedelta(days=1),
                    active_until=now + timedelta(days=1),
                    visible_from=now - timedelta(days=1),
                    visible_until=now + timedelta(days=1),
                ),
            )
            await ledger.issue_reductions(
                tx,
                [
                    Issuance(
                        resident_id=rid,
                        reduction_g=1000,
                        source_ref="fuzz-fund",
                        region_code="440305",
                        occurred_at=now,
                    )
                ],
                cfg.points,
            )
        async with transaction_on(conn) as tx:
            issued = await service.redeem(tx, cfg, rid, made.id)
        reward.update(code=issued.code, qr_payload=issued.qr_payload, id=issued.id)
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
        spec_path = tmp / "merchants.json"
        spec_path.write_text(json.dumps(merchant_spec(served, reward)))
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
            "FUZZ_OPERATOR": MERCHANT,
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
