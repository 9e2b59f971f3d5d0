"""The enterprise API users' settings section (``TANPUHUI_ENTERPRISE_USERS_*``): the access
token's lifetime and the sign-in attempt budgets. A module of its own so that the root's
settings import nothing but shapes."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from kit.settings import doc


class EnterpriseUsersSettings(Struct, frozen=True, kw_only=True):
    token_ttl_s: Annotated[
        int,
        Meta(ge=60, le=86400),
        doc(
            "Lifetime of an enterprise administrator's access token in seconds (no refresh "
            "token: the console signs in again)."
        ),
    ] = 1800
    sign_in_window_s: Annotated[
        int,
        Meta(ge=60, le=86400),
        doc("Window of the enterprise sign-in attempt budgets, in seconds."),
    ] = 900
    failures_per_login_client: Annotated[
        int,
        Meta(ge=1, le=1000),
        doc("Failed enterprise sign-ins allowed per login from one client IP per window."),
    ] = 5
    failures_per_login: Annotated[
        int,
        Meta(ge=2, le=100000),
        doc(
            "Failed enterprise sign-ins allowed per login from all clients per window; larger "
            "than the per-client figure, so one client alone cannot lock a login out."
        ),
    ] = 50
    failures_per_client: Annotated[
        int,
        Meta(ge=1, le=100000),
        doc("Failed enterprise sign-ins allowed from one client IP per window, any login."),
    ] = 100
