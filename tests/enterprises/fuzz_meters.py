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

import sys
from pathlib import Path
from typing import Any

import msgspec

from behaviours import service as behaviours
from enterprises import energy, service
from enterprises.energy_schemas import MeterIn, ReadingsBatch, SiteIn
from integrations.districts import read_districts_file
from kit.db import transaction_on
from server.settings import PrivacySettings
from tests.enterprises.factories import enterprise
from tests.fuzzing import cut, examples_arg, serve_and_fuzz

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
    spec = cut(served, PREFIX)
    spec.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for item in spec["paths"].values():
        item["post"]["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": batch, "examples": HOSTILE}},
        }
    return spec


async def prepare(conn: Any) -> None:
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


def main() -> int:
    return serve_and_fuzz(
        "meters",
        prepare=prepare,
        spec=lambda served, _: meters_spec(served),
        examples=examples_arg(),
        signed_by=(PUSHER, KEY_ID, SECRET),
        signed_prefix=f"{PREFIX}/",
    )


if __name__ == "__main__":
    sys.exit(main())
