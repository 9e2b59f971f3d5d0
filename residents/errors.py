"""The residents' errors: sign-in codes, refresh tokens, sessions, the account, its district.

The gateways' own refusals (``SmsUnavailable``, ``WechatRejected``, ``WechatUnavailable``) are
the adapters' (integrations/); they are re-exported here for the residents' callers."""

from __future__ import annotations

from integrations.sms import SmsUnavailable
from integrations.wechat import WechatRejected, WechatUnavailable
from kit.errors import InvalidInput, RateLimited, Unauthenticated

__all__ = [
    "AccountGone",
    "BadDistrict",
    "CodeAttemptsExceeded",
    "CodeRejected",
    "RefreshRejected",
    "SessionRevoked",
    "SmsRateLimited",
    "SmsUnavailable",
    "WechatRejected",
    "WechatUnavailable",
]


class CodeRejected(Unauthenticated):
    code = "code_invalid"
    title = "Sign-in code not accepted"


class CodeAttemptsExceeded(RateLimited):
    code = "code_attempts_exceeded"
    title = "Too many wrong codes"


class SmsRateLimited(RateLimited):
    code = "sms_rate_limited"
    title = "Too many codes requested"


class RefreshRejected(Unauthenticated):
    code = "refresh_invalid"
    title = "Refresh token not accepted"


class AccountGone(Unauthenticated):
    code = "account_deleted"
    title = "Account deleted"


class SessionRevoked(Unauthenticated):
    code = "token_revoked"
    title = "Authentication required"


class BadDistrict(InvalidInput):
    code = "district_invalid"
    title = "Not a district of the programme"
