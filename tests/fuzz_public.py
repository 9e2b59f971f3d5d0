"""Schemathesis against the public API (``/api/public/v1``, no login): every operation of the
served OpenAPI document (its public paths), fuzzed, must never answer 5xx.

    flock /tmp/tph-bench.lock .venv/bin/python -m tests.fuzz_public [max examples, 50]

Embedded PostgreSQL and Redis, `tanpuhui serve` on a free port. The database holds a project,
a donation whose certificate is sealed and a journal with blocks, and the path parameters carry
them as examples, so the explicit phase reads real rows (a sealed certificate, its block, the
project) and the generated phase everything else. Exit status is schemathesis's.
"""

from __future__ import annotations

import json
import sys
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kit.db import transaction_on
from points import journal
from points import service as ledger
from points.schemas import Issuance, PointsPolicy
from rewards import donations, projects
from rewards.donation_schemas import ProjectInput
from tests.conftest import WITNESS_KEY
from tests.fuzzing import cut, examples_arg, serve_and_fuzz
from tests.residents.factories import resident_with_id

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
    async with transaction_on(conn) as tx:  # as a resident would: credited, then donating
        d = await donations.donate(
            tx, policy, resident_id=rid, project_id=p.id, asset="POINT", amount=100,
            region_code="440300",
        )  # fmt: skip
    async with transaction_on(conn) as tx:
        await journal.seal(tx)
    return {"project_id": p.id, "serial": d.serial, "seq": "1"}


def public_spec(served: dict[str, Any], examples: dict[str, str]) -> dict[str, Any]:
    """The served document, cut to the public paths, the seeded rows as path examples."""
    spec = cut(served, PREFIX)
    for item in spec["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []):
                if param.get("in") == "path" and param["name"] in examples:
                    value: Any = examples[param["name"]]
                    param["example"] = int(value) if param["name"] == "seq" else value
    return spec


def _sealed(base: str, seeded: dict[str, str]) -> str | None:
    with urllib.request.urlopen(f"{base}{PREFIX}/certificates/{seeded['serial']}") as r:  # noqa: S310
        sealed = json.load(r)["status"] == "sealed"
    return None if sealed else "the seeded certificate is not sealed"


def main() -> int:
    return serve_and_fuzz(
        "public",
        prepare=seed,
        spec=public_spec,
        examples=examples_arg(),
        server_env={"TANPUHUI_POINTS_WITNESS_KEY": WITNESS_KEY},
        check=_sealed,
    )


if __name__ == "__main__":
    sys.exit(main())
