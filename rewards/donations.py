"""Donation: a resident gives points, or retires verified grams, to a public-welfare project.

One transaction per donation (the route's), all or nothing: the donation row (its serial), two
posted ledger transfers through ``points.service.transfer`` and the row's link to them.

- **Two legs through the programme's donation pool** (``system:donations``): the resident's
  account to the pool, then the pool to the project, in one ledger call (one batch, one block).
  The certificate publishes the second leg with its inclusion proof; a transfer's content is
  hashed whole (``points.content``), so publishing the first leg would publish the resident's
  ledger id, which never leaves the server (the leaderboard's rule). The pool nets to zero in
  every batch, so its balance is always 0 (the audit's re-derivation sees it).
- **Never between residents**: the credit is always the pool then a project account
  (``project:<id>``); no path here names another resident.
- **Retirement is final**: grams go to the project's CO2E_G account, which the database never
  lets a balance update decrease nor hold (migration 0051, ``ledger_retirement_final``).
- **Idempotent**: the route runs this under ``Idempotency-Key`` (``kit.idempotency``); the
  ledger keys are the donation row's (``donation:<id>:pool|project``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec

from enterprises import pooling
from kit import cursor as cursors
from kit.db import Tx
from points import service as ledger
from points.schemas import Owner, PointsPolicy, ResidentAsset, TransferRequest, utcnow
from rewards import donations_repository as repo
from rewards.donation_errors import GramsPooled, ProjectClosed, ProjectNotFound
from rewards.donation_schemas import Donation, DonationPage, kind_of
from rewards.projects import project_owner, status_at

POOL = Owner("system", "donations")
KIND = "donation"
REASONS: dict[str, str] = {"POINT": "points_donated", "CO2E_G": "grams_retired"}
MAX_PAGE = 100


def donor_pseudonym(resident_id: str) -> str:
    """The donor as certificates show them: stable per resident, not reversible."""
    return "donor-" + hashlib.sha256(b"donor:" + resident_id.encode()).hexdigest()[:12]


def certificate_ref(serial: str, donor: str) -> str:
    """The certified transfer's ``source_ref``: binds the serial and the donor into the journal."""
    return f"certificate:{serial}:{donor}"


def certificate_path(serial: str) -> str:
    return f"/api/public/v1/certificates/{serial}"


async def _within_pooling(tx: Tx, vintage: int, amount: int, policy: PointsPolicy) -> None:
    """Residents keep their grams when the programme pools a vintage for enterprises' offsets
    (enterprises.pooling), so a retirement of that vintage afterwards must fit in what pooling
    left, or the same reductions would be retired twice: under the pooling's lock (an issuance
    and a retirement never interleave), ``grams_pooled`` when it does not fit."""
    await pooling.lock(tx.conn)
    room = await pooling.retirement_room(tx.conn, vintage, policy.timezone)
    if room is not None and amount > room:
        raise GramsPooled(
            "This year's reductions are pooled for enterprises' offsets up to what is left.",
            extra={"vintage": vintage, "retirable_g": room},
        )


async def donate(
    tx: Tx,
    policy: PointsPolicy,
    *,
    resident_id: str,
    project_id: str,
    asset: ResidentAsset,
    amount: int,
    region_code: str,
    now: datetime | None = None,
) -> Donation:
    """Give ``amount`` of ``asset`` (POINT: a donation, CO2E_G: a retirement) to an open project.

    Refused: ``project_not_found``, ``project_closed`` (outside its period), ``grams_pooled``
    (grams of a pooled vintage beyond what pooling left), and the ledger's
    ``insufficient_funds`` when the resident's available balance is short (all rolled back).
    """
    now = now or utcnow()
    project = await repo.project(tx.conn, project_id)
    if project is None:
        raise ProjectNotFound(f"No project {project_id!r}.")
    if status_at(project["starts_at"], project["ends_at"], now) != "open":
        raise ProjectClosed(
            "The project takes donations only during its period.",
            extra={
                "starts_at": project["starts_at"].isoformat(),
                "ends_at": project["ends_at"].isoformat(),
            },
        )
    vintage = now.astimezone(policy.zone).year
    if asset == "CO2E_G":
        await _within_pooling(tx, vintage, amount, policy)
    donor = donor_pseudonym(resident_id)
    row = await repo.insert_donation(
        tx.conn,
        vintage=vintage,
        asset=asset,
        project_id=project["id"],
        resident_id=resident_id,
        donor=donor,
        amount=amount,
    )
    serial: str = row["serial"]
    ref = certificate_ref(serial, donor)

    def leg(key: str, debit: Owner, credit: Owner) -> TransferRequest:
        return TransferRequest(
            idempotency_key=f"donation:{row['id']}:{key}",
            debit=debit,
            credit=credit,
            asset=asset,
            amount=amount,
            kind=KIND,
            reason_code=REASONS[asset],
            region_code=region_code,
            occurred_at=now,
            source_ref=ref,
        )

    pool_leg, project_leg = await ledger.transfer(
        tx,
        [
            leg("pool", Owner("resident", resident_id), POOL),
            leg("project", POOL, project_owner(project["id"])),
        ],
        policy,
        now=now,
    )
    await repo.set_transfers(tx.conn, row["id"], int(pool_leg.id), int(project_leg.id))
    return Donation(
        serial=serial,
        kind=kind_of(asset),
        asset=asset,
        amount=amount,
        project_id=project["id"],
        project_title=project["title"],
        donated_at=row["donated_at"],
        certificate_url=certificate_path(serial),
    )


class _Cursor(msgspec.Struct, frozen=True):
    b: int  # the page continues with donations below this id


def _donation(r: Any) -> Donation:
    return Donation(
        serial=r["serial"],
        kind=kind_of(r["asset"]),
        asset=r["asset"],
        amount=r["amount"],
        project_id=r["project_id"],
        project_title=r["project_title"],
        donated_at=r["donated_at"],
        certificate_url=certificate_path(r["serial"]),
    )


async def mine(conn: Any, resident_id: str, *, cursor: str | None, limit: int) -> DonationPage:
    """The resident's donations and retirements, newest first (their certificates' serials)."""
    limit = max(1, min(limit, MAX_PAGE))
    before = None if cursor is None else cursors.decode(cursor, _Cursor).b
    if before is not None and not 0 < before < 2**63:
        raise cursors.invalid()
    rows = await repo.resident_donations(conn, resident_id, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return DonationPage(
        [_donation(r) for r in rows],
        cursors.encode(_Cursor(rows[-1]["id"])) if more and rows else None,
    )
