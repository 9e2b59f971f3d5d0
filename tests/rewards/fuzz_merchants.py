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

import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from kit.db import transaction_on
from points import service as ledger
from points.schemas import Issuance
from rewards import service
from rewards.schemas import CodeRequest, ItemSpec, MerchantRegistration, RefundRequest
from server.merchants.routes import PREFIX, DeliveryRequest
from server.settings import Settings
from tests.fuzzing import cut, examples_arg, serve_and_fuzz
from tests.residents.factories import resident_with_id

MERCHANT, KEY_ID, SECRET = "fuzz-shop", "fz1", "fuzz-merchant-secret-0123456789"


def merchant_spec(served: dict[str, Any], reward: dict[str, str]) -> dict[str, Any]:
    """The served document, cut to the merchant paths, with their request bodies."""
    schemas, components = msgspec.json.schema_components(
        [CodeRequest, RefundRequest, DeliveryRequest], ref_template="#/components/schemas/{name}"
    )
    code, refund, delivery = schemas
    spec = cut(served, PREFIX)
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


async def prepare(conn: Any) -> dict[str, str]:
    """A merchant with its key and an item; a resident's reward of it: its code, QR and id."""
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
    return {"code": issued.code, "qr_payload": issued.qr_payload, "id": issued.id}


def main() -> int:
    return serve_and_fuzz(
        "merchants",
        prepare=prepare,
        spec=merchant_spec,
        examples=examples_arg(),
        signed_by=(MERCHANT, KEY_ID, SECRET),
        signed_prefix=f"{PREFIX}/rewards",
    )


if __name__ == "__main__":
    sys.exit(main())
