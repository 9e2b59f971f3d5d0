"""The enterprises' settings section (``TANPUHUI_ENTERPRISES_*``): the factor basis accounting
uses by default, the grading method's parameters, the alerts' thresholds and webhook, the
three-colour index's weights. Lists are comma-separated strings (environment variables),
checked when the settings load and parsed by the properties below."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from kit.settings import doc

GridScope = Literal[
    "national",
    "regional",
    "provincial",
    "excl_market_nonfossil",
    "fossil_only",
    "ets_reporting",
]

_NUMBERS = r"^\s*[0-9]+(\.[0-9]+)?(\s*,\s*[0-9]+(\.[0-9]+)?)*\s*$"
_WEIGHTS = r"^\s*[a-z_]+:[0-9]+(\.[0-9]+)?(\s*,\s*[a-z_]+:[0-9]+(\.[0-9]+)?)*\s*$"


# The three-colour index's indicators this data can fill (docs/enterprises.md, "Accounting").
INDICATORS = ("carbon", "structure", "efficiency", "pollutants")


def numbers(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


class EnterprisesSettings(Struct, frozen=True, kw_only=True):
    factor_scope: Annotated[
        GridScope,
        doc(
            "Grid electricity factor scope of the default accounting basis: `national`, "
            "`regional` (a grid, see `factor_area`), `provincial` (a province code), "
            "`excl_market_nonfossil`, `fossil_only` or `ets_reporting`."
        ),
    ] = "national"
    factor_area: Annotated[
        str,
        Meta(max_length=32),
        doc(
            "The grid (`north`, `north_east`, `east`, `central`, `north_west`, `south`, "
            "`south_west`) or the province code (e.g. `440000`) of a `regional` or "
            "`provincial` scope; empty for the other scopes."
        ),
    ] = ""
    factor_year: Annotated[
        int,
        Meta(ge=0, le=2100),
        doc(
            "Factor year of the default accounting basis; 0: each month's own year, or the "
            "latest year published before it (the earliest published when none is)."
        ),
    ] = 0
    grade_industry_digits: Annotated[
        int,
        Meta(ge=0, le=4),
        doc(
            "Digits of the GB/T 4754 code that make an industry for the grade's benchmark "
            "(2: the division, e.g. C26; 0: the section letter)."
        ),
    ] = 2
    grade_min_peers: Annotated[
        int,
        Meta(ge=1, le=10_000),
        doc(
            "Fewest enterprises with an intensity in an industry and year for its benchmark "
            "to grade them (fewer: no grade, reason `industry_too_few_peers`)."
        ),
    ] = 5
    grade_benchmark: Annotated[
        Literal["weighted", "mean"],
        doc(
            "The industry benchmark: `weighted` (the industry's emissions over its added "
            "value) or `mean` (the plain average of its enterprises' intensities)."
        ),
    ] = "weighted"
    grade_k_bounds: Annotated[
        str,
        Meta(pattern=_NUMBERS),
        doc("Upper bounds of K = L / benchmark for grades 1-4 (above the last: grade 5)."),
    ] = "0.6,0.8,1.2,2.0"
    intensity_bands: Annotated[
        str,
        Meta(pattern=_NUMBERS),
        doc("Upper bounds of L (t CO2 per 10,000 yuan) of the `low` and `medium` bands."),
    ] = "0.6,2.0"
    index_weights: Annotated[
        str,
        Meta(pattern=_WEIGHTS),
        doc(
            "Indicators of the three-colour index and their weights (`carbon`, `structure`, "
            "`efficiency`, `pollutants`; see docs/enterprises.md and docs/pollutants.md), "
            "renormalised over the indicators an enterprise has data for."
        ),
    ] = "carbon:0.5,structure:0.25,efficiency:0.25,pollutants:0.25"
    index_bounds: Annotated[
        str,
        Meta(pattern=_NUMBERS),
        doc("Index scores (0-100) at or above which an enterprise is green, then yellow."),
    ] = "70,40"
    index_green_share_target: Annotated[
        float,
        Meta(gt=0, le=1),
        doc("Share of zero-carbon electricity that scores the structure indicator 100."),
    ] = 0.3
    alert_thresholds: Annotated[
        str,
        Meta(pattern=_NUMBERS),
        doc(
            "Fractions of a budget at which a projection raises an alert, each once per "
            "period (0.9 = 90 %)."
        ),
    ] = "0.9,1.0"
    alert_webhook_url: Annotated[
        str | None,
        doc("URL the alerts are POSTed to (HMAC-signed); unset: alerts are only listed."),
    ] = None
    alert_webhook_secret: Annotated[
        str | None,
        doc("Shared secret of the alerts webhook's HMAC-SHA256 signature (16+ characters)."),
    ] = None
    alert_webhook_attempts: Annotated[
        int, Meta(ge=1, le=20), doc("Attempts to deliver an alert to the webhook.")
    ] = 6
    alert_webhook_backoff_s: Annotated[
        float,
        Meta(ge=0, le=3600),
        doc("Seconds before the first retry of a webhook delivery; doubled on each retry."),
    ] = 10.0
    alert_webhook_timeout_s: Annotated[
        float, Meta(gt=0, le=120), doc("Seconds a webhook delivery may take.")
    ] = 10.0
    reduction_baseline_years: Annotated[
        int,
        Meta(ge=1, le=10),
        doc(
            "A verified reduction compares a year's intensity with the one this many years "
            "before (1: the year before)."
        ),
    ] = 1
    commuting_min_group: Annotated[
        int,
        Meta(ge=2, le=1000),
        doc(
            "Fewest current members of a commuting programme for its enterprise to see any "
            "total, and fewest residents in a published cell (fewer: suppressed)."
        ),
    ] = 5
    commuting_bonus_overlap_s: Annotated[
        int,
        Meta(ge=0, le=7 * 86400),
        doc(
            "Seconds a commuting bonus run looks back before the last run's end, for trips "
            "whose ingestion committed late (a trip is never paid twice)."
        ),
    ] = 3600
    offset_cap_share: Annotated[
        float,
        Meta(ge=0, le=1),
        doc(
            "Most an enterprise may retire as offsets against a year, as a share of its "
            "emissions of that year (0.1 = 10 %; Guangdong: up to 10 % of an obligation)."
        ),
    ] = 0.1
    green_services_file: Annotated[
        str,
        Meta(max_length=500),
        doc(
            "Path of the green-services catalogue (JSON, the shape of "
            "enterprises/green_services.json: services, their rules and savings, prices); "
            "empty: the packaged one. Checked at start: a broken catalogue stops it."
        ),
    ] = ""
    allowance_approval: Annotated[
        Literal["automatic", "government"],
        doc(
            "How an emission-right purchase settles: `government` (after the legality checks "
            "the offer waits in `pending_approval` until a government administrator approves "
            "it, the checks run again, or rejects it) or `automatic` (settled at once after "
            "the checks). See docs/allowances.md."
        ),
    ] = "government"
    bill_min_peers: Annotated[
        int,
        Meta(ge=1, le=10_000),
        doc(
            "Fewest enterprises of an industry with an intensity in a period for the "
            "energy-efficiency bill to show their median (fewer: no median disclosed)."
        ),
    ] = 5

    @property
    def k_bounds(self) -> tuple[float, ...]:
        return numbers(self.grade_k_bounds)

    @property
    def bands(self) -> tuple[float, ...]:
        return numbers(self.intensity_bands)

    @property
    def thresholds(self) -> tuple[float, ...]:
        return tuple(sorted(set(numbers(self.alert_thresholds))))

    @property
    def weights(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for item in self.index_weights.split(","):
            name, _, weight = item.strip().partition(":")
            out[name] = float(weight)
        return out

    @property
    def colour_bounds(self) -> tuple[float, float]:
        b = numbers(self.index_bounds)
        return (b[0], b[1] if len(b) > 1 else b[0])

    def problems(self) -> list[tuple[str, str]]:
        """(field, problem) for every value the field types cannot refuse on their own."""
        out = []
        k = self.k_bounds
        if len(k) != 4 or list(k) != sorted(set(k)):
            out.append(("grade_k_bounds", "four increasing numbers (grades 1-4; above: 5)"))
        b = self.bands
        if len(b) != 2 or b[0] >= b[1]:
            out.append(("intensity_bands", "two increasing numbers (low, medium; above: high)"))
        unknown = sorted(set(self.weights) - set(INDICATORS))
        if unknown:
            out.append(("index_weights", f"unknown indicators {', '.join(unknown)}"))
        elif sum(self.weights.values()) <= 0:
            out.append(("index_weights", "at least one weight above 0"))
        c = numbers(self.index_bounds)
        if len(c) != 2 or c[0] < c[1] or c[0] > 100:
            out.append(("index_bounds", "two numbers 0-100, green's bound first"))
        if any(t <= 0 for t in self.thresholds):
            out.append(("alert_thresholds", "fractions above 0"))
        if self.factor_scope in ("regional", "provincial") and not self.factor_area:
            out.append(("factor_area", f"required with the {self.factor_scope} scope"))
        if self.alert_webhook_url and not self.alert_webhook_secret:
            out.append(("alert_webhook_secret", "required with a webhook URL"))
        if self.alert_webhook_secret is not None and len(self.alert_webhook_secret) < 16:
            out.append(("alert_webhook_secret", "at least 16 characters"))
        if self.alert_webhook_url and not self.alert_webhook_url.startswith(
            ("http://", "https://")
        ):
            out.append(("alert_webhook_url", "an http:// or https:// URL"))
        # The green-services catalogue is data the enterprise API serves: a broken one is
        # refused here, so the server does not start with it (no import cycle: lazy).
        from enterprises.green_services import CatalogueInvalid, catalogue

        try:
            catalogue(self.green_services_file)
        except CatalogueInvalid as exc:
            out.append(("green_services_file", str(exc)))
        return out
