"""Quantification: reduction = baseline emissions - project emissions, with the methodology
version in force at the event's time; household baselines; caps per resident per behaviour."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import msgspec

from behaviours.reference import Reference
from behaviours.rules import Item, Reason, programme_day
from behaviours.settings import IngestSettings

_PER_CAPITA = {
    "electricity": "baseline_kwh_per_person_day",
    "gas": "baseline_gas_m3_per_person_day",
    "water": "baseline_water_m3_per_person_day",
}


def whole_grams(grams: float) -> int:
    """Conservative: whole grams, rounded down (after forgiving binary floating-point dust, so
    50 kWh x 570.3 g is 28,515 g, not 28,514)."""
    return max(0, math.floor(grams + 1e-6))


def quantify(it: Item) -> None:
    """Set ``reduction_g`` for travel, steps and vehicles (households: :func:`household`)."""
    f = it.factor
    if f is None or not it.ok:
        return
    if f.unit in ("pkm", "km") and it.kind != "ev_mileage":
        grams = f.factor_g * (it.distance_m or 0) / 1000
    elif f.unit == "step":
        grams = f.factor_g * (it.quantity or 0)
    elif it.kind == "ev_mileage":
        grams = f.factor_g * (it.quantity or 0) - (f.project_g_per_kwh or 0) * it.kwh
    else:
        return
    it.reduction_g = whole_grams(grams)
    if it.reduction_g <= 0:
        it.reject(Reason.NO_REDUCTION)


def _years_back(at: datetime, years: int) -> datetime:
    try:
        return at.replace(year=at.year - years)
    except ValueError:  # 29 February
        return at.replace(year=at.year - years, day=28)


def household(items: Sequence[Item], history: Sequence[Any], settings: IngestSettings) -> None:
    """Against the same months of the previous 2 years (pro rata over overlapping readings),
    or the configured per-capita baseline when the account has no such history."""
    by_account: dict[tuple[str, str], list[Any]] = {}
    for row in history:
        by_account.setdefault((row["mode"], row["account"]), []).append(row)
    for it in items:
        if not it.ok or it.kind != "meter_reading" or it.factor is None:
            continue
        days = (it.ended_at - it.started_at).total_seconds() / 86400
        if days <= 0:
            it.reject(Reason.INVALID_TIME_RANGE)
            continue
        rows = by_account.get((it.mode, it.account or ""), [])
        baselines: list[float] = []
        for k in (1, 2):
            lo, hi = _years_back(it.started_at, k), _years_back(it.ended_at, k)
            covered = used = 0.0
            for r in rows:
                span = (r["ended_at"] - r["started_at"]).total_seconds()
                overlap = (min(hi, r["ended_at"]) - max(lo, r["started_at"])).total_seconds()
                if span > 0 and overlap > 0:
                    covered += overlap
                    used += r["quantity"] * overlap / span
            if covered >= 0.9 * (hi - lo).total_seconds():
                baselines.append(used * (hi - lo).total_seconds() / covered)
        if baselines:
            baseline = sum(baselines) / len(baselines)
            how = f"same months of the previous {len(baselines)} year(s)"
        else:
            per_day = float(getattr(settings, _PER_CAPITA[it.mode]))
            baseline = per_day * it.household_size * days
            how = "per-capita baseline"
        saved = baseline - (it.quantity or 0)
        it.reduction_g = whole_grams(saved * it.factor.factor_g)
        if it.reduction_g <= 0:
            it.reject(
                Reason.NO_REDUCTION,
                f"Use {it.quantity:g} is not below the baseline {baseline:.1f} ({how}).",
            )


class Usage(msgspec.Struct):
    """Per-resident running totals: ``y[year][behaviour] = g``, ``d[day][behaviour] = [g, n]``."""

    y: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    d: dict[str, dict[str, list[int]]] = msgspec.field(default_factory=dict)


_usage_decoder = msgspec.json.Decoder(Usage)
_usage_encoder = msgspec.json.Encoder()


def decode_usage(text: str | None) -> Usage:
    return _usage_decoder.decode(text) if text and text != "{}" else Usage()


def encode_usage(u: Usage, today: date, keep_days: int) -> str:
    oldest = (today - timedelta(days=keep_days + 1)).isoformat()
    u.d = {k: v for k, v in u.d.items() if k >= oldest}
    u.y = {k: v for k, v in u.y.items() if int(k) >= today.year - 1}
    return _usage_encoder.encode(u).decode()


def apply_caps(
    items: Sequence[Item], ref: Reference, usage: dict[str, Usage], zone: tzinfo
) -> set[str]:
    """Clip or reject by the daily / yearly caps, in event order; update ``usage``. Days and
    years are the programme's calendar (``zone``, ``IngestPolicy.zone``). Returns the
    residents whose usage changed."""
    changed: set[str] = set()
    for it in sorted(items, key=lambda i: (i.resident_id or "", i.started_at)):
        if not it.ok or it.factor is None or it.resident_id is None:
            continue
        caps = ref.methodologies.caps(it.factor)
        u = usage.setdefault(it.resident_id, Usage())
        day = programme_day(it.started_at, zone)
        year = str(day.year)
        beh = it.behaviour
        yearly = u.y.setdefault(year, {})
        grams = it.reduction_g
        periodic = it.kind in ("meter_reading", "ev_mileage")
        daily = None if periodic else u.d.setdefault(day.isoformat(), {}).setdefault(beh, [0, 0])
        max_events = caps.daily_max_events
        if max_events is not None and daily is not None and daily[1] >= max_events:
            it.reject(Reason.DAILY_EVENTS_CAP, f"At most {max_events} rewarded {beh} a day.")
            continue
        if caps.daily_cap_g is not None:
            if periodic:
                days = max(1, round((it.ended_at - it.started_at).total_seconds() / 86400))
                grams = min(grams, caps.daily_cap_g * days)
            elif daily is not None:
                room = caps.daily_cap_g - daily[0]
                if room <= 0:
                    it.reject(
                        Reason.DAILY_CAP_REACHED,
                        f"Daily {beh} cap of {caps.daily_cap_g} g reached.",
                    )
                    continue
                grams = min(grams, room)
        if caps.yearly_cap_g is not None:
            room = caps.yearly_cap_g - yearly.get(beh, 0)
            if room <= 0:
                it.reject(
                    Reason.YEARLY_CAP_REACHED, f"Yearly {beh} cap of {caps.yearly_cap_g} g reached."
                )
                continue
            grams = min(grams, room)
        it.reduction_g = grams
        yearly[beh] = yearly.get(beh, 0) + grams
        if daily is not None:
            daily[0] += grams
            daily[1] += 1
        changed.add(it.resident_id)
    return changed
