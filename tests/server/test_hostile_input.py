"""Hostile input on every body-carrying route of every surface: always a 4xx problem+json, never
a 5xx.

The routes are read from the app's own route map, so a new POST/PUT/PATCH is in the matrix as
soon as it exists (and fails here until it has a sample body below). Each request is
authenticated as its surface expects (a resident's bearer token; an operator's signature over
the exact bytes sent), so the body really is decoded. Every sample is mutated one field at a
time (invalid UTF-8, NUL, a string of 100,000 characters, dates outside Python's range, numbers
beyond 64 bits, a number as a string, nesting 100,000 deep) and sent whole in hostile forms and
with wrong media types.
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from enterprises import users
from kit.auth import JwtKeys, Role, sign_request
from kit.db import transaction
from rewards import service as rewards
from server.app import create_app
from server.settings import Settings
from tests.behaviours.factories import SECRET, linked, operator
from tests.enterprises.api import admin, signed_in
from tests.enterprises.energy_factories import meter, pusher
from tests.residents.factories import resident
from tests.rewards.factories import config, fund, item, live, merchant, project

MOBILE = "/api/mobile/v1"
OPERATORS = "/api/operators/v1"
METERS = "/api/meters/v1"
MERCHANTS = "/api/merchants/v1"
ENTERPRISE = "/api/enterprise/v1"
ENT = f"{ENTERPRISE}/enterprises/{{enterprise_id:uuid}}"
GOV = "/api/gov/v1"
GOV_ADMIN = f"{GOV}/admin"
MERCHANT_KEY = ("k1", "merchant-secret-0123456789abcdef")
# Query parameters a route needs before it reads its body.
QUERIES = {f"{ENT}/activity-reports/csv": "?period=month&period_start=2026-03-01"}
_BODY_METHODS = {"POST", "PUT", "PATCH"}
# server.wire's handler option naming the media types a route takes (JSON when absent).
ACCEPTS = "accepts"
JSON_ONLY = ("application/json",)


def _routes() -> list[tuple[str, str, Any]]:
    """(method, path template, handler) of every route of the app, as Litestar routes them."""
    app = create_app(Settings.from_env({"TANPUHUI_ENV": "test"}))
    out = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(handler.http_methods):
                out.append((method, route.path, handler))
    return out


ROUTES = _routes()
BODY_ROUTES = [r for r in ROUTES if r[0] in _BODY_METHODS]
PATH_PARAM = re.compile(r"\{([a-z_]+):[a-z]+\}")


def _ago(**kw: float) -> str:
    return (datetime.now(UTC).replace(microsecond=0) - timedelta(**kw)).isoformat()


def _gov_admin_samples() -> dict[str, list[Any]]:
    """The government administration API's bodies (sent with an administrator's token)."""
    from tests.behaviours.factories import DATA

    feed = io.BytesIO()
    with zipfile.ZipFile(feed, "w") as z:
        for f in sorted((DATA / "gtfs").glob("*.txt")):
            z.writestr(f.name, f.read_bytes())
    factor = {"mode": "metro", "behaviour": "transit", "unit": "pkm", "factor_g": 20.5}
    draft = {
        "code": "low-carbon-travel",
        "title": "Revised",
        "source": "test",
        "effective_from": _ago(days=-2),
        "factors": [{**factor, "source": "test", "min_distance_m": 500}],
        "caps": [{"behaviour": "transit", "source": "test", "daily_cap_g": 5000}],
    }
    a = GOV_ADMIN
    return {
        f"POST {GOV}/sessions": [{"login": "admin.x", "password": "p" * 14, "totp": "123456"}],
        f"POST {a}/users": [
            {"login": "analyst.x", "display_name": "X", "role": "gov_analyst", "password": "p" * 14}
        ],
        f"PATCH {a}/users/{{user_id:uuid}}": [{"role": "gov_analyst", "disabled": False}],
        f"POST {a}/operators": [
            {"id": "bus-x", "name": "Bus X", "kind": "transit", "scopes": ["transit"]}
        ],
        f"PATCH {a}/operators/{{operator_id:str}}": [
            {"name": "Metro", "kind": "transit", "scopes": ["transit", "walking"]}
        ],
        f"PUT {a}/operators/{{operator_id:str}}/suspension": [
            {"suspended": False},
            {"suspended": True},
        ],
        f"POST {a}/operators/{{operator_id:str}}/keys": [{"key_id": "k9"}],
        f"POST {a}/operators/{{operator_id:str}}/keys/{{key_id:str}}/rotate": [
            {"new_key_id": "k8", "overlap_s": 60}
        ],
        f"POST {a}/operators/{{operator_id:str}}/keys/{{key_id:str}}/revoke": [],
        f"POST {a}/districts": [
            ("application/geo+json", (DATA / "districts.geojson").read_bytes())
        ],
        f"PUT {a}/gtfs/{{feed_id:str}}": [("application/zip", feed.getvalue())],
        f"POST {a}/methodology-drafts": [draft],
        f"PUT {a}/methodology-drafts/{{draft_id:uuid}}": [draft],
        f"POST {a}/methodology-drafts/{{draft_id:uuid}}/publish": [
            {"effective_from": _ago(days=-3)}
        ],
        f"POST {a}/merchants": [{"id": "shop-x", "name": "Shop", "settlement_contact": "x@y.z"}],
        f"POST {a}/merchants/{{merchant_id:str}}/keys": [{"key_id": "m9"}],
        f"POST {a}/projects": [
            {
                "title": "Trees",
                "beneficiary": "Foundation",
                "target_asset": "POINT",
                "target_amount": 1000,
                "starts_at": _ago(days=1),
                "ends_at": _ago(days=-30),
            }
        ],
        f"POST {a}/enterprises": [
            {
                "credit_code": "91350100M000100Y43",
                "name": "测试",
                "industry": "C2611",
                "district": "440303",
                "size_class": "above",
                "kind": "building",
            }
        ],
        f"POST {a}/offsets/issuances": [
            {"methodology": "low-carbon-travel", "vintage": 2026, "amount": 10},
            {"methodology": "low-carbon-travel", "vintage": 2026},
        ],
        f"POST {a}/allowances/targets": [
            {"region_code": "440300", "year": 2026, "target_g": 1_000_000}
        ],
        f"POST {a}/allowances/allocations": [
            {
                "region_code": "440300",
                "year": 2026,
                "method": "manual",
                "lines": [{"enterprise_id": str(uuid.uuid4()), "amount_g": 1000}],
            },
            {
                "region_code": "440300",
                "year": 2026,
                "method": "historical_share",
                "base_years": [2024, 2025],
                "amount_g": 1000,
            },
            {
                "region_code": "440300",
                "year": 2026,
                "method": "benchmark",
                "output_year": 2025,
                "benchmarks": [{"industry": "C26", "t_per_10k_cny": 0.6}],
            },
        ],
        f"POST {a}/allowances/periods/close": [{"region_code": "440300", "year": 2026}],
        f"POST {a}/allowances/approvals/{{offer_id:uuid}}/approve": [],
        f"POST {a}/allowances/approvals/{{offer_id:uuid}}/reject": [{"reason": "待核实"}],
        f"POST {a}/enterprises/import": [
            ("text/csv", b"credit_code,name,industry,district,size_class\n")
        ],
    }


def _samples(subject: str, ids: Mapping[str, str] | None = None) -> dict[str, list[Any]]:
    """A well-formed body per route ("METHOD template"): JSON values, or ``(media type, bytes)``
    for a route that takes another format. ``[]``: the route takes no body. ``ids``: the real
    things the caller made (a site, a meter, an item, a reward and its code)."""
    ids = ids or {}
    reward_id = ids.get("reward_id", str(uuid.uuid4()))
    trip = {
        "type": "transit_trip",
        "record_id": "h1",
        "subject": subject,
        "mode": "metro",
        "boarded_at": _ago(hours=2),
        "alighted_at": _ago(hours=1, minutes=40),
        "boarding_stop": "A",
        "distance_m": 10_000,
    }
    bike = {
        "type": "bike_trip",
        "record_id": "h2",
        "subject": subject,
        "mode": "shared_bike",
        "started_at": _ago(hours=3),
        "ended_at": _ago(hours=2, minutes=40),
        "start": {"lat": 22.55, "lon": 114.02},
        "end": {"lat": 22.55, "lon": 114.05},
        "route": [{"lat": 22.55, "lon": 114.02, "t": _ago(hours=3)}],
    }
    meter = {
        "type": "meter_reading",
        "record_id": "h3",
        "subject": subject,
        "utility": "electricity",
        "account": "acc-1",
        "period_start": _ago(days=6),
        "period_end": _ago(days=5),
        "quantity": 12.5,
        "household_size": 2,
    }
    steps: dict[str, Any] = {"type": "daily_steps", "record_id": "h4", "subject": subject}
    steps |= {"day": _ago(days=1)[:10], "steps": 8000}
    track = {
        "type": "track",
        "mode": "cycling",
        "claimed_distance_m": 1200,
        "points": [
            {"t": _ago(minutes=30), "lat": 22.55, "lon": 114.02},
            {"t": _ago(minutes=25), "lat": 22.551, "lon": 114.03},
        ],
        "client_ref": "c1",
    }
    return {
        f"POST {MOBILE}/auth/sms-codes": [{"phone": "13812345678"}],
        f"POST {MOBILE}/auth/sms-sign-in": [
            {"phone": "13812345678", "code": "123456", "district_code": "440305"}
        ],
        f"POST {MOBILE}/auth/wechat-sign-in": [{"code": "wx-code-1", "district_code": "440305"}],
        f"POST {MOBILE}/auth/refresh": [{"refresh_token": "r" * 43}],
        f"POST {MOBILE}/auth/sign-out": [],
        f"PATCH {MOBILE}/me": [{"district_code": "440305"}],
        f"PUT {MOBILE}/data-sources/{{operator_id:str}}/link": [{"scope": ["transit"]}],
        f"POST {MOBILE}/activities": [
            track,
            {"type": "steps", "day": _ago(days=1)[:10], "steps": 8000},
        ],
        f"POST {OPERATORS}/events": [{"events": [trip]}, {"events": [bike, meter, steps]}],
        f"POST {OPERATORS}/files": [("application/x-ndjson", msgspec.json.encode(trip))],
        f"POST {METERS}/readings": [
            {
                "readings": [
                    {"meter": "M1", "at": _ago(hours=1), "value": 1000.5},
                    {"meter": "M1", "at": _ago(minutes=45), "value": 1001.5, "unit": "kWh"},
                ]
            }
        ],
        f"POST {ENTERPRISE}/sessions": [{"login": "admin1", "password": "a wrong password"}],
        f"POST {ENT}/users": [
            {"login": "energy.manager", "display_name": "能源主管", "password": "horse battery"}
        ],
        f"POST {ENT}/users/{{user_id:uuid}}/disable": [],
        f"POST {ENT}/sites": [{"name": "Plant 2", "address": "1 Bay Road, Futian"}],
        f"POST {ENT}/meters": [
            {
                "site_id": ids.get("site_id", str(uuid.uuid4())),
                "ref": "M2",
                "kind": "electricity",
                "unit": "kWh",
                "pusher": "grid",
                "interval_s": 900,
                "register": "cumulative",
                "spike_factor": 10.5,
            }
        ],
        f"POST {ENT}/activity-reports": [
            {
                "period": "month",
                "period_start": "2026-03-01",
                "lines": [
                    {"kind": "electricity", "quantity": 1200.5, "unit": "kWh"},
                    {
                        "kind": "green_electricity",
                        "quantity": 100.5,
                        "unit": "kWh",
                        "certificates": ["GEC-2026-0001"],
                    },
                ],
            }
        ],
        f"POST {ENT}/activity-reports/csv": [
            ("text/csv", b"kind,quantity,unit\nelectricity,1200.5,kWh")
        ],
        f"PUT {ENT}/budgets": [
            {
                "metric": "carbon_kg",
                "period_kind": "month",
                "period_start": "2026-03-01",
                "amount": 50_000.5,
            }
        ],
        # The caller's enterprise is industrial: its kind's schema checks the activity first.
        f"PUT {ENT}/kind-accounts": [
            {"year": 2025, "activity": {"electricity_kwh": 1200.5, "added_value_10k_cny": 800}}
        ],
        f"POST {ENT}/carbon-reports": [{"period": "2026-03"}, {"period": "2025"}],
        f"POST {ENT}/allowance/offers": [
            {"year": 2026, "quantity_g": 1000, "price_fen_per_t": 5137}
        ],
        f"POST {ENT}/allowance/offers/{{offer_id:uuid}}/purchase": [],
        f"POST {ENT}/allowance/offers/{{offer_id:uuid}}/withdraw": [],
        f"POST {ENT}/allowance/surrender": [{"year": 2026}],
        f"POST {ENT}/pollutants": [
            {
                "month": "2026-03-01",
                "lines": [
                    {"pollutant": "so2", "amount": 1.5, "unit": "t", "source": "online_monitoring"},
                    {"pollutant": "vocs", "amount": 250.5, "unit": "kg", "source": "report"},
                ],
            }
        ],
        f"POST {ENT}/offsets/purchases": [{"quantity_g": 100, "price_yuan_per_t": 50.5}],
        f"POST {ENT}/offsets/retirements": [{"quantity_g": 100, "period": 2026}],
        f"POST {ENT}/commuting-programmes": [
            {
                "name": "Green commute",
                "rule": {
                    "multiplier": "1.2",
                    "modes": ["metro", "bus"],
                    "windows": [{"start": "07:00", "end": "10:00"}],
                    "weekdays": [1, 2, 3],
                },
                "employee_codes": ["E-1", "E-2"],
                "invitation": True,
            }
        ],
        f"POST {ENT}/commuting-programmes/{{programme_id:uuid}}/employee-codes": [
            {"codes": ["E-3"]}
        ],
        f"POST {ENT}/commuting-programmes/{{programme_id:uuid}}/invitation": [],
        f"POST {MOBILE}/commuting/memberships": [
            {"consent_version": "2026-12-01", "invitation_token": "t" * 43},
            {
                "consent_version": "2026-12-01",
                "programme_id": str(uuid.uuid4()),
                "employee_code": "E-1",
            },
        ],
        f"POST {GOV_ADMIN}/enterprises/{{enterprise_id:uuid}}/points": [
            {"points": 100, "reference": "INV-2026-1"}
        ],
        f"POST {MOBILE}/projects/{{project_id:str}}/donations": [
            {"asset": "POINT", "amount": 5},
            {"asset": "CO2E_G", "amount": 50},
        ],
        f"POST {MOBILE}/rewards/{{reward_id:str}}/cancel": [],
        f"POST {MOBILE}/redemptions": [{"item_id": ids.get("item_id", str(uuid.uuid4()))}],
        **_gov_admin_samples(),
        "POST /api/gov/v1/reports/scenarios/decision": [
            {
                "kaya": {
                    "base_year": 2025,
                    "years": 10,
                    "population": {"base": 1000000, "rate": 0.01},
                    "gdp_per_capita": {"base": 100000, "rate": 0.05, "drift": -0.005},
                    "energy_intensity": {"base": 0.5, "rate": -0.03},
                    "carbon_intensity": {"base": 2.0, "rate": -0.02},
                },
                "target_peak_year": 2030,
                "projects": [
                    {"name": "乙烯项目", "annual_emissions_t": 120000, "starts_on": "2027-07-01"}
                ],
                "substitutions": [
                    {
                        "name": "Steam supply",
                        "supplier_added_t": 50000,
                        "consumers_avoided_t": 80000,
                        "starts_on": "2026-01-01",
                    }
                ],
            }
        ],
        "POST /api/gov/v1/reports/peak-test": [
            {
                "series": [{"year": 2010, "value": 100.5}, {"year": 2020, "value": 90}],
                "current_year": 2024,
            }
        ],
        f"POST {MERCHANTS}/rewards/lookup": [{"code": ids.get("code", "ABCD-EFGH")}],
        f"POST {MERCHANTS}/rewards/confirm": [{"code": ids.get("code", "ABCD-EFGH")}],
        f"POST {MERCHANTS}/rewards/refund": [{"reward_id": reward_id}],
        f"POST {MERCHANTS}/rewards/{{reward_id:uuid}}/delivery": [
            {"status": "shipped"},
            {"status": "delivered"},
        ],
    }


# --- hostile values -------------------------------------------------------------------------

MARK = "\x01hostile\x01"
_MARK_JSON = msgspec.json.encode(MARK)
DEEP = b"[" * 100_000
STRINGS = {
    "invalid utf-8": b'"\xff\xfe\xfd"',
    "lone surrogate bytes": b'"\xed\xa0\x80"',
    "NUL": b'"a\\u0000b"',
    "raw NUL": b'"a\x00b"',
    "100k chars": b'"' + b"x" * 100_000 + b'"',
    "deep": DEEP,
}
NUMBERS = {
    "10**400": b"1" + b"0" * 400,
    "2**64": b"18446744073709551616",
    "-2**63-1": b"-9223372036854775809",
    "1e309": b"1e309",
    "-1e308": b"-1e308",
    "1.7e308": b"1.7e308",
    "as a string": None,  # the number, quoted: strict decoding refuses it
    "deep": DEEP,
}
TIMES = {
    "9999 with a negative offset": b'"9999-12-31T23:59:59-05:00"',
    "0001 with a positive offset": b'"0001-01-01T00:00:00+01:00"',
    "9999-12-31Z": b'"9999-12-31T23:59:59Z"',
    "far future": b'"2999-12-31T23:59:59-12:00"',
}
DAYS = {"9999-12-31": b'"9999-12-31"', "0001-01-01": b'"0001-01-01"', "1969-12-31": b'"1969-12-31"'}
WHOLE = {
    "invalid utf-8": b'{"\xff\xfe": "\xff"}',
    "utf-8 BOM then garbage": b"\xef\xbb\xbf\xff{}",
    "top-level string, invalid utf-8": b'"\xff"',
    "NUL": b"\x00",
    "deep arrays": DEEP,
    "deep objects": b'{"a":' * 100_000,
    "not json": b"{not json",
    "trailing garbage": b"{}}",
    "a number": b"1" + b"0" * 400,
    "null": b"null",
    "an array": b"[]",
}
WRONG_TYPES = [
    None,
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/xml",
    "text/html; charset=utf-8",
]
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")
ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _leaves(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def _with_marker(value: Any, target: str, path: str = "$") -> Any:
    if path == target:
        return MARK
    if isinstance(value, dict):
        return {k: _with_marker(v, target, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_with_marker(v, target, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def mutations(sample: Any) -> Iterator[tuple[str, bytes]]:
    """(what, body) for every hostile value of every leaf of ``sample``, then whole bodies."""
    for path, leaf in _leaves(sample):
        template = msgspec.json.encode(_with_marker(sample, path))
        if isinstance(leaf, bool) or leaf is None:
            options: dict[str, bytes | None] = {"deep": DEEP, "NUL": STRINGS["NUL"]}
        elif isinstance(leaf, int | float):
            options = dict(NUMBERS)
            options["as a string"] = msgspec.json.encode(str(leaf))
        elif ISO_TIME.match(leaf):
            options = {**STRINGS, **TIMES}
        elif ISO_DAY.match(leaf):
            options = {**STRINGS, **DAYS}
        else:
            options = dict(STRINGS)
        for what, raw in options.items():
            assert raw is not None
            yield f"{path} = {what}", template.replace(_MARK_JSON, raw)
    yield from ((f"whole body: {what}", raw) for what, raw in WHOLE.items())


# --- requests as each surface expects them ---------------------------------------------------


class Caller:
    """Sends a request the way its surface authenticates it: operators and meters' gateways
    signed with their operator key, merchants with their merchant key, the enterprise API with
    an enterprise administrator's token, the mobile API (and any surface added later) with a
    resident's. Every write carries a fresh ``Idempotency-Key``."""

    def __init__(
        self,
        client: Any,
        token: str,
        *,
        enterprise_token: str = "",
        merchant_id: str = "nobody",
        ids: Mapping[str, str] | None = None,
        gov_token: str = "",
    ) -> None:
        self.client = client
        self.token = token
        self.gov_token = gov_token
        self.enterprise_token = enterprise_token
        self.merchant_id = merchant_id
        self.ids = dict(ids or {})  # path parameter or sample field -> a real id

    def path(self, template: str) -> str:
        """``template`` with its parameters the real things made (``metro`` for the others) and
        the query the route needs."""
        filled = PATH_PARAM.sub(lambda m: self.ids.get(m.group(1), "metro"), template)
        return filled + QUERIES.get(template, "")

    async def send(self, method: str, path: str, body: bytes, content_type: str | None) -> Any:
        headers: dict[str, str] = {}
        if content_type is not None:
            headers["content-type"] = content_type
        if method in _BODY_METHODS:
            headers["idempotency-key"] = uuid.uuid4().hex
        if path.startswith(OPERATORS):
            headers |= sign_request(SECRET, method, path, body, operator_id="metro", key_id="k1")
        elif path.startswith(METERS):  # a utility's gateway
            headers |= sign_request(SECRET, method, path, body, operator_id="grid", key_id="k1")
        elif path.startswith(MERCHANTS):
            key_id, secret = MERCHANT_KEY
            headers |= sign_request(
                secret, method, path, body, operator_id=self.merchant_id, key_id=key_id
            )
        elif path.startswith(ENTERPRISE):
            headers["authorization"] = f"Bearer {self.enterprise_token}"
        elif path.startswith(GOV + "/") and self.gov_token:  # a government administrator
            headers["authorization"] = f"Bearer {self.gov_token}"
        else:  # the mobile surface, and any surface added later: a resident's token
            headers["authorization"] = f"Bearer {self.token}"
        return await self.client.request(method, path, content=body, headers=headers)


