"""An enterprise's kind accounts: a year's activity validated by the enterprise's kind's
schema, accounted by the kind's method under the programme's factor basis (the grid factor of
the year, the fuels' highest versions), and stored with its result in one statement; read back
as stored (the factors it used are in its lines; a new activity, or the same under a newer
factor, re-accounts it).

    async def record(tx, enterprise_id, data: KindAccountIn, basis: Basis) -> KindAccount
    async def account(conn, enterprise_id, year) -> KindAccount   # not_found when none
    async def accounts(conn, enterprise_id) -> list[KindAccount]  # newest year first
    def catalogue() -> list[KindView]
    async def catalogue_for(conn, enterprise_id) -> KindCatalogue  # with its own kind
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

from enterprises.energy_errors import EnterpriseNotFound
from enterprises.factors import Basis, library
from enterprises.kinds import registry
from enterprises.kinds import repository as repo
from enterprises.kinds.errors import KindNotSelfReported
from enterprises.kinds.schemas import (
    Factors,
    KindAccount,
    KindAccountIn,
    KindCatalogue,
    KindView,
    Result,
)
from kit.db import Tx
from kit.errors import NotFound


def catalogue() -> list[KindView]:
    """Every kind with its schema, denominator, intensity unit and grading rule."""
    return [k.view() for k in registry.kinds().values()]


async def catalogue_for(conn: Any, enterprise_id: uuid.UUID) -> KindCatalogue:
    """The catalogue with the enterprise's own kind."""
    return KindCatalogue(own=(await _kind(conn, enterprise_id)).name, kinds=catalogue())


def kind_names() -> tuple[str, ...]:
    return tuple(registry.kinds())


async def _kind(conn: Any, enterprise_id: uuid.UUID) -> registry.Kind:
    name = await repo.enterprise_kind(conn, enterprise_id)
    if name is None:
        raise EnterpriseNotFound("No such enterprise.")
    k = registry.kind(name)
    if k is None:  # a kind the file no longer has
        raise KindNotSelfReported(
            f"The enterprise's kind {name!r} is not in the programme's kinds.",
            extra={"kind": name},
        )
    return k


async def record(
    tx: Tx, enterprise_id: uuid.UUID, data: KindAccountIn, basis: Basis
) -> KindAccount:
    """Validate, account and store the year's activity of the enterprise's kind (replacing
    the year's; the same again changes nothing). The activity is checked against the kind's
    schema before anything else, so an industrial enterprise's activity is refused by field
    too, then ``kind_not_self_reported``."""
    k = await _kind(tx.conn, enterprise_id)
    activity = registry.validate(k, data.activity)
    if not k.spec.self_reported:
        raise KindNotSelfReported(
            f"Kind {k.name!r} is accounted from the activity reports and graded against its "
            "industry (see /emissions and /grade), not from a declared activity.",
            extra={"kind": k.name},
        )
    lib = await library(tx.conn)
    factors = Factors(grid=lib.grid_for(basis, data.year), fuels=lib.fuels, params=k.params)
    result = registry.account(k, activity, factors)
    row = await repo.upsert(
        tx.conn,
        enterprise_id=enterprise_id,
        year=data.year,
        kind=k.name,
        method=k.spec.method,
        basis=basis.label,
        activity=activity,
        emissions_kg=result.emissions_kg,
        denominator=result.denominator,
        intensity=result.intensity,
        grade=result.grade.label,
        result=msgspec.to_builtins(result),
    )
    return _account(row)


async def account(conn: Any, enterprise_id: uuid.UUID, year: int) -> KindAccount:
    row = await repo.one(conn, enterprise_id, year)
    if row is None:
        raise NotFound(f"The enterprise has no kind account for {year}.")
    return _account(row)


async def accounts(conn: Any, enterprise_id: uuid.UUID) -> list[KindAccount]:
    return [_account(r) for r in await repo.of_enterprise(conn, enterprise_id)]


def _account(row: Mapping[str, Any]) -> KindAccount:
    return KindAccount(
        enterprise_id=row["enterprise_id"],
        year=row["year"],
        kind=row["kind"],
        basis=row["basis"],
        activity=row["activity"],
        result=msgspec.convert(row["result"], Result),
        recorded_at=row["recorded_at"],
    )


# The kinds' file is loaded and checked when this module is imported (the app imports it
# through enterprises.service): a kind that cannot work stops the process at start, not at a
# request.
registry.kinds()
