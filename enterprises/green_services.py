"""The green-services catalogue and its recommendations (Yuhang 碳眼: "green services recommended
by account and index"), and the savings of the catalogue's actions (Huzhou's energy-efficiency
bill: enterprises.efficiency_bill).

The catalogue is data (``enterprises/green_services.json``, or the file named by
``TANPUHUI_ENTERPRISES_GREEN_SERVICES_FILE``), checked when the settings load (a broken one
stops the start: :class:`CatalogueInvalid` names the field at fault). A service is recommended
when **any** of its rules matches; a rule matches when **every** condition it names holds for
the enterprise's facts of the period (:class:`Facts`):

- ``grades``: the carbon-efficiency grade of the year is one of these (enterprises.grades);
- ``bands``: its intensity band is one of these;
- ``industries``: its GB/T 4754 code starts with one of these prefixes (``C``, ``C30``);
- ``alerts``: a budget alert of one of these metrics is raised for a period overlapping it;
- ``equipment``: one of its meters carries one of these equipment classes;
- ``structure_below``: its zero-carbon share of electricity is below this;
- ``uses``: its annual use of these kinds reaches ``min_tce`` (t ce, together) or, for one kind,
  ``min_quantity`` (the kind's canonical unit).

Each match gives the rule's reason in both languages, its ``{placeholders}`` filled with the
facts its conditions read. An action's ``savings`` are terms of two formulas, computed from the
enterprise's own annual use and the factors its emissions were recorded with (never a constant
per service):

- ``share_of_use``: saved = share × annual use of each kind; yuan = saved × the catalogue's
  price; t CO2 = saved × the enterprise's own factor of that kind (its recorded emissions over
  its quantity); t ce = saved × the kind's energy coefficient;
- ``capacity_charge`` (transformer right-sizing): capacity ≈ annual kWh / (8,760 h × load
  factor × power factor) kVA; yuan = cut × capacity × the capacity charge × 12 months.

The annual use of a period is its use × 12 / the months with data in it (a month's bill
annualises its month; a year with 12 months of data is itself).

    def catalogue(path: str = "") -> Catalogue                 # loaded once per path
    def load(text: bytes | str) -> Catalogue                   # CatalogueInvalid
    async def facts(conn, enterprise_id, start, end, settings) -> Facts
    def match(cat: Catalogue, facts: Facts) -> list[Recommendation]
    async def recommend(conn, enterprise_id, year, settings) -> Recommendations
"""

from __future__ import annotations

import functools
import math
import string
import uuid
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta, Struct

from enterprises import accounting, alerts, grades, users
from enterprises import efficiency_repository as repo
from enterprises.activity import CANONICAL_UNITS, EnergyKind
from enterprises.alerts import Metric
from enterprises.energy_schemas import EquipmentClass
from enterprises.factors import Basis
from enterprises.grades import Band

if TYPE_CHECKING:
    from enterprises.settings import EnterprisesSettings

CATALOGUE_FILE: Final = Path(__file__).with_name("green_services.json")
HOURS_PER_YEAR: Final = 8760
Category = Literal["consulting", "retrofit", "green_power", "finance", "certification"]
Id = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Text500 = Annotated[str, Meta(min_length=1, max_length=500)]
Prefix = Annotated[str, Meta(pattern=r"^[A-T]([0-9]{1,4})?$")]
Fraction = Annotated[float, Meta(gt=0, lt=1)]
Positive = Annotated[float, Meta(gt=0, lt=1e15)]


class CatalogueInvalid(ValueError):
    """The green-services catalogue breaks a rule (the message names the field)."""


# --- the catalogue's shape ---------------------------------------------------------------------


