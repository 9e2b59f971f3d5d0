"""Sending one-time sign-in codes: a pluggable gateway (a pure adapter: it knows no settings
section and no resident; the residents package picks and configures it).

``ConsoleGateway`` writes the code to the log for development: the only place in the system
where a code is ever logged (with the masked phone, never the number). ``HttpGateway`` POSTs
``{"phone", "code", "ttl_s"}`` as JSON to a URL that fronts the real SMS provider.
"""

from __future__ import annotations

import logging
from typing import Protocol

import httpx

from kit.errors import Unavailable

log = logging.getLogger("tanpuhui.mobile.sms")


class SmsUnavailable(Unavailable):
    code = "sms_unavailable"
    title = "SMS gateway unavailable"


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
