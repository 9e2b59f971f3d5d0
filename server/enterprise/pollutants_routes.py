"""The enterprise API's pollutants (``.../enterprises/{enterprise_id}/pollutants``): a month's
SO2, NOx, particulate and VOC lines posted (all or nothing, ``Idempotency-Key``) and the
period's lines and figures read back. Thin controllers over ``enterprises.pollutants``
(docs/pollutants.md)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from enterprises import pollutants, report
from enterprises.pollutants_schemas import PollutantPeriod, PollutantsIn, PollutantsRecorded
from kit import idempotency
from kit.db import Tx
from server.enterprise.base import SCOPE, Caller, Guarded, IdempotencyKey, digest
from server.enterprise.errors import SCOPED, errors
from server.enterprise.schemas import AccountPeriod
from server.settings import Settings


class PollutantsController(Guarded):
    """SO2, NOx, particulate matter and VOCs beside carbon (enterprises.pollutants)."""

    path = SCOPE + "/pollutants"
    tags = ["account"]  # noqa: RUF012 (Litestar's class attribute)

    @post(
        "",
        status_code=200,
        summary=(
            "上报某月的污染物排放（SO2、NOx、颗粒物、VOCs；许可、在线监测或报告），整月替换 · "
            "Submit a month's pollutant lines (SO2, NOx, PM, VOCs; permit, online monitoring or "
            "report): they replace the month's lines, all or nothing"
        ),
        description=(
            "数量以 t、kg 或 g 给出，按 kg 保存并保留原数量和单位；同一污染物有多个来源时，"
            "核算取最可信的来源（在线监测、许可、报告）。\n\n"
            "Amounts in t, kg or g are kept in kg beside the amount and unit as given; where "
            "several sources give one pollutant, the accounting takes the most trusted one "
            "(online monitoring, then permit, then report). `replaced`: the lines the month "
            "had before. Safe to retry with an `Idempotency-Key`."
        ),
        responses=errors(
            *SCOPED,
            "pollutant_unit_unknown",
            "pollutant_month_invalid",
            "pollutant_lines_duplicate",
            "idempotency_key_reused",
        ),
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        caller: NamedDependency[Caller],
        tx: NamedDependency[Tx],
        data: JSONBody[PollutantsIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PollutantsRecorded]:
        status, found = await idempotency.replay_or_run(
            tx,
            caller.idempotency_scope,
            idempotency_key,
            digest(request, data),
            lambda: pollutants.submit(tx, caller.enterprise_id, data, recorded_by=caller.user_id),
            PollutantsRecorded,
        )
        return Response(content=found, status_code=status)

    @get(
        "",
        summary=(
            "某月或某年的污染物：上报的明细、按来源核算的量、污染当量和单位增加值强度 · "
            "Pollutants of a month or a year: the lines, the accounted amounts, pollutant "
            "equivalents and intensity per added value"
        ),
        responses=errors(*SCOPED),
    )
    async def read(
        self,
        caller: NamedDependency[Caller],
        settings: NamedDependency[Settings],
        period: FromQuery[AccountPeriod],
    ) -> PollutantPeriod:
        start, end = report.period_bounds(period)
        async with caller.pool.acquire() as conn:
            return await pollutants.period(
                conn, caller.enterprise_id, start, end, period, settings.enterprises
            )