def _path(template: str, value: str = "metro") -> str:
    return PATH_PARAM.sub(value, template)


@pytest.fixture
async def caller(client: Any, pool: Any, jwt_keys: JwtKeys, settings: Settings) -> Caller:
    await operator(pool, "metro")
    resident_id = await resident(pool, "440305")
    token = jwt_keys.issue(resident_id, Role.RESIDENT, 3600, extra={"typ": "access"})
    # The enterprise API: an enterprise, its administrator (signed in), a second user to
    # disable, a site and a meter pushed by the gateway "grid".
    boss = await signed_in(client, await admin(pool))
    async with transaction(pool) as tx:
        other = await users.add_user(
            tx,
            boss.enterprise.id,
            login="second",
            display_name="二号",
            password="correct horse battery staple",
            created_by=boss.user.id,
        )
    await pusher(pool)
    m = await meter(pool, boss.enterprise.id, by="grid")
    # The rewards: a merchant with a signing key, a physical item, and a reward of it issued
    # to the (funded) resident; a donation project.
    cfg = config(settings)
    shop = await merchant(pool, cfg, key=MERCHANT_KEY)
    goods = await item(pool, shop.merchant.id, kind="physical", cost_points=100, **live())
    await fund(pool, cfg, resident_id, 1000)
    async with transaction(pool) as tx:
        reward = await rewards.redeem(tx, cfg, resident_id, goods.id)
    cause = await project(pool)
    ids = {
        "enterprise_id": str(boss.enterprise.id),
        "user_id": str(other.id),
        "site_id": str(m.site_id),
        "item_id": goods.id,
        "reward_id": reward.id,
        "code": reward.code,
        "project_id": cause.id,
        # An allowance offer id nobody made: the route is reached, the service answers 404.
        "offer_id": str(uuid.uuid4()),
    }
    enterprise_token = boss.headers["Authorization"].removeprefix("Bearer ")
    # The government surface: an administrator (its routes accept gov_analyst or gov_admin).
    from reporting import admin as gov_admin
    from reporting.admin import DraftIn
    from tests.gov.factories import gov_user

    gov, gov_token = await gov_user(pool, settings, role="gov_admin")
    async with transaction(pool) as tx:
        draft = await gov_admin.create_draft(
            tx,
            msgspec.convert(
                _gov_admin_samples()[f"POST {GOV_ADMIN}/methodology-drafts"][0], DraftIn
            ),
            actor=str(gov.id),
        )
    ids["draft_id"] = str(draft.id)
    # An employee commuting programme of the enterprise (its routes name it in the path).
    from enterprises import commuting
    from enterprises.commuting_schemas import ProgrammeIn

    async with transaction(pool) as tx:
        programme = await commuting.create_programme(
            tx, boss.enterprise.id, ProgrammeIn(name="Commute"), created_by=boss.user.id
        )
    ids["programme_id"] = str(programme.id)
    return Caller(
        client,
        token,
        enterprise_token=enterprise_token,
        merchant_id=shop.merchant.id,
        ids=ids,
        gov_token=gov_token,
    )


