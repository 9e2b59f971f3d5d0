"""Operators' scopes (issue 14: "operators, their kinds and scopes"): an operator reports only
the behaviours it is registered for, residents grant it only (part of) those, and an operator
with none (an enterprise's meter gateway) is not among the operators residents may link."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from behaviours import service
from behaviours.errors import InvalidScope, ScopeNotOffered, UnknownOperator
from kit.db import transaction
from tests.behaviours.factories import (
    bike,
    co2e_balance,
    link,
    linked,
    metro,
    now,
    operator,
    run,
)


async def _register(pool, op_id: str, kind: Any, scopes: list[str] | None) -> None:
    async with transaction(pool) as tx:
        await service.register_operator(
            tx, op_id, name=op_id.title(), kind=kind, region_code="440300", scopes=scopes
        )


class TestDefaults:
    def test_every_kind_has_its_defaults_from_the_data_file(self):
        data = json.loads((service.DATA_DIR / "operator_kinds.json").read_text(encoding="utf-8"))
        assert {k: tuple(v) for k, v in data["default_scopes"].items()} == service.DEFAULT_SCOPES
        assert set(service.DEFAULT_SCOPES) == {
            "transit", "bike_share", "utility", "vehicle", "app", "platform"
        }  # fmt: skip
        for scopes in service.DEFAULT_SCOPES.values():
            assert set(scopes) <= set(service.SCOPES)

    async def test_registered_without_scopes_an_operator_gets_its_kinds(self, pool):
        await operator(pool, "bikes", "bike_share")
        async with pool.acquire() as conn:
            view = await service.operator_view(conn, "bikes")
        assert view is not None and view.scopes == ["cycling"]

    async def test_an_unknown_scope_is_refused(self, pool):
        with pytest.raises(InvalidScope):
            await _register(pool, "odd", "platform", ["transit", "flying"])
        async with pool.acquire() as conn:
            assert await service.operator_view(conn, "odd") is None  # nothing half-written


class TestIngestion:
    async def test_a_behaviour_outside_the_operators_scopes_is_refused_without_its_content(
        self, pool, settings
    ):
        await operator(pool, "metro")  # transit only
        rid, subject = await linked(pool, "metro")  # "*": everything the operator reports
        ride = bike(subject, "r2", start=now() - timedelta(hours=4))
        ok, refused = await run(pool, settings, [metro(subject, "r1"), ride])
        assert ok.status == "accepted"
        assert (refused.status, refused.reason_code) == ("rejected", "scope_not_allowed")
        assert refused.reduction_g == 0 and refused.points == 0
        assert await co2e_balance(pool, rid) == (ok.reduction_g, ok.points)
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT subject_ref, resident_id, started_at, content_digest "
                "FROM behaviour_events WHERE id = $1",
                refused.event_id,
            )
        # Kept as a verdict only, like the consent rejections (migrations 0022, 0028).
        assert row is not None and set(row.values()) == {None}

    async def test_narrowing_an_operators_scopes_applies_from_its_next_batch(self, pool, settings):
        await operator(pool, "maas", "platform")
        _, subject = await linked(pool, "maas")
        hours = [now() - timedelta(hours=h) for h in (6, 4, 2)]  # trips that do not overlap
        [before] = await run(pool, settings, [metro(subject, "m1", start=hours[0])], op_id="maas")
        assert before.status == "accepted"
        await _register(pool, "maas", "platform", ["cycling"])
        [after] = await run(pool, settings, [metro(subject, "m2", start=hours[1])], op_id="maas")
        assert after.reason_code == "scope_not_allowed"
        await _register(pool, "maas", "platform", ["cycling", "transit"])
        [again] = await run(pool, settings, [metro(subject, "m3", start=hours[2])], op_id="maas")
        assert again.status == "accepted"


class TestLinks:
    async def test_residents_grant_only_what_the_operator_reports(self, pool):
        await operator(pool, "metro")
        rid, _ = await linked(pool, "metro", scope=["transit"])
        with pytest.raises(ScopeNotOffered):
            await link(pool, rid, "metro", ["transit", "cycling"])
        async with pool.acquire() as conn:
            [ln] = await service.resident_links(conn, rid)
        assert ln.scope == ["transit"]  # the refused change left the consent as it was

    async def test_a_meter_gateway_is_neither_listed_nor_linkable(self, pool):
        await operator(pool, "metro")
        await _register(pool, "factory-gw", "utility", [])
        async with pool.acquire() as conn:
            listed = {o.id: o for o in await service.list_operators(conn)}
        assert "factory-gw" not in listed
        assert listed["metro"].scopes == ["transit"]
        rid = (await linked(pool, "metro"))[0]
        with pytest.raises(UnknownOperator):
            await link(pool, rid, "factory-gw", ["household"])
