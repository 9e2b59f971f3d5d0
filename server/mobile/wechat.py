"""WeChat mini-program sign-in: exchange a ``wx.login`` code for the user's openid through the
configured code2session endpoint. The openid never leaves this module except as a keyed hash."""

from __future__ import annotations

import logging

import httpx

from server.mobile.errors import WechatRejected, WechatUnavailable
from server.settings import WechatSettings

log = logging.getLogger("tanpuhui.mobile.wechat")


async def code2session(settings: WechatSettings, code: str) -> str:
    """The openid behind ``code``; raise ``WechatRejected`` or ``WechatUnavailable``."""
    if not settings.app_id or not settings.app_secret:
        raise WechatUnavailable("WeChat sign-in is not configured on this server.")
    params = {
        "appid": settings.app_id,
        "secret": settings.app_secret,
        "js_code": code,
        "grant_type": "authorization_code",
    }
    try:
        async with httpx.AsyncClient(timeout=settings.timeout_s) as client:
            answer = await client.get(settings.code2session_url, params=params)
        body = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("code2session unreachable", extra={"error": type(exc).__name__})
        raise WechatUnavailable("WeChat cannot be reached; try again later.") from None
    if not isinstance(body, dict):
        log.warning("code2session answered badly", extra={"status": answer.status_code})
        raise WechatUnavailable("WeChat answered unexpectedly; try again later.")
    errcode = body.get("errcode") or 0
    openid = body.get("openid")
    if errcode == -1:  # WeChat: "system busy"
        raise WechatUnavailable("WeChat is busy; try again later.")
    if errcode or not isinstance(openid, str) or not openid:
        log.info("code2session refused the code", extra={"errcode": errcode})
        raise WechatRejected("WeChat did not accept this login code; call wx.login again.")
    return openid