def problem_4xx(r: Any) -> str | None:
    """None when ``r`` is a 4xx problem+json with a code; else what is wrong with it."""
    if not 400 <= r.status_code < 500:
        return f"status {r.status_code}: {r.text[:200]}"
    if not r.headers.get("content-type", "").startswith("application/problem+json"):
        return f"status {r.status_code} but {r.headers.get('content-type')}"
    if r.request.method == "HEAD":  # the problem's headers, and no body to read
        return None
    if not isinstance(r.json().get("code"), str):
        return f"status {r.status_code} without a code"
    return None


# Routes that judge each item of a batch (a 200 with one verdict per item, as documented): a
# hostile value inside an item must make that item "rejected"; a hostile whole body is a 4xx.
PER_ITEM = {f"POST {METERS}/readings": re.compile(r"^\$\.readings\[(\d+)\]")}


def item_rejected(r: Any, item: re.Pattern[str], what: str) -> str | None:
    """None when ``r`` is a 200 whose verdict on the item ``what`` mutated is ``rejected``."""
    found = item.match(what)
    if r.status_code != 200 or found is None:
        return f"status {r.status_code}: {r.text[:200]}"
    verdict = r.json()["results"][int(found.group(1))]["status"]
    return None if verdict == "rejected" else f"status 200 but the item is {verdict}"


