"""Schemathesis against the government reports: every operation of the served OpenAPI document
under ``/api/gov/v1/reports``, fuzzed with a valid gov_admin's token (so the admin-only
operations are reached too), must never answer 5xx.

    flock /tmp/tph-bench.lock .venv/bin/python -m tests.reporting.fuzz_reports [examples, 50]

Embedded PostgreSQL and Redis, `tanpuhui serve` on a free port; a gov administrator made
through reporting.users, a few days of green travel ingested through behaviours and the
rollups refreshed, so the reports have rows to cut. Exit status is schemathesis's.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from behaviours import service as behaviours
from behaviours.events import Source, TransitTrip
from kit.auth import JwtKeys, Role
from kit.db import transaction_on
from reporting import rollups, users
from residents import service as residents
from server.app import ingest_policy
from server.settings import PrivacySettings, Settings
from tests.fuzzing import cut, examples_arg, serve_and_fuzz

PREFIX = "/api/gov/v1/reports"
KEY = "fuzz-reports-key-0123456789abcdef"


async def prepare(conn: Any) -> str:
    """The administrator's user id, after a few trips were ingested and rolled up."""
    settings = Settings()
    now = datetime.now(UTC).replace(microsecond=0)
    async with transaction_on(conn) as tx:
        admin = await users.add_user(
            tx, settings.gov_users, settings.privacy, login="fuzz.admin",
            display_name="Fuzz", role="gov_admin", password="fuzz password one two",
            actor="cli:fuzz",
        )  # fmt: skip
        await behaviours.register_operator(
            tx, "metro", name="Metro", kind="transit", region_code="440300", gtfs_feed=None
        )
        await behaviours.add_signing_key(
            tx, "metro", "k1", "op-secret-0123456789abcdef", privacy=PrivacySettings()
        )
    async with transaction_on(conn) as tx:
        [rid] = await residents.create_residents(tx.conn, ["440303"])
        link = await behaviours.link_operator(tx, rid, "metro", ["*"])
    trips = [
        TransitTrip(
            record_id=f"f{i}", subject=link.subject_ref, mode="metro",
            boarded_at=now - timedelta(hours=3 + i), alighted_at=now - timedelta(hours=2 + i),
            distance_m=8000,
        )
        for i in range(3)
    ]  # fmt: skip
    async with transaction_on(conn) as tx:
        await behaviours.ingest(
            tx, Source(operator_id="metro"), trips, policy=ingest_policy(settings)
        )
    async with transaction_on(conn) as tx:
        await rollups.refresh_window(
            tx, timezone=settings.timezone, settings=settings.reporting,
            ent=settings.enterprises, years=True,
        )  # fmt: skip
    return str(admin.user.id)


def _token(user_id: str) -> list[str]:
    token = JwtKeys([("fz", KEY)]).issue(user_id, Role.GOV_ADMIN, 3600, extra={"typ": "access"})
    return [f"Authorization: Bearer {token}"]


def main() -> int:
    return serve_and_fuzz(
        "reports",
        prepare=prepare,
        spec=lambda served, _: cut(served, PREFIX),
        examples=examples_arg(),
        server_env={"TANPUHUI_AUTH_JWT_KEYS": f"fz:{KEY}"},
        headers=_token,
    )


if __name__ == "__main__":
    sys.exit(main())
