"""Reads are the caller's own; activities with track checks; idempotency; pagination; boards.
(The track checks' own unit tests: tests/behaviours/test_tracks.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kit.db import transaction
from points import service as points_service
from tests.mobile.conftest import API, bearer, sign_in
from tests.points.factories import POLICY, issuance, spend


def track(points: int = 12, step_deg: float = 0.0009, seconds: int = 20, start=None):
    """A ride northwards in Shenzhen: ~100 m per step."""
    t0 = start or datetime.now(UTC) - timedelta(hours=1)
    return [
        {
            "t": (t0 + timedelta(seconds=i * seconds)).isoformat(),
            "lat": 22.54 + i * step_deg,
            "lon": 114.05,
        }
        for i in range(points)
    ]


def ride(**kw):
    pts = kw.pop("points", None) or track()
    return {"type": "track", "mode": "cycling", "claimed_distance_m": 1100, "points": pts, **kw}


class TestActivities:
    async def test_ride_credited_with_verdict_and_idempotent(self, mclient, upstreams):
        auth = bearer(await sign_in(mclient, upstreams))
        body = ride()
        headers = {**auth, "Idempotency-Key": "ride-1"}
        r = await mclient.post(f"{API}/activities", json=body, headers=headers)
        assert r.status_code == 200, r.text
        v = r.json()
        assert v["status"] == "accepted", v
        assert v["reduction_g"] > 0 and v["points"] >= 0 and v["event_id"]
        assert v["methodology_version"] == "low-carbon-travel@1"
        again = await mclient.post(f"{API}/activities", json=body, headers=headers)
        assert again.json() == v
        other = await mclient.post(
            f"{API}/activities", json=ride(claimed_distance_m=1150), headers=headers
        )
        assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
        items = (await mclient.get(f"{API}/history?kind=bike_trip", headers=auth)).json()["items"]
        assert [i["event_id"] for i in items] == [v["event_id"]]

    async def test_bad_track_rejected_with_reason(self, mclient, upstreams):
        auth = bearer(await sign_in(mclient, upstreams))
        r = await mclient.post(
            f"{API}/activities", json=ride(points=track(seconds=5)), headers=auth
        )
        v = r.json()
        assert v["status"] == "rejected" and v["reason_code"] == "track_speed_spike"
        assert v["reduction_g"] == 0 and v["findings"][0]["message"]

    async def test_track_rejection_is_stored_and_shown_in_history(self, mclient, upstreams):
        auth = bearer(await sign_in(mclient, upstreams))
        body = ride(points=track(seconds=5))
        v = (await mclient.post(f"{API}/activities", json=body, headers=auth)).json()
        assert v["status"] == "rejected" and v["event_id"] and not v["duplicate"]
        [item] = (await mclient.get(f"{API}/history?status=rejected", headers=auth)).json()["items"]
        assert item["event_id"] == v["event_id"] and item["kind"] == "bike_trip"
        assert (item["reason_code"], item["reason"]) == (v["reason_code"], v["reason"])
        assert item["reduction_g"] == 0 and item["points"] == 0
        one = (await mclient.get(f"{API}/history/{v['event_id']}", headers=auth)).json()
        assert one == item
        # Sent again: the same rejection, answered as a duplicate, stored once, never credited.
        again = (await mclient.post(f"{API}/activities", json=body, headers=auth)).json()
        assert again["duplicate"] is True and again["status"] == "rejected"
        assert again["event_id"] == v["event_id"] and again["reason_code"] == "track_speed_spike"
        assert len((await mclient.get(f"{API}/history", headers=auth)).json()["items"]) == 1
        s = (await mclient.get(f"{API}/summary", headers=auth)).json()
        assert s["total_reduction_g"] == 0 and s["points_available"] == 0

    async def test_track_out_of_time_order_is_stored_rejected(self, mclient, upstreams):
        auth = bearer(await sign_in(mclient, upstreams))
        pts = track()
        pts[0], pts[-1] = pts[-1], pts[0]  # the last fix first: time runs backwards
        v = (await mclient.post(f"{API}/activities", json=ride(points=pts), headers=auth)).json()
        assert v["status"] == "rejected" and v["reason_code"] == "track_time_order"
        items = (await mclient.get(f"{API}/history", headers=auth)).json()["items"]
        assert [(i["event_id"], i["reason_code"]) for i in items] == [
            (v["event_id"], "track_time_order")
        ]

    async def test_steps_are_cumulative_over_the_day_and_capped(self, mclient, upstreams):
        """Apps report the day's running count: a higher count credits the steps above the
        last one (caps apply), the same count again is a duplicate, a lower one no credit."""
        auth = bearer(await sign_in(mclient, upstreams))
        day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()

        async def report(n: int) -> dict[str, Any]:
            r = await mclient.post(
                f"{API}/activities", json={"type": "steps", "day": day, "steps": n}, headers=auth
            )
            assert r.status_code == 200, r.text
            out: dict[str, Any] = r.json()
            return out

        first, higher = await report(2000), await report(4000)
        assert (first["status"], first["reduction_g"]) == ("accepted", 100)  # 0.0504 g/step
        assert (higher["status"], higher["reduction_g"]) == ("accepted", 201 - 100)
        assert not higher["duplicate"] and higher["event_id"] != first["event_id"]
        same = await report(4000)
        assert same["duplicate"] is True and same["event_id"] == higher["event_id"]
        lower = await report(3000)
        assert (lower["status"], lower["reason_code"]) == ("rejected", "steps_not_increased")
        capped = await report(150_000)
        assert capped["status"] == "accepted" and capped["reduction_g"] == 296 - 201
        s = (await mclient.get(f"{API}/summary", headers=auth)).json()
        assert s["total_reduction_g"] == 296  # the walking cap of the methodology

    async def test_two_residents_activities_never_collide(self, mclient, upstreams):
        """All app activities share one source: the same day's steps or the same client_ref
        from two residents are two activities, each credited to its own resident."""
        first = bearer(await sign_in(mclient, upstreams, phone="13812345678"))
        second = bearer(await sign_in(mclient, upstreams, phone="13912345678"))
        day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        steps = {"type": "steps", "day": day, "steps": 8000}
        a = (await mclient.post(f"{API}/activities", json=steps, headers=first)).json()
        b = (await mclient.post(f"{API}/activities", json=steps, headers=second)).json()
        assert a["status"] == b["status"] == "accepted"
        assert not b["duplicate"] and a["event_id"] != b["event_id"]
        body = ride(client_ref="phone-ride-1")
        c = (await mclient.post(f"{API}/activities", json=body, headers=first)).json()
        d = (await mclient.post(f"{API}/activities", json=body, headers=second)).json()
        assert c["status"] == "accepted" and d["status"] != "duplicate", d
        assert not d["duplicate"] and c["event_id"] != d["event_id"]
        for auth, ids in (
            (first, {a["event_id"], c["event_id"]}),
            (second, {b["event_id"], d["event_id"]}),
        ):
            items = (await mclient.get(f"{API}/history", headers=auth)).json()["items"]
            assert {i["event_id"] for i in items} == ids


class TestOwnDataOnly:
    async def test_every_read_is_the_callers_own(self, mclient, upstreams):
        alice = await sign_in(mclient, upstreams, "13800000001")
        bob = await sign_in(mclient, upstreams, "13800000002")
        r = await mclient.post(f"{API}/activities", json=ride(), headers=bearer(alice))
        alice_event = r.json()["event_id"]
        assert alice_event
        b = bearer(bob)
        # Bob's reads show none of Alice's data, whatever ids he passes.
        r = await mclient.get(f"{API}/history/{alice_event}", headers=b)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        assert (await mclient.get(f"{API}/history/not-a-uuid", headers=b)).status_code == 404
        for path in (
            f"/history?resident_id={alice['resident_id']}",
            f"/summary?resident_id={alice['resident_id']}",
            f"/monthly?resident_id={alice['resident_id']}",
            f"/me/export?resident_id={alice['resident_id']}",
            f"/data-sources?resident_id={alice['resident_id']}",
        ):
            r = await mclient.get(API + path, headers=b)
            assert r.status_code == 200, path
            assert alice_event not in r.text and alice["resident_id"] not in r.text, path
        summary = (await mclient.get(f"{API}/summary", headers=b)).json()
        assert summary["total_reduction_g"] == 0
        board = (await mclient.get(f"{API}/leaderboard", headers=b)).json()
        assert alice["resident_id"] not in str(board)
        assert [e["me"] for e in board["entries"]] == [False, True]
        # Alice's own history does have it.
        r = await mclient.get(f"{API}/history/{alice_event}", headers=bearer(alice))
        assert r.status_code == 200


class TestPaginationAndBoards:
    async def test_cursor_pagination_and_filters(self, mclient, upstreams):
        auth = bearer(await sign_in(mclient, upstreams))
        base = datetime.now(UTC) - timedelta(hours=5)
        ids = []
        for i in range(5):
            r = await mclient.post(
                f"{API}/activities",
                json=ride(points=track(start=base + timedelta(minutes=30 * i))),
                headers=auth,
            )
            ids.append(r.json()["event_id"])
        seen, cursor = [], None
        while True:
            q = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
            page = (await mclient.get(f"{API}/history{q}", headers=auth)).json()
            seen += [i["event_id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == 5 and set(seen) == {i for i in ids if i}
        rejected = (await mclient.get(f"{API}/history?status=rejected", headers=auth)).json()
        assert all(i["status"] == "rejected" for i in rejected["items"])
        r = await mclient.get(f"{API}/history?cursor=garbage", headers=auth)
        assert r.status_code == 400 and r.json()["code"] == "cursor_invalid"

    async def test_board_rebuilt_from_ledger_when_lost(self, mclient, upstreams, redis):
        alice = await sign_in(mclient, upstreams, "13800000001")
        bob = await sign_in(mclient, upstreams, "13800000002")
        await mclient.post(f"{API}/activities", json=ride(), headers=bearer(alice))
        await redis.flushdb()  # Redis lost everything
        s = (await mclient.get(f"{API}/summary", headers=bearer(bob))).json()
        assert s["district_rank"] == 2 and s["district_residents"] == 2
        board = (await mclient.get(f"{API}/leaderboard", headers=bearer(bob))).json()
        assert board["entries"][0]["reduction_g"] > 0 and board["my_rank"] == 2

    async def test_levels_are_data(self, mclient, upstreams):
        auth = bearer(await sign_in(mclient, upstreams))
        levels = (await mclient.get(f"{API}/levels", headers=auth)).json()["levels"]
        assert levels[0]["min_grams"] == 0
        assert [lv["min_grams"] for lv in levels] == sorted(lv["min_grams"] for lv in levels)


class TestSummaryRead:
    async def test_one_statement_agrees_with_the_ledgers_own_reads(
        self, mclient, upstreams, pool, owner_pool
    ):
        """The summary reads the ledger in one statement (points.reads.owner_summary,
        OWNER_SUMMARY_SQL); it must say what points.service says."""
        pair = await sign_in(mclient, upstreams)
        rid = pair["resident_id"]
        async with transaction(pool) as tx:
            await points_service.issue_reductions(
                tx, [issuance(rid, 1234), issuance(rid, 2000)], POLICY
            )
        async with transaction(pool) as tx:
            await points_service.place_hold(tx, spend(rid, 30), POLICY)
        async with owner_pool.acquire() as conn:  # one lot expires within 30 days
            await conn.execute(  # (the owner: the application may update only `remaining`)
                "UPDATE point_lots SET expires_at = now() + interval '10 days' WHERE id = "
                "(SELECT min(id) FROM point_lots)"
            )
        s = (await mclient.get(f"{API}/summary", headers=bearer(pair))).json()
        grams, pts = await points_service.balances(pool, "resident", rid)
        lots = await points_service.expiring(pool, "resident", rid, within_days=30)
        assert (grams.asset, pts.asset) == ("CO2E_G", "POINT")
        assert s["total_reduction_g"] == grams.posted == 3234
        assert (s["points_available"], s["points_pending"]) == (pts.available, pts.pending)
        assert s["points_pending"] == 30
        assert s["points_expiring_30d"] == sum(lot.amount for lot in lots) > 0
        assert s["district_rank"] == 1 and s["district_residents"] == 1