def route_id(route: tuple[str, str, Any]) -> str:
    return f"{route[0]} {route[1]}"


# --- the matrix ----------------------------------------------------------------------------


def test_every_body_route_has_a_sample():
    """A new POST/PUT/PATCH joins the matrix below: give it a sample body here."""
    known = set(_samples("s"))
    missing = [route_id(r) for r in BODY_ROUTES if route_id(r) not in known]
    assert not missing, f"add a sample body for {missing} to _samples()"
    assert {route_id(r) for r in BODY_ROUTES} >= known  # no sample for a route that is gone


@pytest.mark.parametrize("route", BODY_ROUTES, ids=route_id)
async def test_hostile_bodies_are_refused_4xx(route, caller, pool):
    method, template, handler = route
    _, subject = await linked(pool, "metro")
    samples = _samples(subject, caller.ids).get(route_id(route), [])
    accepts = handler.opt.get(ACCEPTS, JSON_ONLY)
    path = caller.path(template)
    failures: list[str] = []
    sent = 0
    for sample in samples:
        if isinstance(sample, tuple):  # a raw format (daily files): hostile bytes are stored
            media, raw = sample  # and judged line by line later; only a 5xx is wrong here
            for what, body in [*STRINGS.items(), *WHOLE.items()]:
                r = await caller.send(method, path, raw + b"\n" + body, media)
                sent += 1
                if r.status_code >= 500 or (r.status_code >= 400 and problem_4xx(r)):
                    failures.append(f"{what}: {r.status_code} {r.text[:200]}")
            continue
        for what, body in mutations(sample):
            r = await caller.send(method, path, body, "application/json")
            sent += 1
            wrong = problem_4xx(r)
            if wrong and route_id(route) in PER_ITEM:
                wrong = item_rejected(r, PER_ITEM[route_id(route)], what)
            if wrong:
                failures.append(f"{what}: {wrong}")
    if accepts == JSON_ONLY and samples:
        assert sent > 15
    assert not failures, f"{len(failures)} of {sent} hostile bodies:\n" + "\n".join(failures[:40])


