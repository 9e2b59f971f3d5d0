"""The account kinds as data: ``enterprises/account_kinds.json`` loaded, checked, and each
kind's method module resolved by name (``enterprises.kinds.methods.<method>``).

A kind is refused at load (:class:`KindsFileError`, before anything serves) when its method has
no module or the module no ``account`` function, when its schema lacks a field the method
reads (the module's ``REQUIRES``), when its denominator, ``require_one_of`` or grading names a
field it does not have, or when its grading's labels and bounds do not fit (one label more than
bounds, bounds strictly increasing, every value of a ``by_field`` enum bounded).

The generic parts every kind shares live here: :func:`validate` (the activity against the
kind's fields: unknown, missing, type, range, integer, enum; every refused field named),
:func:`denominator`, :func:`grade` and :func:`account` (method + denominator + intensity +
grade)."""

from __future__ import annotations

import importlib
import itertools
import math
import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import msgspec
from msgspec import Struct

from enterprises.grades import COLOURS, GradePolicy, band_of, grade_of
from enterprises.kinds.schemas import (
    Activity,
    Emissions,
    Factors,
    FieldView,
    Grade,
    KindsFile,
    KindSpec,
    KindView,
    Result,
)
from kit.errors import FieldError, InvalidInput

KINDS_FILE: Final = Path(__file__).resolve().parent.parent / "account_kinds.json"
METHODS_PACKAGE: Final = "enterprises.kinds.methods"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$", re.ASCII)
# Why an account has no grade.
NO_DENOMINATOR: Final = "denominator_zero"
NEEDS_BENCHMARK: Final = "industry_benchmark_needed"

Method = Callable[[Activity, Factors], Emissions]


class KindsFileError(ValueError):
    """The kinds' file cannot be used (named kind and reason)."""


class Kind(Struct, frozen=True, kw_only=True):
    name: str
    spec: KindSpec
    account: Method

    @property
    def params(self) -> dict[str, float]:
        return {n: p.value for n, p in self.spec.params.items()}

    def view(self) -> KindView:
        s = self.spec
        return KindView(
            name=self.name,
            title=s.title,
            source=s.source,
            method=s.method,
            self_reported=s.self_reported,
            fields=[
                FieldView(
                    name=n,
                    type=f.type,
                    unit=f.unit,
                    required=f.required,
                    min=f.min,
                    exclusive_min=f.exclusive_min,
                    max=f.max,
                    integer=f.integer,
                    values=list(f.values),
                    description=f.description,
                )
                for n, f in s.fields.items()
            ],
            require_one_of=list(s.require_one_of),
            denominator_unit=s.denominator.unit,
            intensity_unit=s.intensity.unit,
            grading=s.grading,
            params=s.params,
        )


def _method(kind: str, name: str) -> ModuleType:
    if not _NAME.fullmatch(name):
        raise KindsFileError(f"kind {kind!r}: method {name!r} is not a method's name")
    try:
        module = importlib.import_module(f"{METHODS_PACKAGE}.{name}")
    except ModuleNotFoundError as exc:
        raise KindsFileError(f"kind {kind!r}: no method {name!r} ({exc})") from None
    if not callable(getattr(module, "account", None)):
        raise KindsFileError(f"kind {kind!r}: method {name!r} has no account() function")
    return module


def _check(name: str, spec: KindSpec, module: ModuleType) -> None:
    def fail(why: str) -> KindsFileError:
        return KindsFileError(f"kind {name!r}: {why}")

    if not _NAME.fullmatch(name):
        raise fail("a kind's name is lower-case letters, digits and _ (at most 40)")
    fields = spec.fields
    missing = [f for f in getattr(module, "REQUIRES", ()) if f not in fields]
    if missing:
        raise fail(f"method {spec.method!r} reads fields the schema lacks: {missing}")
    for f, fs in fields.items():
        if fs.type == "enum" and not fs.values:
            raise fail(f"enum field {f!r} without values")
        if fs.min is not None and fs.max is not None and fs.min > fs.max:
            raise fail(f"field {f!r}: min above max")
    for f in [*spec.denominator.fields, *spec.require_one_of]:
        if f not in fields or fields[f].type != "number":
            raise fail(f"{f!r} is not a number field of the kind")
    g = spec.grading
    if g.rule == "thresholds":
        if isinstance(g.bounds, dict):
            by = g.by_field
            if by is None or by not in fields or fields[by].type != "enum":
                raise fail("bounds by value need by_field, an enum field of the kind")
            if not fields[by].required:
                raise fail(f"by_field {by!r} must be a required field")
            if set(g.bounds) != set(fields[by].values):
                raise fail(f"bounds must be given for every value of {by!r}")
            tables = list(g.bounds.values())
        else:
            if g.by_field is not None:
                raise fail("by_field needs bounds by value")
            tables = [g.bounds]
        for bounds in tables:
            if len(g.labels) != len(bounds) + 1 or not bounds:
                raise fail("a thresholds grading has one label more than bounds")
            if any(b >= c for b, c in itertools.pairwise(bounds)):
                raise fail("bounds must increase strictly")
            if not all(math.isfinite(b) for b in bounds):
                raise fail("bounds must be finite")
    if spec.denominator.constant < 0 or any(w <= 0 for w in spec.denominator.fields.values()):
        raise fail("denominator weights are positive, its constant not negative")
    if not spec.denominator.fields and spec.denominator.constant <= 0:
        raise fail("a denominator needs a field or a positive constant")


