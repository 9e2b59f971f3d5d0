"""The mobile API through the real app, with the SMS gateway and WeChat faked by local servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from shapely import box, to_wkb

import behaviours.service as behaviours_service
from kit.db import transaction
from server.app import create_app
from server.settings import Settings
from tests.mobile.fakes import FakeUpstreams

API = "/api/mobile/v1"


@pytest.fixture(scope="session")
def upstreams() -> Iterator[FakeUpstreams]:
    fake = FakeUpstreams().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def mobile_settings(settings: Settings, upstreams: FakeUpstreams) -> Settings:
    r = msgspec.structs.replace
    return r(
        settings,
        sms=r(
            settings.sms,
            gateway="http",
            gateway_url=upstreams.url + "/sms",
            gateway_token="sms-token",
            resend_interval_s=0,
            per_phone_per_hour=50,
            per_phone_all_clients_per_hour=100,
            per_ip_per_hour=1000,
        ),
        wechat=r(
            settings.wechat,
            app_id="wx-test-app",
            app_secret="wx-test-secret",
            code2session_url=upstreams.url + "/sns/jscode2session",
        ),
        privacy=r(settings.privacy, phone_hash_key="test-phone-hash-key-0123456789"),
    )


@pytest.fixture(scope="session")
async def mclient(mobile_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(mobile_settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(autouse=True)
def _reset_upstreams(upstreams: FakeUpstreams) -> None:
    upstreams.reset()


# Two districts of the programme for the mobile tests (a home district must be an imported one):
# 440305 covers every track the tests ride (Shenzhen, around 22.54 N 114.05 E), 440306 lies west.
TEST_DISTRICTS = {
    "440305": ("南山区 (test)", (113.95, 22.40, 114.30, 22.80)),
    "440306": ("宝安区 (test)", (113.70, 22.40, 113.95, 22.80)),
}


@pytest.fixture(autouse=True)
async def _districts(request: pytest.FixtureRequest) -> None:
    """Import TEST_DISTRICTS for every test that uses the stores (after they were emptied)."""
    if not {"stores", "databases", "pool"} & set(request.fixturenames):
        return
    request.getfixturevalue("clean_stores")  # emptied first
    pool = request.getfixturevalue("pool")
    rows = [
        (code, name, "440300", bytes(to_wkb(box(*bounds))))
        for code, (name, bounds) in TEST_DISTRICTS.items()
    ]
    async with transaction(pool) as tx:
        await behaviours_service.import_districts(tx, rows)


async def sign_in(
    client: AsyncTestClient[Any],
    upstreams: FakeUpstreams,
    phone: str = "13812345678",
    district_code: str | None = "440305",
) -> dict[str, Any]:
    r = await client.post(f"{API}/auth/sms-codes", json={"phone": phone})
    assert r.status_code == 202, r.text
    body: dict[str, Any] = {"phone": phone, "code": upstreams.last_code(phone[-11:])}
    if district_code:
        body["district_code"] = district_code
    r = await client.post(f"{API}/auth/sms-sign-in", json=body)
    assert r.status_code == 200, r.text
    pair: dict[str, Any] = r.json()
    return pair


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}