@pytest.mark.parametrize("route", BODY_ROUTES, ids=route_id)
async def test_a_body_of_another_media_type_is_415(route, caller, pool):
    method, template, handler = route
    _, subject = await linked(pool, "metro")
    samples = _samples(subject, caller.ids).get(route_id(route)) or [{"any": "body"}]
    first = samples[0]
    body = first[1] if isinstance(first, tuple) else msgspec.json.encode(first)
    accepts = handler.opt.get(ACCEPTS, JSON_ONLY)
    failures = []
    for media in [*WRONG_TYPES, "application/json" if accepts != JSON_ONLY else None]:
        if media in accepts:
            continue
        r = await caller.send(method, caller.path(template), body, media)
        if problem_4xx(r) or r.status_code != 415 or r.json()["code"] != "unsupported_media_type":
            failures.append(f"{media}: {r.status_code} {r.text[:200]}")
    assert not failures, failures


async def test_json_with_parameters_and_the_file_types_are_accepted(caller, pool):
    _, subject = await linked(pool, "metro")
    batch = msgspec.json.encode(_samples(subject)[f"POST {OPERATORS}/events"][0])
    r = await caller.send("POST", f"{OPERATORS}/events", batch, "Application/JSON; charset=utf-8")
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    csv = b"type,record_id,subject\n"
    r = await caller.send("POST", f"{OPERATORS}/files?format=csv", csv, "text/csv")
    assert r.status_code == 202, r.text
    r = await caller.send("PATCH", f"{MOBILE}/me", b'{"district_code": null}', "application/json")
    assert r.status_code == 200, r.text


