"""The mobile API in the caller's language: verdicts, level names, district names."""

from __future__ import annotations

import re

from server.errors import catalogue
from tests.mobile.conftest import API, TEST_DISTRICTS, bearer, sign_in
from tests.mobile.test_reads_activities import ride, track

CJK = re.compile(r"[\u4e00-\u9fff]")
ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en-US,en;q=0.9"}


async def test_a_rejected_activity_and_its_history_in_either_language(mclient, upstreams):
    auth = bearer(await sign_in(mclient, upstreams))
    cat = catalogue()
    body = ride(points=track(seconds=5))  # too fast: track_speed_spike
    zh = await mclient.post(f"{API}/activities", json=body, headers={**auth, **ZH})
    en = await mclient.post(f"{API}/activities", json=body, headers={**auth, **EN})
    v_zh, v_en = zh.json(), en.json()
    assert v_zh["reason_code"] == v_en["reason_code"] == "track_speed_spike"
    assert v_en["duplicate"] and v_zh["event_id"] == v_en["event_id"]
    assert v_zh["reason"] == cat.get("zh-CN", "reasons.track_speed_spike")
    assert CJK.search(v_zh["reason"]) and not CJK.search(v_en["reason"])
    assert v_en["reason"].startswith(cat.get("en", "reasons.track_speed_spike") or "-")
    assert [f["code"] for f in v_zh["findings"]] == [f["code"] for f in v_en["findings"]]
    assert all(CJK.search(f["message"]) for f in v_zh["findings"])
    assert zh.headers["content-language"] == "zh-CN" and en.headers["content-language"] == "en"
    [item_zh] = (await mclient.get(f"{API}/history", headers={**auth, **ZH})).json()["items"]
    [item_en] = (await mclient.get(f"{API}/history", headers={**auth, **EN})).json()["items"]
    assert (item_zh["reason_code"], item_zh["reason"]) == (v_zh["reason_code"], v_zh["reason"])
    assert (item_en["reason_code"], item_en["reason"]) == (v_en["reason_code"], v_en["reason"])
    one = await mclient.get(f"{API}/history/{v_zh['event_id']}", headers=auth)  # default: zh
    assert one.json()["reason"] == v_zh["reason"]


async def test_levels_and_district_names_in_what_a_person_reads(mclient, upstreams):
    auth = bearer(await sign_in(mclient, upstreams, district_code="440305"))
    name = TEST_DISTRICTS["440305"][0]
    s = (await mclient.get(f"{API}/summary", headers=auth)).json()
    assert (s["district_code"], s["district_name"]) == ("440305", name)
    assert s["level"]["name"] == "萌芽" and s["next_level"]["name"] == "幼苗"
    assert s["next_level"]["description"] == "累计核证减排达到 1 千克 即可达到。"
    s_en = (await mclient.get(f"{API}/summary", headers={**auth, **EN})).json()
    assert s_en["level"]["name"] == "Sprout" and s_en["district_name"] == name
    assert s_en["next_level"]["description"] == "Reached at 1 kg of verified reductions."
    me = (await mclient.get(f"{API}/me", headers=auth)).json()
    assert (me["district_name"], me["level"]["name"]) == (name, "萌芽")
    board = (await mclient.get(f"{API}/leaderboard", headers=auth)).json()
    assert board["district_name"] == name
    moved = await mclient.patch(f"{API}/me", json={"district_code": "440306"}, headers=auth)
    assert moved.json()["district_name"] == TEST_DISTRICTS["440306"][0]
    cleared = await mclient.patch(f"{API}/me", json={"district_code": None}, headers=auth)
    assert cleared.json()["district_name"] is None
    levels = (await mclient.get(f"{API}/levels", headers={**auth, **EN})).json()["levels"]
    assert [lv["name"] for lv in levels][:2] == ["Sprout", "Seedling"]
    zh_levels = (await mclient.get(f"{API}/levels", headers=auth)).json()["levels"]
    assert all(CJK.search(lv["name"]) and CJK.search(lv["description"]) for lv in zh_levels)
