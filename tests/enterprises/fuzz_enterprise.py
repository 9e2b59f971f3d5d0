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

import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from behaviours import service as behaviours
from enterprises import energy, report, service, users
from enterprises.energy_schemas import SiteIn
from integrations.districts import read_districts_file
from kit.auth import JwtKeys, Role
from kit.db import transaction_on
from tests.enterprises.factories import enterprise
from tests.fuzzing import cut, examples_arg, serve_and_fuzz

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("/api/enterprise/v1", "/api/public/v1/enterprise-reports")
DISTRICTS = ROOT / "tests" / "integrations" / "data" / "districts.geojson"
KEY = "fuzz-enterprise-key-0123456789abcdef"


def enterprise_spec(served: dict[str, Any], enterprise_id: str) -> dict[str, Any]:
    """The served document's enterprise operations, ``enterprise_id`` pinned to ours."""
    spec = cut(served, *PREFIXES)
    for item in spec["paths"].values():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            for param in op.get("parameters", []):
                if param.get("name") == "enterprise_id" and param.get("in") == "path":
                    param["schema"] = {"type": "string", "enum": [enterprise_id]}
    return spec


async def prepare(conn: Any) -> tuple[str, str]:
    """(enterprise id, administrator's user id)."""
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
    return str(e.id), str(admin.id)


def _token(prepared: tuple[str, str]) -> list[str]:
    enterprise_id, user_id = prepared
    token = JwtKeys([("fz", KEY)]).issue(
        user_id, Role.ENTERPRISE_ADMIN, 3600, extra={"typ": "access", "ent": enterprise_id}
    )
    return [f"Authorization: Bearer {token}"]


def main() -> int:
    return serve_and_fuzz(
        "enterprise",
        prepare=prepare,
        spec=lambda served, prepared: enterprise_spec(served, prepared[0]),
        examples=examples_arg(),
        server_env={"TANPUHUI_AUTH_JWT_KEYS": f"fz:{KEY}"},
        headers=_token,
    )


if __name__ == "__main__":
    sys.exit(main())