async def test_numeric_strings_are_refused_and_nothing_is_credited(caller, pool):
    day = _ago(days=1)[:10]
    body = msgspec.json.encode({"type": "steps", "day": day, "steps": "8000"})
    r = await caller.send("POST", f"{MOBILE}/activities", body, "application/json")
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "validation_failed"
    assert r.json()["errors"][0]["path"] == "steps"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM behaviour_events") == 0


@pytest.mark.parametrize("route", [r for r in ROUTES if PATH_PARAM.search(r[1])], ids=route_id)
async def test_nul_in_a_path_segment_is_refused_before_sql(route, caller):
    method, template, _ = route
    for value in ("a%00b", "%00"):
        r = await caller.send(method, _path(template, value), b"", None)
        assert not problem_4xx(r), (value, r.status_code, r.text)


async def test_nul_in_a_query_is_refused(caller):
    r = await caller.send("GET", f"{MOBILE}/history?cursor=a%00b", b"", None)
    assert not problem_4xx(r), r.text
    assert r.json()["code"] == "bad_request"


RESIDENT_ROUTES = [
    r
    for r in ROUTES
    if r[0] != "OPTIONS"
    and r[1].startswith(MOBILE + "/")
    and ("/auth/" not in r[1] or r[1] == f"{MOBILE}/auth/sign-out")
]


@pytest.mark.parametrize("route", RESIDENT_ROUTES, ids=route_id)
async def test_a_signed_token_whose_subject_is_not_a_resident_id(route, caller, jwt_keys):
    method, template, _ = route
    for subject in (
        "not-a-uuid",
        "a\x00b",
        "1' OR '1'='1",
        "",
        "{12345678-1234-5678-1234-567812345678}",
    ):
        token = jwt_keys.issue(subject, Role.RESIDENT, 3600, extra={"typ": "access"})
        r = await caller.client.request(
            method,
            _path(template),
            content=b"{}" if method in _BODY_METHODS else b"",
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )
        assert not problem_4xx(r), (subject, r.status_code, r.text)
        assert (r.status_code, r.json()["code"]) == (401, "token_invalid"), subject
