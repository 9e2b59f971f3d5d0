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

import sys
import uuid
from typing import Any

import msgspec

from behaviours import service
from behaviours.events import EventBatch
from kit.db import transaction_on
from server.settings import PrivacySettings
from tests.fuzzing import cut, examples_arg, serve_and_fuzz
from tests.residents.factories import resident_with_id

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
    spec = cut(served, PREFIX)
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


async def prepare(conn: Any) -> None:
    rid = await resident_with_id(conn, str(uuid.uuid4()))
    async with transaction_on(conn) as tx:
        await service.register_operator(
            tx, OPERATOR, name="Fuzz", kind="transit", region_code="440300"
        )
        await service.add_signing_key(tx, OPERATOR, KEY_ID, SECRET, privacy=PrivacySettings())
        await service.link_operator(tx, rid, OPERATOR, ["*"])


def main() -> int:
    return serve_and_fuzz(
        "operators",
        prepare=prepare,
        spec=lambda served, _: operator_spec(served),
        examples=examples_arg("200"),
        signed_by=(OPERATOR, KEY_ID, SECRET),
        signed_prefix=f"{PREFIX}/events",
    )


if __name__ == "__main__":
    sys.exit(main())
