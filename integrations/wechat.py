"""WeChat mini-program sign-in: exchange a ``wx.login`` code for the user's openid through a
code2session endpoint (a pure adapter; the residents package configures it). The openid never
leaves the residents package except as a keyed hash."""

from __future__ import annotations

import logging

import httpx

from kit.errors import Unauthenticated, Unavailable

log = logging.getLogger("tanpuhui.mobile.wechat")


class WechatUnavailable(Unavailable):
    code = "wechat_unavailable"
    title = "WeChat sign-in unavailable"


class WechatRejected(Unauthenticated):
    code = "wechat_login_failed"
    title = "WeChat login code not accepted"


async def code2session(
    url: str, app_id: str | None, app_secret: str | None, code: str, *, timeout_s: float
) -> str:
    """The openid behind ``code``; raise ``WechatRejected`` or ``WechatUnavailable`` (also when
    no app id or secret is configured)."""
    if not app_id or not app_secret:
        raise WechatUnavailable("WeChat sign-in is not configured on this server.")
    params = {
        "appid": app_id,
        "secret": app_secret,
        "js_code": code,
        "grant_type": "authorization_code",
    }
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            answer = await client.get(url, params=params)
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
