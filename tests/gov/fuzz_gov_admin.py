"""Schemathesis against the government administration API: every operation of the served
OpenAPI document under ``/api/gov/v1/admin`` (and the sign-in), fuzzed with a valid government
administrator's token, must never answer 5xx.

    flock /tmp/tph-bench.lock .venv/bin/python -m tests.gov.fuzz_gov_admin [examples, 50]

Embedded PostgreSQL and Redis, `tanpuhui serve` on a free port; the imported test districts,
one operator with a key, and the administrator (a second one, so that the fuzzer may disable or
demote users without leaving the programme with none). Exit status is schemathesis's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from behaviours import service as behaviours
from integrations.districts import read_districts_file
from kit.auth import JwtKeys, Role
from kit.db import transaction_on
from kit.settings import PrivacySettings
from reporting import users
from reporting.users_settings import GovUsersSettings
from tests.fuzzing import cut, examples_arg, serve_and_fuzz

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("/api/gov/v1/admin", "/api/gov/v1/sessions")
DISTRICTS = ROOT / "tests" / "integrations" / "data" / "districts.geojson"
KEY = "fuzz-gov-admin-key-0123456789abcdef"


async def prepare(conn: Any) -> str:
    """The administrator's user id."""
    privacy = PrivacySettings()
    # The harness's connection is plain asyncpg: JSON as the application's pool speaks it.
    for typename in ("jsonb", "json"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
    async with transaction_on(conn) as tx:
        await behaviours.import_districts(tx, read_districts_file(DISTRICTS))
        await behaviours.register_operator(
            tx, "metro", name="Metro", kind="transit", region_code="440300"
        )
        await behaviours.add_signing_key(tx, "metro", "k1", privacy=privacy)
        made = []
        for login in ("fuzz.admin", "fuzz.admin2"):
            made.append(
                await users.add_user(
                    tx,
                    GovUsersSettings(),
                    privacy,
                    login=login,
                    display_name="Fuzz",
                    role="gov_admin",
                    password="fuzz password 123",
                    actor="cli:fuzz",
                )
            )
    return str(made[0].user.id)


def _token(user_id: str) -> list[str]:
    token = JwtKeys([("fz", KEY)]).issue(user_id, Role.GOV_ADMIN, 3600, extra={"typ": "access"})
    return [f"Authorization: Bearer {token}"]


def main() -> int:
    return serve_and_fuzz(
        "gov-admin",
        prepare=prepare,
        spec=lambda served, _: cut(served, *PREFIXES),
        examples=examples_arg(),
        server_env={"TANPUHUI_AUTH_JWT_KEYS": f"fz:{KEY}"},
        headers=_token,
    )


if __name__ == "__main__":
    sys.exit(main())