class Text(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    zh: Text500
    en: Text500


class Uses(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kinds: Annotated[list[EnergyKind], Meta(min_length=1)]
    min_tce: Positive | None = None  # the kinds' annual energy together, t ce
    min_quantity: Positive | None = None  # one kind's annual quantity, canonical unit


class Rule(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: Id
    reason: Text
    grades: Annotated[list[Annotated[int, Meta(ge=1, le=5)]], Meta(min_length=1)] | None = None
    bands: Annotated[list[Band], Meta(min_length=1)] | None = None
    industries: Annotated[list[Prefix], Meta(min_length=1)] | None = None
    alerts: Annotated[list[Metric], Meta(min_length=1)] | None = None
    equipment: Annotated[list[EquipmentClass], Meta(min_length=1)] | None = None
    structure_below: Annotated[float, Meta(gt=0, le=1)] | None = None
    uses: Uses | None = None


class ShareOfUse(
    Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="formula",
    tag="share_of_use",
):
    kinds: Annotated[list[EnergyKind], Meta(min_length=1)]
    share: Fraction


class CapacityCharge(
    Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="formula",
    tag="capacity_charge",
):
    capacity_cut: Fraction
    load_factor: Annotated[float, Meta(gt=0, le=1)]
    power_factor: Annotated[float, Meta(gt=0, le=1)]


Term = ShareOfUse | CapacityCharge


class Service(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: Id
    category: Category
    name: Text
    description: Text
    source: Text500
    rules: Annotated[list[Rule], Meta(min_length=1)]
    savings: list[Term] = msgspec.field(default_factory=list)


class Prices(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    source: Text500
    energy_yuan_per_unit: dict[EnergyKind, Annotated[float, Meta(ge=0, lt=1e9)]]
    capacity_charge_yuan_per_kva_month: Annotated[float, Meta(ge=0, lt=1e6)]
    carbon_yuan_per_t: Annotated[float, Meta(ge=0, lt=1e6)]


class Catalogue(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    about: str
    version: Annotated[int, Meta(ge=1)]
    prices: Prices
    services: Annotated[list[Service], Meta(min_length=1)]


# The placeholders a reason may use, and the condition that must be in its rule to fill it
# (None: always known).
PLACEHOLDERS: Final[dict[str, str | None]] = {
    "industry": None,
    "grade": "grades",
    "band": "bands",
    "alerts": "alerts",
    "equipment": "equipment",
    "share": "structure_below",
}
CONDITIONS: Final = (
    "grades",
    "bands",
    "industries",
    "alerts",
    "equipment",
    "structure_below",
    "uses",
)
_FORMATTER = string.Formatter()


def _problems(cat: Catalogue) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    prices = cat.prices.energy_yuan_per_unit
    for i, s in enumerate(cat.services):
        at = f"services[{i}] ({s.id})"
        if s.id in seen:
            out.append(f"{at}: the id is listed twice")
        seen.add(s.id)
        rule_ids: set[str] = set()
        for j, r in enumerate(s.rules):
            where = f"{at}.rules[{j}] ({r.id})"
            if r.id in rule_ids:
                out.append(f"{where}: the rule id is listed twice")
            rule_ids.add(r.id)
            present = {c for c in CONDITIONS if getattr(r, c) is not None}
            if not present:
                out.append(
                    f"{where}: a rule names at least one condition ({', '.join(CONDITIONS)})"
                )
            if r.uses is not None:
                u = r.uses
                if (u.min_tce is None) == (u.min_quantity is None):
                    out.append(f"{where}.uses: exactly one of min_tce and min_quantity")
                if u.min_quantity is not None and len(u.kinds) != 1:
                    out.append(f"{where}.uses: min_quantity applies to exactly one kind")
            for lang in ("zh", "en"):
                text = getattr(r.reason, lang)
                try:
                    names = {f for _, f, _, _ in _FORMATTER.parse(text) if f is not None}
                except ValueError as exc:
                    out.append(f"{where}.reason.{lang}: {exc}")
                    continue
                for name in sorted(names):
                    if name not in PLACEHOLDERS:
                        out.append(f"{where}.reason.{lang}: unknown placeholder {{{name}}}")
                    elif (need := PLACEHOLDERS[name]) is not None and need not in present:
                        out.append(
                            f"{where}.reason.{lang}: {{{name}}} needs the rule's {need} condition"
                        )
        for k, t in enumerate(s.savings):
            where = f"{at}.savings[{k}]"
            kinds = t.kinds if isinstance(t, ShareOfUse) else ["electricity"]
            for kind in kinds:
                if kind not in prices:
                    out.append(f"{where}: no price of {kind} in prices.energy_yuan_per_unit")
    return out


def load(text: bytes | str) -> Catalogue:
    """The catalogue of ``text`` (JSON), checked: its shape (types, ranges, known kinds,
    grades, industries, alert metrics, equipment classes; no unknown field) and its rules
    (each rule names a condition; placeholders known and filled by the rule's conditions; a
    price for every kind an action saves). ``CatalogueInvalid`` names every problem."""
    try:
        cat = msgspec.json.decode(text, type=Catalogue)
    except msgspec.ValidationError as exc:
        raise CatalogueInvalid(f"green services catalogue: {exc}") from None
    except msgspec.DecodeError as exc:
        raise CatalogueInvalid(f"green services catalogue: not JSON ({exc})") from None
    problems = _problems(cat)
    if problems:
        raise CatalogueInvalid("green services catalogue: " + "; ".join(problems))
    return cat


@functools.cache
def catalogue(path: str = "") -> Catalogue:
    """The catalogue of ``path`` (empty: the packaged one), loaded once per process."""
    file = Path(path) if path else CATALOGUE_FILE
    try:
        text = file.read_bytes()
    except OSError as exc:
        raise CatalogueInvalid(f"green services catalogue {file}: {exc.strerror}") from None
    return load(text)


# --- the facts a rule reads --------------------------------------------------------------------


class Use(Struct, frozen=True, kw_only=True):
    """One energy kind of the period, from the enterprise's recorded emissions."""

    kind: str
    quantity: float  # the period's, canonical unit
    unit: str
    annual: float  # quantity × 12 / months with data
    energy_kgce: float  # the period's
    emissions_kg: float  # the period's (negative for green electricity: the deduction)
    factor_kg: float | None  # kg CO2 per unit, as recorded (emissions / quantity)
    kgce_per_unit: float | None
    factor_refs: list[str]  # the factors the rows used (ref@vN)
    sources: list[str]  # meter | report


class Facts(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    start: date
    end: date
    industry: str  # GB/T 4754 code as registered
    grade: int | None  # of start's year
    band: Band | None
    intensity: float | None  # L of the year, t CO2 / 10,000 yuan
    alerts: list[str]  # metrics with a raised alert overlapping the period
    equipment: list[str]  # equipment classes of the enterprise's meters
    zero_carbon_share: float | None  # of the period's electricity
    months: int  # months of the period with energy data
    uses: dict[str, Use]


def zero_carbon_share(quantities: dict[str, float]) -> float | None:
    """On-site renewables and claimed green electricity over grid plus on-site electricity (the
    structure indicator's share, enterprises.grades)."""
    grid = quantities.get("electricity", 0.0)
    onsite = quantities.get("onsite_renewable", 0.0)
    green = min(quantities.get("green_electricity", 0.0), grid)
    if grid + onsite <= 0:
        return None
    return (onsite + green) / (grid + onsite)


def uses_of(months: list[accounting.MonthEmissions]) -> tuple[dict[str, Use], int]:
    """The energy kinds of ``months`` summed, annualised over the months with data."""
    acc: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"q": 0.0, "kgce": 0.0, "kg": 0.0, "refs": set(), "src": set(), "coef": None}
    )
    with_data = 0
    for m in months:
        energy = [k for k in m.kinds if k.kind not in accounting.ECONOMIC]
        if energy:
            with_data += 1
        for k in energy:
            a = acc[k.kind]
            a["q"] += k.quantity
            a["kgce"] += k.energy_kgce
            a["kg"] += k.emissions_kg
            a["src"].add(k.source)
            if k.factor_ref is not None:
                a["refs"].add(f"{k.factor_ref}@v{k.factor_version}")
            if k.quantity:
                a["coef"] = k.energy_kgce / k.quantity
    out = {}
    for kind, a in sorted(acc.items()):
        q = a["q"]
        out[kind] = Use(
            kind=kind,
            quantity=q,
            unit=CANONICAL_UNITS.get(kind, ""),
            annual=q * 12 / with_data if with_data else 0.0,
            energy_kgce=a["kgce"],
            emissions_kg=a["kg"],
            factor_kg=a["kg"] / q if q > 0 else None,
            kgce_per_unit=a["coef"],
            factor_refs=sorted(a["refs"]),
            sources=sorted(a["src"]),
        )
    return out, with_data


async def facts(
    conn: Any,
    enterprise_id: uuid.UUID,
    start: date,
    end: date,
    settings: EnterprisesSettings,
    *,
    months: list[accounting.MonthEmissions] | None = None,
) -> Facts:
    """What the rules read of the enterprise for the months [start, end): its registered
    industry, the grade and band of ``start``'s year, the budget alerts raised for periods
    overlapping it, its meters' equipment classes, and its energy use (``months``: the
    period's recorded emissions when the caller has them)."""
    profile = await users.enterprise_profile(conn, enterprise_id)
    if months is None:
        months = await accounting.monthly_emissions(
            conn, enterprise_id, start=start, end=end, basis=Basis.of(settings)
        )
    uses, with_data = uses_of(months)
    explained = await grades.explain(conn, enterprise_id, start.year, settings)
    g = explained.assessment.grade if explained is not None else None
    raised: list[str] = sorted(
        {
            str(a.metric)
            for a in await alerts.alerts(conn, enterprise_id, raised_only=True)
            if a.period_start < end and alerts.period_end(a.period_kind, a.period_start) > start
        }
    )
    return Facts(
        enterprise_id=enterprise_id,
        start=start,
        end=end,
        industry=profile.industry,
        grade=g.grade if g is not None else None,
        band=g.band if g is not None else None,
        intensity=g.intensity if g is not None else None,
        alerts=raised,
        equipment=await repo.equipment_classes(conn, enterprise_id),
        zero_carbon_share=zero_carbon_share({k: u.quantity for k, u in uses.items()}),
        months=with_data,
        uses=uses,
    )


# --- matching ----------------------------------------------------------------------------------

Matched = dict[str, float | int | str | list[str]]


class Reason(Struct, frozen=True, kw_only=True):
    rule: str
    zh: str
    en: str
    matched: Matched  # the facts the rule's conditions read


def _share_text(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def _rule_matches(r: Rule, f: Facts) -> Matched | None:
    """The facts the rule read when every condition holds, else None."""
    seen: Matched = {"industry": f.industry}
    if r.grades is not None:
        if f.grade not in r.grades:
            return None
        seen["grade"] = f.grade
    if r.bands is not None:
        if f.band not in r.bands:
            return None
        seen["band"] = f.band
    if r.industries is not None and not any(f.industry.startswith(p) for p in r.industries):
        return None
    if r.alerts is not None:
        hit = [str(a) for a in f.alerts if a in r.alerts]
        if not hit:
            return None
        seen["alerts"] = hit
    if r.equipment is not None:
        found = [str(e) for e in f.equipment if e in r.equipment]
        if not found:
            return None
        seen["equipment"] = found
    if r.structure_below is not None:
        if f.zero_carbon_share is None or not f.zero_carbon_share < r.structure_below:
            return None
        seen["zero_carbon_share"] = round(f.zero_carbon_share, 6)
    if r.uses is not None:
        u = r.uses
        if u.min_quantity is not None:
            annual = f.uses[u.kinds[0]].annual if u.kinds[0] in f.uses else 0.0
            if annual < u.min_quantity:
                return None
            seen[f"annual_{u.kinds[0]}"] = round(annual, 6)
        else:
            tce = math.fsum(
                f.uses[k].energy_kgce * 12 / f.months / 1000 for k in u.kinds if k in f.uses
            )
            if u.min_tce is None or tce < u.min_tce:
                return None
            seen["annual_tce"] = round(tce, 6)
    return seen


def _listed(value: object) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list) else ""


def _reason(r: Rule, f: Facts, seen: Matched) -> Reason:
    values = {
        "industry": f.industry,
        "grade": "" if f.grade is None else str(f.grade),
        "band": f.band or "",
        "alerts": _listed(seen.get("alerts")),
        "equipment": _listed(seen.get("equipment")),
        "share": _share_text(f.zero_carbon_share),
    }
    return Reason(
        rule=r.id, zh=r.reason.zh.format(**values), en=r.reason.en.format(**values), matched=seen
    )


class Input(Struct, frozen=True, kw_only=True):
    """One input of a saving's formula, with where it comes from."""

    name: str
    value: float
    unit: str
    source: str  # enterprise (its own data) | factor (its recorded factor) | catalogue


class TermSaving(Struct, frozen=True, kw_only=True):
    formula: Literal["share_of_use", "capacity_charge"]
    kind: str  # the energy kind the term saves or prices
    inputs: list[Input]
    saved_quantity: float  # a year, the kind's canonical unit (0: a charge, not energy)
    unit: str
    yuan_per_year: float
    t_co2_per_year: float
    tce_per_year: float
    expression: str  # the arithmetic written out


class Savings(Struct, frozen=True, kw_only=True):
    yuan_per_year: float
    t_co2_per_year: float
    tce_per_year: float
    carbon_value_yuan_per_year: float  # t CO2 × the catalogue's carbon price
    terms: list[TermSaving]


def _n(x: float) -> str:
    return f"{x:,.6g}" if abs(x) < 1e6 else f"{x:,.0f}"


def _share_terms(t: ShareOfUse, uses: dict[str, Use], prices: Prices) -> list[TermSaving]:
    out = []
    for kind in t.kinds:
        u = uses.get(kind)
        if u is None or u.annual <= 0:
            continue
        price = prices.energy_yuan_per_unit[kind]
        factor = u.factor_kg or 0.0
        coef = u.kgce_per_unit or 0.0
        saved = t.share * u.annual
        yuan, kg, kgce = saved * price, saved * factor, saved * coef
        out.append(
            TermSaving(
                formula="share_of_use",
                kind=kind,
                inputs=[
                    Input(name="annual_use", value=u.annual, unit=u.unit, source="enterprise"),
                    Input(name="share", value=t.share, unit="1", source="catalogue"),
                    Input(name="price", value=price, unit=f"yuan/{u.unit}", source="catalogue"),
                    Input(name="factor", value=factor, unit=f"kg CO2/{u.unit}", source="factor"),
                    Input(
                        name="energy_coefficient",
                        value=coef,
                        unit=f"kgce/{u.unit}",
                        source="factor",
                    ),
                ],
                saved_quantity=saved,
                unit=u.unit,
                yuan_per_year=yuan,
                t_co2_per_year=kg / 1000,
                tce_per_year=kgce / 1000,
                expression=(
                    f"{_n(t.share)} × {_n(u.annual)} {u.unit} = {_n(saved)} {u.unit}; "
                    f"× {_n(price)} yuan = {_n(yuan)} yuan; × {_n(factor)} kg = "
                    f"{_n(kg / 1000)} t CO2; × {_n(coef)} kgce = {_n(kgce / 1000)} t ce"
                ),
            )
        )
    return out


def _capacity_term(t: CapacityCharge, uses: dict[str, Use], prices: Prices) -> list[TermSaving]:
    u = uses.get("electricity")
    if u is None or u.annual <= 0:
        return []
    charge = prices.capacity_charge_yuan_per_kva_month
    kva = u.annual / (HOURS_PER_YEAR * t.load_factor * t.power_factor)
    yuan = t.capacity_cut * kva * charge * 12
    return [
        TermSaving(
            formula="capacity_charge",
            kind="electricity",
            inputs=[
                Input(name="annual_use", value=u.annual, unit="kWh", source="enterprise"),
                Input(name="hours", value=HOURS_PER_YEAR, unit="h", source="catalogue"),
                Input(name="load_factor", value=t.load_factor, unit="1", source="catalogue"),
                Input(name="power_factor", value=t.power_factor, unit="1", source="catalogue"),
                Input(name="capacity", value=kva, unit="kVA", source="enterprise"),
                Input(name="capacity_cut", value=t.capacity_cut, unit="1", source="catalogue"),
                Input(
                    name="capacity_charge", value=charge, unit="yuan/kVA/month", source="catalogue"
                ),
            ],
            saved_quantity=0.0,
            unit="kWh",
            yuan_per_year=yuan,
            t_co2_per_year=0.0,
            tce_per_year=0.0,
            expression=(
                f"capacity = {_n(u.annual)} kWh / ({HOURS_PER_YEAR} h × {_n(t.load_factor)} × "
                f"{_n(t.power_factor)}) = {_n(kva)} kVA; {_n(t.capacity_cut)} × {_n(kva)} kVA "
                f"× {_n(charge)} yuan × 12 = {_n(yuan)} yuan"
            ),
        )
    ]


def savings(service: Service, uses: dict[str, Use], prices: Prices) -> Savings | None:
    """The service's savings a year from ``uses`` (None: the service is not an action)."""
    if not service.savings:
        return None
    terms: list[TermSaving] = []
    for t in service.savings:
        if isinstance(t, ShareOfUse):
            terms += _share_terms(t, uses, prices)
        else:
            terms += _capacity_term(t, uses, prices)
    t_co2 = math.fsum(x.t_co2_per_year for x in terms)
    return Savings(
        yuan_per_year=math.fsum(x.yuan_per_year for x in terms),
        t_co2_per_year=t_co2,
        tce_per_year=math.fsum(x.tce_per_year for x in terms),
        carbon_value_yuan_per_year=t_co2 * prices.carbon_yuan_per_t,
        terms=terms,
    )


class Recommendation(Struct, frozen=True, kw_only=True):
    service: str
    category: Category
    name: Text
    description: Text
    source: str
    reasons: list[Reason]
    savings: Savings | None  # an action's, a year (None: not an action)


def match(cat: Catalogue, f: Facts) -> list[Recommendation]:
    """The catalogue's services any rule of which matches ``f``, in the catalogue's order,
    each with the reasons of every rule that matched and (an action) its savings."""
    out = []
    for s in cat.services:
        reasons = []
        for r in s.rules:
            seen = _rule_matches(r, f)
            if seen is not None:
                reasons.append(_reason(r, f, seen))
        if reasons:
            out.append(
                Recommendation(
                    service=s.id,
                    category=s.category,
                    name=s.name,
                    description=s.description,
                    source=s.source,
                    reasons=reasons,
                    savings=savings(s, f.uses, cat.prices),
                )
            )
    return out


class Recommendations(Struct, frozen=True, kw_only=True):
    year: int
    industry: str
    grade: int | None
    band: str | None
    alerts: list[str]
    equipment: list[str]
    zero_carbon_share: float | None
    months_with_data: int
    catalogue_version: int
    prices_source: str
    recommendations: list[Recommendation]


async def recommend(
    conn: Any, enterprise_id: uuid.UUID, year: int, settings: EnterprisesSettings
) -> Recommendations:
    """The services recommended to the enterprise for ``year``, with their reasons and (an
    action) their savings on the year's annualised use."""
    cat = catalogue(settings.green_services_file)
    f = await facts(conn, enterprise_id, date(year, 1, 1), date(year + 1, 1, 1), settings)
    return Recommendations(
        year=year,
        industry=f.industry,
        grade=f.grade,
        band=f.band,
        alerts=f.alerts,
        equipment=f.equipment,
        zero_carbon_share=f.zero_carbon_share,
        months_with_data=f.months,
        catalogue_version=cat.version,
        prices_source=cat.prices.source,
        recommendations=match(cat, f),
    )
