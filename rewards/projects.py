"""Public-welfare projects: registered by a programme administrator, with a public counter.

A project takes donations of points and retirements of verified grams while it is open
(``starts_at`` ≤ now < ``ends_at``); its target counts one of the two (``target_asset``). Its
counter (points donated, grams retired, certificates, donors) is summed from the donations,
which are written in the same transaction as their ledger transfers, so it always equals the
project's ledger balances (tests/rewards/test_donations.py holds them equal).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from kit import cursor as cursors
from kit.db import Tx
from kit.errors import FieldError, InvalidInput
from points.schemas import Owner, utcnow
from rewards import donations_repository as repo
from rewards.donation_errors import ProjectNotFound
from rewards.donation_schemas import Project, ProjectInput, ProjectPage, ProjectStatus

MAX_PAGE = 100


def project_owner(project_id: str) -> Owner:
    """The project's ledger accounts (POINT: donations; CO2E_G: its retirement account)."""
    return Owner("project", project_id)


def status_at(starts_at: datetime, ends_at: datetime, now: datetime) -> ProjectStatus:
    if now < starts_at:
        return "upcoming"
    return "open" if now < ends_at else "closed"


def _project(r: Any, totals: Any, now: datetime) -> Project:
    points = int(totals["points"]) if totals else 0
    grams = int(totals["grams"]) if totals else 0
    given = points if r["target_asset"] == "POINT" else grams
    return Project(
        id=r["id"],
        title=r["title"],
        beneficiary=r["beneficiary"],
        description=r["description"],
        target_asset=r["target_asset"],
        target_amount=r["target_amount"],
        starts_at=r["starts_at"],
        ends_at=r["ends_at"],
        status=status_at(r["starts_at"], r["ends_at"], now),
        points_donated=points,
        grams_retired=grams,
        donations=int(totals["donations"]) if totals else 0,
        donors=int(totals["donors"]) if totals else 0,
        progress_percent=round(min(100.0, 100.0 * given / r["target_amount"]), 2),
    )


def _aware(value: datetime, path: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            "Times need a time zone offset.",
            code="validation_failed",
            errors=[FieldError(path, "must carry a time zone offset")],
        )


async def register(tx: Tx, p: ProjectInput, *, now: datetime | None = None) -> Project:
    """Register a project (a programme administrator's act: `tanpuhui project register`)."""
    _aware(p.starts_at, "$.starts_at")
    _aware(p.ends_at, "$.ends_at")
    if p.ends_at <= p.starts_at:
        raise InvalidInput(
            "A project ends after it starts.",
            code="validation_failed",
            errors=[FieldError("$.ends_at", "must be later than starts_at")],
        )
    row = await repo.insert_project(tx.conn, p)
    return _project(row, None, now or utcnow())


async def get(conn: Any, project_id: str, *, now: datetime | None = None) -> Project:
    row = await repo.project(conn, project_id)
    if row is None:
        raise ProjectNotFound(f"No project {project_id!r}.")
    totals = await repo.project_totals(conn, [row["id"]])
    return _project(row, totals.get(row["id"]), now or utcnow())


class _Cursor(msgspec.Struct, frozen=True):
    s: datetime  # the page continues below (starts_at, id)
    i: str


async def page(
    conn: Any,
    *,
    cursor: str | None,
    limit: int,
    open_only: bool = False,
    now: datetime | None = None,
) -> ProjectPage:
    """Projects, latest start first, with their counters (two statements a page)."""
    now = now or utcnow()
    limit = max(1, min(limit, MAX_PAGE))
    before = None
    if cursor is not None:
        pos = cursors.decode(cursor, _Cursor)
        try:
            canonical = str(uuid.UUID(pos.i))
        except ValueError:
            raise cursors.invalid() from None
        if pos.s.tzinfo is None:
            raise cursors.invalid()
        before = (pos.s, canonical)
    rows = await repo.projects_page(conn, before, limit + 1, open_at=now if open_only else None)
    more = len(rows) > limit
    rows = rows[:limit]
    totals = await repo.project_totals(conn, [r["id"] for r in rows])
    items = [_project(r, totals.get(r["id"]), now) for r in rows]
    last = rows[-1] if rows else None
    return ProjectPage(
        items,
        cursors.encode(_Cursor(last["starts_at"], last["id"])) if more and last else None,
    )
