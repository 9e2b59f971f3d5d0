"""The government users' settings section (``TANPUHUI_GOV_USERS_*``): the access token's
lifetime, the second factor's drift window and issuer name, the sign-in attempt budgets, and
two figures of the administration they do (upload size, key rotation overlap).
A module of its own so that the root's settings import nothing but shapes."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from kit.settings import doc


class GovUsersSettings(Struct, frozen=True, kw_only=True):
    token_ttl_s: Annotated[
        int,
        Meta(ge=60, le=43200),
        doc(
            "Lifetime of a government user's access token in seconds (no refresh token: the "
            "dashboard signs in again, password and TOTP code)."
        ),
    ] = 3600
    totp_drift_steps: Annotated[
        int,
        Meta(ge=0, le=2),
        doc(
            "TOTP codes accepted this many 30-second steps before or after the server's clock "
            "(RFC 6238 section 5.2's allowance for clock drift and typing time); each code is "
            "accepted once, and never one older than the last accepted."
        ),
    ] = 1
    totp_issuer: Annotated[
        str,
        Meta(min_length=1, max_length=64, pattern=r"^[^:\x00]+$"),
        doc("The issuer name an authenticator app shows beside a government user's code."),
    ] = "tanpuhui"
    sign_in_window_s: Annotated[
        int,
        Meta(ge=60, le=86400),
        doc("Window of the government sign-in attempt budgets, in seconds."),
    ] = 900
    failures_per_login_client: Annotated[
        int,
        Meta(ge=1, le=1000),
        doc("Failed government sign-ins allowed per login from one client IP per window."),
    ] = 5
    failures_per_login: Annotated[
        int,
        Meta(ge=2, le=100000),
        doc(
            "Failed government sign-ins allowed per login from all clients per window; larger "
            "than the per-client figure, so one client alone cannot lock a login out."
        ),
    ] = 30
    failures_per_client: Annotated[
        int,
        Meta(ge=1, le=100000),
        doc("Failed government sign-ins allowed from one client IP per window, any login."),
    ] = 50
    admin_upload_max_bytes: Annotated[
        int,
        Meta(ge=1024 * 1024, le=4 * 1024**3),
        doc(
            "Largest GTFS zip or districts GeoJSON an administrator may upload through the "
            "admin API, in bytes (spooled to disk, not held in memory)."
        ),
    ] = 256 * 1024 * 1024
    key_rotation_overlap_s: Annotated[
        int,
        Meta(ge=0, le=30 * 86400),
        doc(
            "Default overlap of an operator signing key rotation, in seconds: the old key "
            "still verifies this long after the new one is issued, then never again."
        ),
    ] = 86400
