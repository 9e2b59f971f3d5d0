"""The SMS and WeChat adapters against a local fake of the outside world (no database)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from integrations.sms import ConsoleGateway, HttpGateway, SmsUnavailable
from integrations.wechat import WechatRejected, WechatUnavailable, code2session
from tests.mobile.fakes import FakeUpstreams


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    upstreams = FakeUpstreams().start()
    yield upstreams
    upstreams.stop()


@pytest.fixture(autouse=True)
def _reset(fake: FakeUpstreams) -> None:
    fake.reset()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestSms:
    async def test_http_gateway_posts_the_code_with_its_token(self, fake):
        await HttpGateway(fake.url + "/sms", "tok", 5.0).send_code(
            "13812345678", "138****5678", "123456", 300
        )
        [sent] = fake.sms
        assert (sent["phone"], sent["code"], sent["ttl_s"]) == ("13812345678", "123456", 300)
        assert sent["authorization"] == "Bearer tok"

    async def test_refused_or_unreachable_gateway_is_unavailable(self, fake):
        fake.sms_status = 500
        with pytest.raises(SmsUnavailable):
            await HttpGateway(fake.url + "/sms", None, 5.0).send_code("1", "1", "1", 1)
        down = HttpGateway(f"http://127.0.0.1:{_closed_port()}/sms", None, 1.0)
        with pytest.raises(SmsUnavailable):
            await down.send_code("1", "1", "1", 1)

    async def test_console_gateway_sends_nothing(self, fake):
        await ConsoleGateway().send_code("13812345678", "138****5678", "123456", 300)
        assert fake.sms == []


class TestWechat:
    URL = "/sns/jscode2session"

    async def test_a_known_code_gives_its_openid(self, fake):
        fake.openids["c1"] = "o-123"
        got = await code2session(
            fake.url + self.URL, "wx-test-app", "wx-test-secret", "c1", timeout_s=5.0
        )
        assert got == "o-123"

    async def test_unknown_code_or_wrong_app_is_rejected(self, fake):
        with pytest.raises(WechatRejected):
            await code2session(
                fake.url + self.URL, "wx-test-app", "wx-test-secret", "nope", timeout_s=5.0
            )
        with pytest.raises(WechatRejected):
            await code2session(fake.url + self.URL, "other", "secret", "c1", timeout_s=5.0)

    async def test_not_configured_or_unreachable_is_unavailable(self, fake):
        with pytest.raises(WechatUnavailable):
            await code2session(fake.url + self.URL, None, None, "c1", timeout_s=5.0)
        with pytest.raises(WechatUnavailable):
            await code2session(
                f"http://127.0.0.1:{_closed_port()}{self.URL}", "a", "b", "c1", timeout_s=1.0
            )