def load(path: Path = KINDS_FILE) -> dict[str, Kind]:
    """The kinds of ``path`` by name, each checked and its method resolved (module text)."""
    try:
        data = msgspec.json.decode(path.read_bytes(), type=KindsFile)
    except (OSError, msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise KindsFileError(f"{path.name}: {exc}") from None
    out: dict[str, Kind] = {}
    for name, spec in data.kinds.items():
        module = _method(name, spec.method)
        _check(name, spec, module)
        out[name] = Kind(name=name, spec=spec, account=module.account)
    if not out:
        raise KindsFileError(f"{path.name}: no kinds")
    return out


@cache
def kinds() -> dict[str, Kind]:
    """The programme's kinds (``account_kinds.json``), loaded once."""
    return load()


def kind(name: str) -> Kind | None:
    return kinds().get(name)


# --- the generic parts ------------------------------------------------------------------------


def _refuse(errors: list[FieldError], kind: str) -> InvalidInput:
    return InvalidInput(
        f"Activity of kind {kind!r}: {len(errors)} field(s) refused.",
        code="validation_failed",
        errors=errors,
    )


def problems(k: Kind, activity: Mapping[str, Any]) -> list[FieldError]:
    """Every field of ``activity`` that breaks ``k``'s schema (path ``activity.<field>``)."""
    spec = k.spec
    out: list[FieldError] = []

    def bad(field: str, message: str) -> None:
        out.append(FieldError(path=f"activity.{field}", message=message))

    for f in sorted(activity):
        if f not in spec.fields:
            bad(f, f"Not a field of kind {k.name!r} (fields: {', '.join(spec.fields)}).")
    for f, fs in spec.fields.items():
        if f not in activity:
            if fs.required:
                bad(f, "Required.")
            continue
        v = activity[f]
        if fs.type == "enum":
            if not isinstance(v, str) or v not in fs.values:
                bad(f, f"One of {', '.join(fs.values)}.")
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            bad(f, f"A number ({fs.unit or 'no unit'}).")
            continue
        x = float(v)
        if not math.isfinite(x):
            bad(f, "A finite number.")
        elif fs.integer and not x.is_integer():
            bad(f, "A whole number.")
        elif fs.min is not None and (x <= fs.min if fs.exclusive_min else x < fs.min):
            bad(f, f"{'Above' if fs.exclusive_min else 'At least'} {fs.min:g} {fs.unit}.".strip())
        elif fs.max is not None and x > fs.max:
            bad(f, f"At most {fs.max:g} {fs.unit}.".strip())
    if spec.require_one_of and not any(
        isinstance(activity.get(f), int | float) and float(activity[f]) > 0
        for f in spec.require_one_of
    ):
        bad(
            spec.require_one_of[0],
            f"At least one of {', '.join(spec.require_one_of)} above zero.",
        )
    return out


def validate(k: Kind, activity: Mapping[str, Any]) -> dict[str, float | str]:
    """``activity`` checked against ``k``'s schema (``validation_failed`` naming every refused
    field), numbers as floats, in the schema's field order."""
    errors = problems(k, activity)
    if errors:
        raise _refuse(errors, k.name)
    return {
        f: activity[f] if fs.type == "enum" else float(activity[f])
        for f, fs in k.spec.fields.items()
        if f in activity
    }


def number(activity: Activity, field: str) -> float:
    """A number field's value (0 when absent)."""
    v = activity.get(field, 0.0)
    return float(v) if isinstance(v, int | float) else 0.0


def denominator(k: Kind, activity: Activity) -> float:
    d = k.spec.denominator
    return d.constant + math.fsum(w * number(activity, f) for f, w in d.fields.items())


def grade(
    k: Kind,
    intensity: float | None,
    activity: Activity,
    *,
    benchmark: float | None = None,
    policy: GradePolicy | None = None,
) -> Grade:
    """``k``'s grade of ``intensity`` (:func:`_grade`) with its colour."""
    g = _grade(k, intensity, activity, benchmark=benchmark, policy=policy)
    return msgspec.structs.replace(g, colour=colour(g))


def _grade(
    k: Kind,
    intensity: float | None,
    activity: Activity,
    *,
    benchmark: float | None = None,
    policy: GradePolicy | None = None,
) -> Grade:
    """``k``'s grade of ``intensity`` (see :class:`Grading`). ``industry_benchmark``: K =
    intensity / ``benchmark`` rounded to 4 decimals, graded by ``policy``'s K bounds (the
    settings' defaults when None); without a benchmark no grade (reason
    ``industry_benchmark_needed``) and the intensity band as its label's stand-in."""
    g = k.spec.grading
    if g.rule == "industry_benchmark":
        p = policy or GradePolicy()
        labels = [str(i + 1) for i in range(len(p.k_bounds) + 1)]
        if intensity is None:
            return Grade(
                rule=g.rule,
                label=None,
                value=None,
                bounds=list(p.k_bounds),
                labels=labels,
                reason=NO_DENOMINATOR,
            )
        if benchmark is None or benchmark <= 0:
            return Grade(
                rule=g.rule,
                label=None,
                value=None,
                bounds=list(p.k_bounds),
                labels=labels,
                reason=f"{NEEDS_BENCHMARK}:{band_of(intensity, p.bands)}",
            )
        kv = round(intensity / benchmark, 4)
        return Grade(
            rule=g.rule,
            label=str(grade_of(kv, p.k_bounds)),
            value=kv,
            bounds=list(p.k_bounds),
            labels=labels,
        )
    if isinstance(g.bounds, dict):
        chosen = activity.get(g.by_field or "")
        if not isinstance(chosen, str) or chosen not in g.bounds:
            return Grade(
                rule=g.rule,
                label=None,
                value=None,
                bounds=[],
                labels=list(g.labels),
                reason=f"{g.by_field}_missing",
            )
        bounds = list(g.bounds[chosen])
    else:
        bounds = list(g.bounds)
    labels = list(g.labels)
    if intensity is None:
        return Grade(
            rule=g.rule, label=None, value=None, bounds=bounds, labels=labels, reason=NO_DENOMINATOR
        )
    value = round(intensity, g.precision)
    label = labels[-1]
    for lab, bound in zip(labels, bounds, strict=False):
        if value <= bound:
            label = lab
            break
    return Grade(rule=g.rule, label=label, value=value, bounds=bounds, labels=labels)


def colour(g: Grade) -> str | None:
    """The grade's colour on the five-colour scale (dark green ... red)."""
    if g.label is None or g.label not in g.labels:
        return None
    i = g.labels.index(g.label)
    return COLOURS[min(i, len(COLOURS) - 1)]


def account(
    k: Kind,
    activity: Activity,
    factors: Factors,
    *,
    benchmark: float | None = None,
    policy: GradePolicy | None = None,
) -> Result:
    """``k``'s account of a validated ``activity``: its method's emissions, the denominator,
    the intensity (emissions × per_kg / denominator; None at a zero denominator) and the
    grade. ``factors.params`` are the kind's own unless the caller gave some."""
    if not factors.params and k.spec.params:
        factors = Factors(grid=factors.grid, fuels=factors.fuels, params=k.params)
    e = k.account(activity, factors)
    d = denominator(k, activity)
    intensity = e.emissions_kg * k.spec.intensity.per_kg / d if d > 0 else None
    return Result(
        kind=k.name,
        method=k.spec.method,
        emissions_kg=e.emissions_kg,
        lines=e.lines,
        figures=e.figures,
        denominator=d,
        denominator_unit=k.spec.denominator.unit,
        intensity=intensity,
        intensity_unit=k.spec.intensity.unit,
        grade=grade(k, intensity, activity, benchmark=benchmark, policy=policy),
    )
