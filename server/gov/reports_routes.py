"""The government reports (``/api/gov/v1/reports/...``): thin routes over ``reporting.service``.

Every route is guarded by ``GOV_READ`` (analysts and administrators) and answers only
aggregates under disclosure control (reporting.disclosure: a suppressed cell is ``{"value":
null, "status": "suppressed"}``); enterprise-level detail (the grade 4-5 retrofit list) and the
reconciliation runs are ``GOV_ADMIN`` only, and reading the list is written to the audit log.
Shapes and examples: docs/reporting.md.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from litestar import Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from kit.db import transaction
from reporting import service
from reporting.errors import ReportNotFound
from reporting.reconcile import Reconciliation
from reporting.schemas import (
    ByDistrict,
    ByMode,
    DecisionIn,
    DecisionResult,
    DistrictMode,
    DualCarbonIndex,
    EnterpriseSeries,
    EnterpriseTable,
    Grades,
    KayaResult,
    Liability,
    PeakTest,
    PeakTestIn,
    RetrofitList,
    Series,
    SeriesValue,
    Totals,
)
from server.gov.errors import document
from server.gov.guards import GOV_ADMIN, GOV_READ, GovCaller, provide_gov_caller
from server.gov.synergy_routes import enterprise_synergy
from server.settings import Settings

Grain = Literal["day", "month", "year"]
GrainQ = Annotated[Grain, QueryParameter(description="day | month | year")]
PeriodQ = Annotated[
    date, QueryParameter(description="the period's first day (2026-03-01 for March 2026)")
]
DistrictQ = Annotated[
    str | None,
    QueryParameter(pattern=r"^([0-9]{6}|unknown)$", description="GB/T 2260 district code"),
]
ModeQ = Annotated[str | None, QueryParameter(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
YearQ = Annotated[int, QueryParameter(ge=2000, le=2100)]
RateQ = Annotated[float, QueryParameter(ge=-0.5, le=0.5)]
DriftQ = Annotated[float, QueryParameter(ge=-0.05, le=0.05)]
CSV = "text/csv"
ZIP = "application/zip"


@get("/totals", summary="总量 · Headline totals of a period")
async def totals(pool: NamedDependency[Any], grain: GrainQ, period: PeriodQ) -> Totals:
    async with pool.acquire() as conn:
        return await service.totals(conn, grain, period)


@get("/series", summary="时间序列 · A time series (one district / mode, or all)")
async def series(
    pool: NamedDependency[Any],
    settings: NamedDependency[Settings],
    grain: GrainQ,
    start: PeriodQ,
    end: PeriodQ,
    district: DistrictQ = None,
    mode: ModeQ = None,
) -> Series:
    async with pool.acquire() as conn:
        return await service.series(
            conn, grain, start, end, settings.reporting, district=district, mode=mode
        )


@get("/by-mode", summary="按出行方式 · By mode")
async def by_mode(pool: NamedDependency[Any], grain: GrainQ, period: PeriodQ) -> ByMode:
    async with pool.acquire() as conn:
        return await service.by_mode(conn, grain, period)


@get("/by-district", summary="按区 · By district (keyed by district code)")
async def by_district(pool: NamedDependency[Any], grain: GrainQ, period: PeriodQ) -> ByDistrict:
    async with pool.acquire() as conn:
        return await service.by_district(conn, grain, period)


@get("/district-mode", summary="区 × 方式 · District x mode with margins")
async def district_mode(pool: NamedDependency[Any], grain: GrainQ, period: PeriodQ) -> DistrictMode:
    async with pool.acquire() as conn:
        return await service.district_mode(conn, grain, period)


@get("/enterprises/emissions", summary="企业排放 · Enterprises' emissions by district or industry")
async def enterprise_emissions(
    pool: NamedDependency[Any],
    period: PeriodQ,
    grain: Annotated[Literal["month", "year"], QueryParameter()] = "year",
    by: Annotated[Literal["district", "industry"], QueryParameter()] = "district",
) -> EnterpriseTable:
    async with pool.acquire() as conn:
        return await service.enterprise_table(conn, grain, period, by)


@get("/enterprises/series", summary="企业排放时间序列 · Enterprises' emissions over time")
async def enterprise_series(
    pool: NamedDependency[Any],
    start: PeriodQ,
    end: PeriodQ,
    grain: Annotated[Literal["month", "year"], QueryParameter()] = "month",
    district: DistrictQ = None,
    industry: Annotated[str | None, QueryParameter(pattern=r"^[A-T]([0-9]{2,4})?$")] = None,
) -> EnterpriseSeries:
    async with pool.acquire() as conn:
        return await service.enterprise_series(
            conn, grain, start, end, district=district, industry=industry
        )


@get("/enterprises/grades", summary="企业等级分布 · Enterprise grade distribution")
async def enterprise_grades(
    pool: NamedDependency[Any],
    year: YearQ,
    by: Annotated[Literal["district", "industry"] | None, QueryParameter()] = None,
) -> Grades:
    async with pool.acquire() as conn:
        return await service.grade_distribution(conn, year, by)


@get(
    "/enterprises/retrofit",
    summary="四、五级企业名单（改造清单） · Grade 4-5 enterprises (gov_admin; audited)",
    guards=[GOV_ADMIN],
)
async def retrofit(
    pool: NamedDependency[Any],
    settings: NamedDependency[Settings],
    gov_caller: NamedDependency[GovCaller],
    year: YearQ,
) -> RetrofitList:
    async with transaction(pool) as tx:
        return await service.retrofit_list(tx, year, settings.enterprises, actor=gov_caller.actor)


@get("/liability", summary="积分负债 · The programme's points liability")
async def liability(
    pool: NamedDependency[Any],
    unit: Annotated[Literal["month", "quarter", "year"], QueryParameter()] = "month",
) -> Liability:
    async with pool.acquire() as conn:
        return await service.liability(conn, unit)


@get("/index", summary="双碳指数 · The dual-carbon index of a year")
async def dual_carbon_index(
    pool: NamedDependency[Any], settings: NamedDependency[Settings], year: YearQ
) -> DualCarbonIndex:
    async with pool.acquire() as conn:
        return await service.dual_carbon_index(conn, year, settings.reporting)


@get("/scenarios/kaya", summary="达峰路径情景（Kaya） · Peak-path scenario (Kaya identity)")
async def kaya(
    base_year: YearQ,
    population: Annotated[float, QueryParameter(gt=0, le=1e10)],
    gdp_per_capita: Annotated[float, QueryParameter(gt=0, le=1e8)],
    energy_intensity: Annotated[float, QueryParameter(gt=0, le=100)],
    carbon_intensity: Annotated[float, QueryParameter(gt=0, le=100)],
    years: Annotated[int, QueryParameter(ge=1, le=100)] = 30,
    population_growth: RateQ = 0.0,
    population_drift: DriftQ = 0.0,
    gdp_growth: RateQ = 0.0,
    gdp_drift: DriftQ = 0.0,
    energy_intensity_growth: RateQ = 0.0,
    energy_intensity_drift: DriftQ = 0.0,
    carbon_intensity_growth: RateQ = 0.0,
    carbon_intensity_drift: DriftQ = 0.0,
) -> KayaResult:
    return service.kaya(
        base_year=base_year,
        years=years,
        population=service.Path(base=population, rate=population_growth, drift=population_drift),
        gdp_per_capita=service.Path(base=gdp_per_capita, rate=gdp_growth, drift=gdp_drift),
        energy_intensity=service.Path(
            base=energy_intensity, rate=energy_intensity_growth, drift=energy_intensity_drift
        ),
        carbon_intensity=service.Path(
            base=carbon_intensity, rate=carbon_intensity_growth, drift=carbon_intensity_drift
        ),
    )


@post(
    "/scenarios/decision",
    status_code=200,
    summary="决策情景：新建项目与能源替代对达峰路径的影响 · "
    "Decision scenario: planned projects and energy substitutions on the peak path",
    description=(
        "在 Kaya 达峰路径上叠加拟建项目（自投产日起的年排放）和能源替代（供能方新增排放减去用能方"
        "避免的排放），回答是否仍按目标年达峰，以及需要削减或吸收的缺口。\n\n"
        "Adds planned projects (annual emissions from their start date) and energy substitutions "
        "(the supplier's added minus the consumers' avoided emissions) to the Kaya path, and "
        "answers whether the region still peaks by the target year and the gap to compensate "
        '(docs/reporting.md, "Decision scenarios"). Computes only; stores nothing.'
    ),
)
async def decision_scenario(data: JSONBody[DecisionIn]) -> DecisionResult:
    return service.decision(data)


@post("/peak-test", status_code=200, summary="达峰检验（C40） · Peak test on an annual series")
async def peak_test(data: JSONBody[PeakTestIn]) -> PeakTest:
    return service.peak_test(data.series, current_year=data.current_year or datetime.now(UTC).year)


@get(
    "/peak-test/enterprise-emissions",
    summary="企业排放达峰检验 · Peak test on the enterprises' annual emissions",
)
async def emissions_peak_test(
    pool: NamedDependency[Any], first_year: YearQ, last_year: YearQ
) -> PeakTest:
    async with pool.acquire() as conn:
        found = await service.emissions_series(conn, first_year, last_year)
    values = [SeriesValue(year=y, value=float(c.value)) for y, c in found if c.value is not None]
    if not values:
        raise ReportNotFound("No published annual emissions in that range.")
    return service.peak_test(values, current_year=datetime.now(UTC).year)


@get("/exports/travel.csv", summary="导出 CSV · Travel by district and mode (CSV)", media_type=CSV)
async def travel_csv(
    pool: NamedDependency[Any],
    settings: NamedDependency[Settings],
    grain: GrainQ,
    start: PeriodQ,
    end: PeriodQ,
) -> Response[bytes]:
    async with pool.acquire() as conn:
        body = await service.travel_csv(conn, grain, start, end, settings.reporting)
    return Response(
        content=body,
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="travel-{grain}-{start}.csv"'},
    )


@get(
    "/exports/datapackage.zip",
    summary="导出数据包 · A year as a Frictionless Data Package (zip)",
    media_type=ZIP,
)
async def datapackage(
    pool: NamedDependency[Any], settings: NamedDependency[Settings], year: YearQ
) -> Response[bytes]:
    async with pool.acquire() as conn:
        body = await service.datapackage(conn, year, settings.reporting, datetime.now(UTC))
    return Response(
        content=body,
        media_type=ZIP,
        headers={"Content-Disposition": f'attachment; filename="tanpuhui-{year}.zip"'},
    )


@get("/annual/{year:int}", summary="年度汇总 · The annual summary")
async def annual(
    pool: NamedDependency[Any], settings: NamedDependency[Settings], year: FromPath[int]
) -> service.AnnualSummary:
    if not 2001 <= year <= 2100:
        raise ReportNotFound("Annual summaries exist for the years 2001 to 2100.")
    async with pool.acquire() as conn:
        return await service.annual_summary(conn, year, settings.reporting, datetime.now(UTC))


@get(
    "/reconciliation",
    summary="对账结果 · The last reconciliation of rollups and ledger (gov_admin)",
    guards=[GOV_ADMIN],
)
async def reconciliation(pool: NamedDependency[Any]) -> Reconciliation:
    async with pool.acquire() as conn:
        found = await service.last_reconciliation(conn)
    if found is None:
        raise ReportNotFound("No reconciliation has run yet.")
    return found


HANDLERS = [
    totals,
    series,
    by_mode,
    by_district,
    district_mode,
    enterprise_emissions,
    enterprise_series,
    enterprise_grades,
    enterprise_synergy,
    retrofit,
    liability,
    dual_carbon_index,
    kaya,
    decision_scenario,
    peak_test,
    emissions_peak_test,
    travel_csv,
    datapackage,
    annual,
    reconciliation,
]
_RANGE = ("report_range_invalid",)
# Each route's own codes in the served OpenAPI, beside the guard's and validation's.
document(
    HANDLERS,
    {
        **{
            h.handler_name: _RANGE
            for h in (totals, series, by_mode, by_district, district_mode, enterprise_emissions)
        },
        **{
            h.handler_name: _RANGE
            for h in (enterprise_series, enterprise_grades, retrofit, travel_csv, datapackage)
        },
        "dual_carbon_index": (*_RANGE, "index_weights_invalid"),
        "kaya": ("scenario_invalid",),
        "decision_scenario": ("scenario_invalid",),
        "peak_test": ("scenario_invalid",),
        "emissions_peak_test": (*_RANGE, "scenario_invalid", "report_not_found"),
        "annual": (*_RANGE, "report_not_found"),
        "reconciliation": ("report_not_found",),
        "enterprise_synergy": _RANGE,
    },
)

gov_reports_router = Router(
    path="/api/gov/v1/reports",
    route_handlers=HANDLERS,
    guards=[GOV_READ],
    dependencies={"gov_caller": provide_gov_caller},
    tags=["gov-reports"],
)
