"""Sending one-time sign-in codes: a pluggable gateway chosen by ``TANPUHUI_SMS_GATEWAY``.

``console`` writes the code to the log for development: the only place in the system where a
code is ever logged (with the masked phone, never the number). ``http`` POSTs
``{"phone", "code", "ttl_s"}`` as JSON to the configured URL, which fronts the real SMS provider.
"""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from server.mobile.errors import SmsUnavailable
from server.settings import SmsSettings

log = logging.getLogger("tanpuhui.mobile.sms")


class SmsGateway(Protocol):
    async def send_code(self, phone: str, masked: str, code: str, ttl_s: int) -> None: ...


class ConsoleGateway:
    """Development gateway: the code goes to the log, nothing is sent."""

    async def send_code(self, phone: str, masked: str, code: str, ttl_s: int) -> None:
        log.warning(
            "sms sign-in code (console gateway, dev only)",
            extra={"phone_masked": masked, "sms_code": code, "ttl_s": ttl_s},
        )


class HttpGateway:
    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        self.url = url
        self.token = token
        self.timeout_s = timeout_s

    async def send_code(self, phone: str, masked: str, code: str, ttl_s: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                answer = await client.post(
                    self.url, json={"phone": phone, "code": code, "ttl_s": ttl_s}, headers=headers
                )
        except httpx.HTTPError as exc:
            log.warning("sms gateway unreachable", extra={"error": type(exc).__name__})
            raise SmsUnavailable("The SMS gateway cannot be reached; try again later.") from None
        if answer.status_code >= 300:
            log.warning("sms gateway refused", extra={"status": answer.status_code})
            raise SmsUnavailable("The SMS gateway refused the message; try again later.")


def gateway_from_settings(settings: SmsSettings) -> SmsGateway:
    if settings.gateway == "http":
        assert settings.gateway_url  # load_settings insists on it
        return HttpGateway(settings.gateway_url, settings.gateway_token, settings.gateway_timeout_s)
    return ConsoleGateway()
