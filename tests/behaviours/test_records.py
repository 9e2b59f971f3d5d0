"""Operators' records (issue 8): a record id reused with other content, cumulative daily steps,
no districts imported, and what is kept of records that came without consent."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta, timezone
from typing import Any

import asyncpg
import msgspec
import pytest

from behaviours import service
from behaviours.pipeline import APP_OPERATOR_ID
from kit.db import transaction
from tests.behaviours.factories import (
    bike,
    co2e_balance,
    import_districts,
    link,
    linked,
    metro,
    now,
    operator,
    resident,
    run,
    steps,
)


@pytest.fixture
async def metro_op(pool):
    await operator(pool, "metro")


class TestRecordIdReuse:
    async def test_same_id_other_content_is_refused_and_credits_nothing(
        self, pool, settings, metro_op
    ):
        rid, subject = await linked(pool)
        start = now() - timedelta(hours=3)
        [first] = await run(pool, settings, [metro(subject, "r1", start=start)])
        assert first.status == "accepted"
        [same] = await run(pool, settings, [metro(subject, "r1", start=start)])
        assert same.status == "duplicate" and same.event_id == first.event_id
        # The same trip written with another offset is the same content.
        china = start.astimezone(timezone(timedelta(hours=8)))
        [same_again] = await run(pool, settings, [metro(subject, "r1", start=china)])
        assert same_again.status == "duplicate"
        other = metro(subject, "r1", start=start - timedelta(hours=1), distance_m=12_000)
        [reused] = await run(pool, settings, [other])
        assert (reused.status, reused.reason_code) == ("rejected", "record_id_reused")
        assert reused.points == 0 and reused.reduction_g == 0 and reused.message
        assert await co2e_balance(pool, rid) == (first.reduction_g, first.points)
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT distance_m FROM behaviour_events")
        assert [r["distance_m"] for r in rows] == [10_000]  # the first record, untouched

    async def test_within_one_batch(self, pool, settings, metro_op):
        rid, subject = await linked(pool)
        start = now() - timedelta(hours=3)
        a, b, c = await run(
            pool,
            settings,
            [
                metro(subject, "r1", start=start),
                metro(subject, "r1", start=start),
                metro(subject, "r1", start=start, distance_m=20_000),
            ],
        )
        assert a.status == "accepted" and b.status == "duplicate"
        assert c.reason_code == "record_id_reused"
        assert (await co2e_balance(pool, rid))[0] == a.reduction_g

    async def test_rows_stored_before_the_digest_are_answered_duplicate(
        self, pool, settings, metro_op
    ):
        _, subject = await linked(pool)
        [first] = await run(pool, settings, [metro(subject, "r1")])
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT content_digest FROM behaviour_events") is not None
            await conn.execute("UPDATE behaviour_events SET content_digest = NULL")
        [again] = await run(pool, settings, [metro(subject, "r1", distance_m=12_000)])
        assert again.status == "duplicate" and again.event_id == first.event_id


def yesterday_steps(rid_: str, n: int):
    day = (now().astimezone(timezone(timedelta(hours=8))) - timedelta(days=1)).date()
    return steps("me", rid_, n, day=day)


class TestCumulativeSteps:
    async def app(self, pool, settings, rid, *events):
        return await run(pool, settings, list(events), op_id=APP_OPERATOR_ID, resident_id=rid)

    async def test_higher_counts_credit_the_difference_until_the_cap(self, pool, settings):
        rid = await resident(pool)
        [a] = await self.app(pool, settings, rid, yesterday_steps("a", 2000))
        [b] = await self.app(pool, settings, rid, yesterday_steps("b", 4000))
        [lower] = await self.app(pool, settings, rid, yesterday_steps("c", 3000))
        [equal] = await self.app(pool, settings, rid, yesterday_steps("d", 4000))
        [c] = await self.app(pool, settings, rid, yesterday_steps("e", 10_000))
        [d] = await self.app(pool, settings, rid, yesterday_steps("f", 12_000))
        assert (a.status, a.reduction_g) == ("accepted", 100)  # 0.0504 g x 2000 = 100.8
        assert (b.status, b.reduction_g) == ("accepted", 201 - 100)  # floor(201.6) - 100
        assert lower.reason_code == equal.reason_code == "steps_not_increased"
        assert "4000 steps already credited" in (lower.message or "")
        assert (c.status, c.reduction_g) == ("accepted", 296 - 201)  # clipped by the 296 g cap
        assert d.reason_code == "daily_cap_reached"
        assert (await co2e_balance(pool, rid))[0] == 296
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT e.id::text, e.reduction_g, count(t.*) AS transfers FROM behaviour_events e"
                " LEFT JOIN ledger_transfers t ON t.source_ref = e.id::text"
                " WHERE e.status = 'accepted' GROUP BY 1, 2"
            )
        # Each increment is its own event, credited by its own transfers.
        assert sorted(r["reduction_g"] for r in rows) == [95, 100, 101]
        assert all(r["transfers"] > 0 for r in rows)

    async def test_several_counts_in_one_batch_and_another_source(self, pool, settings):
        await operator(pool, "band", "platform")
        rid = await resident(pool)
        subject = await link(pool, rid, "band")
        a, b = await self.app(
            pool, settings, rid, yesterday_steps("a", 2000), yesterday_steps("b", 5000)
        )
        assert (a.reduction_g, b.reduction_g) == (100, 252 - 100)
        # A wearable's count of the same day builds on what the app already credited.
        day = (now().astimezone(timezone(timedelta(hours=8))) - timedelta(days=1)).date()
        [same] = await run(pool, settings, [steps(subject, "w1", 5000, day=day)], op_id="band")
        [more] = await run(pool, settings, [steps(subject, "w2", 5500, day=day)], op_id="band")
        assert same.reason_code == "steps_not_increased"
        assert (more.status, more.reduction_g) == ("accepted", 277 - 252)
        assert (await co2e_balance(pool, rid))[0] == 277

    async def test_concurrent_reports_never_credit_the_same_steps_twice(self, pool, settings):
        rid = await resident(pool)
        [first] = await self.app(pool, settings, rid, yesterday_steps("a", 1000))
        assert first.reduction_g == 50
        results = await asyncio.gather(
            self.app(pool, settings, rid, yesterday_steps("b", 1500)),
            self.app(pool, settings, rid, yesterday_steps("c", 2000)),
            self.app(pool, settings, rid, yesterday_steps("d", 2000)),
            return_exceptions=True,
        )
        assert all(isinstance(r, list) for r in results), results
        # Whatever the order: the day's grams are those of its highest count, credited once.
        assert (await co2e_balance(pool, rid))[0] == 100  # floor(0.0504 x 2000)


class TestDistrictsRequired:
    async def test_trips_with_coordinates_are_refused_until_districts_are_imported(
        self, pool, settings
    ):
        await operator(pool, "bikes", "bike_share")
        await operator(pool, "metro")
        rid = await resident(pool)
        bikes, metro_s = await link(pool, rid, "bikes"), await link(pool, rid, "metro")
        beijing = bike(bikes, "far", a=(39.90, 116.40), b=(39.90, 116.43))
        [far] = await run(pool, settings, [beijing], op_id="bikes")
        assert (far.status, far.reason_code) == ("rejected", "region_not_configured")
        assert "districts" in (far.message or "")
        # Without coordinates there is nothing to place: the home district stands in.
        [ride] = await run(pool, settings, [metro(metro_s, "m1")], op_id="metro")
        assert ride.status == "accepted"
        async with pool.acquire() as conn:
            assert await service.district_count(conn) == 0
        await import_districts(pool)
        async with pool.acquire() as conn:
            assert await service.district_count(conn) == 2
        near = bike(bikes, "near", start=now() - timedelta(hours=5))
        [ok, still_far] = await run(
            pool,
            settings,
            [near, bike(bikes, "far2", a=(39.90, 116.40), b=(39.90, 116.43))],
            op_id="bikes",
        )
        assert ok.status == "accepted"
        assert still_far.reason_code == "outside_region"

    async def test_readyz_says_so_and_stays_ready(self, client, pool):
        r = await client.get("/readyz")
        assert r.status_code == 200
        assert r.json()["checks"]["districts"].startswith("none imported: trips with coordinates")
        await import_districts(pool)
        r = await client.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"]["districts"] == "2 imported"

    async def test_dev_start_up_line(self, settings):
        from server.cli import _districts_note

        assert settings.database.url
        note = await _districts_note(settings.database.url)
        assert note.startswith("none imported: trips with coordinates are refused")


class TestWithoutConsent:
    async def test_after_unlink_only_the_verdict_is_kept_and_history_shows_nothing(
        self, pool, settings
    ):
        from server.mobile import service as mobile

        await import_districts(pool)
        await operator(pool, "bikes", "bike_share")
        rid, subject = await linked(pool, "bikes")
        [kept] = await run(pool, settings, [bike(subject, "b0")], op_id="bikes")
        async with transaction(pool) as tx:
            await service.unlink_operator(tx, rid, "bikes")
        later = bike(subject, "b1", start=now() - timedelta(hours=5))
        [v] = await run(pool, settings, [later], op_id="bikes")
        assert (v.status, v.reason_code) == ("rejected", "consent_revoked") and v.event_id
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM behaviour_events WHERE id = $1", v.event_id)
            history = await service.resident_events(conn, rid)
            page = await mobile.history(conn, rid, kind=None, status=None, cursor=None, limit=50)
        assert (row["operator_id"], row["record_id"], row["status"]) == ("bikes", "b1", "rejected")
        assert row["reason_code"] == "consent_revoked" and row["received_at"] is not None
        kept_columns = {"id", "operator_id", "record_id", "received_at", "status"}
        kept_columns |= {"reason_code", "reason_message", "reduction_g", "points"}
        columns = list(row.keys())  # a Record iterates over its values
        leftovers = {k: row[k] for k in columns if k not in kept_columns and row[k] is not None}
        assert leftovers == {}  # no subject, resident, times, places, distance, digest
        assert [e.id for e in history] == [kept.event_id]
        assert [i.event_id for i in page.items] == [kept.event_id]
        # A resend is still answered from the verdict.
        [again] = await run(pool, settings, [later], op_id="bikes")
        assert again.status == "duplicate" and again.reason_code == "consent_revoked"

    async def test_other_rejections_without_consent_are_minimal_too(self, pool, settings):
        await import_districts(pool)
        await operator(pool, "bikes", "bike_share")
        _, subject = await linked(pool, "bikes", days=0, scope=["cycling"])
        stranger, early = await run(
            pool,
            settings,
            [bike("nobody", "x1"), bike(subject, "x2", start=now() - timedelta(days=2))],
            op_id="bikes",
        )
        assert (stranger.reason_code, early.reason_code) == ("unknown_subject", "before_consent")
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT subject_ref, resident_id, started_at, kind, district_code "
                "FROM behaviour_events"
            )
        assert [tuple(r) for r in rows] == [(None,) * 5, (None,) * 5]

    async def test_the_database_refuses_a_full_row_without_consent(self, pool):
        rid = await resident(pool)
        at = now().astimezone(UTC)
        async with pool.acquire() as conn:
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(
                    "INSERT INTO behaviour_events (id, operator_id, record_id, subject_ref, "
                    "resident_id, kind, mode, behaviour, started_at, ended_at, received_at, "
                    "status, reason_code) VALUES (gen_random_uuid(), 'metro', 'x', 's', $1, "
                    "'walk', 'walk', 'walking', $2, $2, $2, 'rejected', 'consent_revoked')",
                    rid,
                    at,
                )


def test_content_digest_is_the_canonical_form():
    from behaviours.events import event_decoder
    from behaviours.rules import content_digest

    a = event_decoder.decode(
        b'{"type":"daily_steps","record_id":"1","subject":"s","day":"2025-01-01","steps":5}'
    )
    b = event_decoder.decode(
        b'{"steps":5,"day":"2025-01-01","subject":"s","record_id":"1","type":"daily_steps"}'
    )
    c = msgspec.structs.replace(a, steps=6)
    assert content_digest(a) == content_digest(b) != content_digest(c)


# --- daily files' records into events (behaviours.records), no database ----------------------


def test_file_lines_decode_into_events_or_their_verdicts():
    from behaviours.events import DailySteps
    from behaviours.records import line_verdict, parse
    from integrations.operator_records import LineError

    good = b'{"type":"daily_steps","record_id":"1","subject":"s","day":"2025-01-01","steps":5}'
    content = b"\n".join(
        [
            good,
            b'{"type":"daily_steps","record_id":"2","subject":"s","day":"2025-01-01"}',
            b"not json",
            b'{"type":"daily_steps","record_id":"3","subject":"s\\u0000","day":"2025-01-01",'
            b'"steps":5}',
            b"[" * 10_000,
            b'{"type":"daily_steps","record_id":"4\xff"}',
        ]
    )
    parsed = dict(parse("ndjson", content))
    assert isinstance(parsed[1], DailySteps) and parsed[1].steps == 5
    verdicts = {n: line_verdict(e) for n, e in parsed.items() if isinstance(e, LineError)}
    assert set(verdicts) == {2, 3, 4, 5, 6}
    assert {v.reason_code for v in verdicts.values()} == {"record_invalid"}
    assert {v.status for v in verdicts.values()} == {"rejected"}
    assert verdicts[2].record_id == "2" and "missing required field `steps`" in (
        verdicts[2].message or ""
    )
    assert verdicts[3].record_id == "line:3" and "not valid JSON" in (verdicts[3].message or "")
    assert verdicts[4].record_id == "3" and "NUL" in (verdicts[4].message or "")
    assert "does not match the event schema" in (verdicts[5].message or "")
    assert "not valid UTF-8" in (verdicts[6].message or "")
    assert all((v.message or "").startswith(f"line {n}: ") for n, v in verdicts.items())


def test_csv_records_decode_with_the_columns_names():
    from behaviours.events import TransitTrip
    from behaviours.records import parse
    from integrations.operator_records import LineError

    content = (
        b"type,record_id,subject,mode,started_at,ended_at\n"
        b"transit_trip,t1,s,bus,2025-05-01T08:00:00+08:00,2025-05-01T08:20:00+08:00\n"
        b"transit_trip,t2,s,bus,yesterday,2025-05-01T08:20:00+08:00\n"
        b"transit_trip,t3,s,car,2025-05-01T08:00:00+08:00,2025-05-01T08:20:00+08:00\n"
        b"transit_trip,,s,bus,2025-05-01T08:00:00+08:00,2025-05-01T08:20:00+08:00\n"
    )
    parsed = dict(parse("csv", content))
    assert isinstance(parsed[2], TransitTrip) and parsed[2].boarded_at.utcoffset()
    bad_time, bad_mode = parsed[3], parsed[4]
    assert isinstance(bad_time, LineError) and bad_time.record_id == "t2"
    assert bad_time.message.startswith("column started_at: ")
    assert isinstance(bad_mode, LineError) and bad_mode.record_id == "t3"
    assert bad_mode.message.startswith("column mode: ")
    no_id = parsed[5]
    assert isinstance(no_id, LineError) and no_id.record_id == "line:5"
    assert no_id.message == "column record_id: expected `str`, got `null`"


def test_the_quick_look_at_a_record_agrees_with_the_full_walk():
    """``unprocessable`` answers most records from a look at their fields and walks the rest
    (behaviours.records._plainly_fine): for plain and hostile texts and numbers, and times at
    the edges events allow, its answer is the full walk's."""
    from datetime import date, datetime

    from behaviours.events import DailySteps, MeterReading, TransitTrip
    from behaviours.records import unprocessable
    from integrations.operator_records import value_problem

    t = datetime(2025, 5, 1, 8, tzinfo=UTC)
    texts = ["plain", "非ASCII", "nul\x00", "\udcff", ""]
    # (events refuse times outside 1970-2999 when built: behaviours.events.check_times)
    times = [t, datetime(1970, 1, 1, tzinfo=UTC), datetime(2999, 12, 31, 23, tzinfo=UTC)]
    events: list[Any] = []
    for text in texts:
        for when in times:
            events.append(
                TransitTrip(
                    record_id=text or "r",
                    subject=text,
                    mode="bus",
                    boarded_at=when,
                    alighted_at=t,
                )
            )
    for km in [1.5, float("inf"), float("nan"), 0.0]:
        events.append(
            MeterReading(
                record_id="m",
                subject="s",
                utility="electricity",
                account="a",
                period_start=t,
                period_end=t,
                quantity=km,
            )
        )
    for day in [date(2025, 1, 1), date(1970, 1, 1), date(2999, 12, 31)]:
        events.append(DailySteps(record_id="d", subject="s", day=day, steps=5))
    found = [unprocessable(e) for e in events]
    full = [
        value_problem(msgspec.to_builtins(e, builtin_types=(datetime, date)), "$") for e in events
    ]
    assert found == full
    assert sum(f is None for f in found) > 5 and sum(f is not None for f in found) >= 8
