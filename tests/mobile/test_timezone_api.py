"""The programme's time zone on the mobile API: monthly figures over the last N calendar months
in China time (empty ones included, as zeros) and the export's days (``YYYY-MM-DD`` in China
time). Run again under other machine zones by tests/test_timezone.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.mobile.conftest import API, bearer, sign_in
from tests.mobile.test_reads_activities import ride, track

CHINA = ZoneInfo("Asia/Shanghai")


def half_past_midnight_in_china() -> datetime:
    """The latest 16:30 UTC at least an hour ago: 00:30 in China, the next day there."""
    now = datetime.now(UTC)
    at = now.replace(hour=16, minute=30, second=0, microsecond=0)
    return at if at <= now - timedelta(hours=1) else at - timedelta(days=1)


def months_back(now: datetime, n: int) -> list[str]:
    local = now.astimezone(CHINA)
    index = local.year * 12 + local.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index, index - n, -1)]


async def test_monthly_totals_cover_the_last_calendar_months_in_china_time(mclient, upstreams):
    auth = bearer(await sign_in(mclient, upstreams))
    start = half_past_midnight_in_china()
    r = await mclient.post(f"{API}/activities", json=ride(points=track(start=start)), headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    grams = r.json()["reduction_g"]
    body = (await mclient.get(f"{API}/monthly?months=3", headers=auth)).json()
    assert body["timezone"] == "Asia/Shanghai"
    expected = months_back(datetime.now(UTC), 3)
    assert [t["month"] for t in body["totals"]] == expected  # every month, newest first
    ride_month = start.astimezone(CHINA).strftime("%Y-%m")  # may differ from the UTC month
    for t in body["totals"]:
        want = (1, grams) if t["month"] == ride_month else (0, 0)
        assert (t["trips"], t["reduction_g"]) == want, body
    assert [(m["month"], m["mode"], m["trips"]) for m in body["months"]] == [
        (ride_month, "own_bike", 1)
    ]
    one = (await mclient.get(f"{API}/monthly?months=1", headers=auth)).json()
    assert [t["month"] for t in one["totals"]] == expected[:1]


async def test_the_export_shows_days_in_china_time(mclient, upstreams):
    auth = bearer(await sign_in(mclient, upstreams))
    start = half_past_midnight_in_china()
    r = await mclient.post(f"{API}/activities", json=ride(points=track(start=start)), headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    export = (await mclient.get(f"{API}/me/export", headers=auth)).json()
    china_day = (start + timedelta(hours=8)).date().isoformat()
    assert china_day != start.date().isoformat()  # the UTC day is the day before
    assert export["timezone"] == "Asia/Shanghai"
    [item] = export["history"]
    assert item["day"] == china_day
    # Times stay RFC 3339 with their offset.
    assert datetime.fromisoformat(item["occurred_at"]) == start
    assert re.search(r"(Z|[+-]\d\d:\d\d)$", item["occurred_at"])
    assert export["ledger"] and {e["day"] for e in export["ledger"]} == {china_day}
