"""The carbon account report: issued as a PDF, kept byte for byte with its SHA-256, downloaded
as issued, and checked by anyone through the public API (whose, which period, when: no more)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from enterprises import report
from enterprises.schemas import Enterprise
from kit.errors import InvalidInput
from tests.enterprises.api import admin, signed_in

PUBLIC = "/api/public/v1/enterprise-reports"
ZONE = ZoneInfo("Asia/Shanghai")


def _content(**kw) -> report.ReportContent:
    e = Enterprise(
        id=uuid.UUID(int=7),
        credit_code="91350100M000100Y43",
        name="测试化工 <有限> & 公司",
        industry="C2611",
        district="440303",
        size_class="above",
        registered_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    fields = {
        "report_id": uuid.UUID(int=1),
        "issued_at": datetime(2026, 3, 1, 2, 0, tzinfo=UTC),
        "enterprise": e,
        "period": "2026-02",
        "start": date(2026, 2, 1),
        "end": date(2026, 3, 1),
        "sections": [
            report.Section(title="排放 · Emissions", columns=["种类", "t"], rows=[["电力", "1"]])
        ],
    }
    return report.ReportContent(**{**fields, **kw})


class TestRendering:
    def test_a_pdf_with_the_cjk_font_and_no_clock_inside(self):
        pdf = report.render_pdf(_content(), ZONE)
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
        assert b"STSong-Light" in pdf  # the built-in CID font: no font file shipped
        assert pdf == report.render_pdf(_content(), ZONE)  # deterministic

    def test_what_it_says_changes_its_bytes(self):
        a = report.render_pdf(_content(), ZONE)
        assert report.render_pdf(_content(report_id=uuid.UUID(int=2)), ZONE) != a
        assert report.render_pdf(_content(period="2026-01"), ZONE) != a

    @pytest.mark.parametrize(
        ("period", "bounds"),
        [
            ("2026-02", (date(2026, 2, 1), date(2026, 3, 1))),
            ("2026-12", (date(2026, 12, 1), date(2027, 1, 1))),
            ("2025", (date(2025, 1, 1), date(2026, 1, 1))),
        ],
    )
    def test_periods(self, period, bounds):
        assert report.period_bounds(period) == bounds

    @pytest.mark.parametrize("period", ["2026-13", "2026-00", "26-01", "1999", "2026-1", ""])
    def test_bad_periods(self, period):
        with pytest.raises(InvalidInput):
            report.period_bounds(period)


class TestIssued:
    async def test_issue_download_and_verify(self, client, pool):
        a = await signed_in(client, await admin(pool))
        r = await client.post(
            f"{a.base}/carbon-reports", json={"period": "2026-02"}, headers=a.headers
        )
        assert r.status_code == 201, r.text
        issued = r.json()
        assert issued["period"] == "2026-02" and issued["media_type"] == "application/pdf"
        assert issued["verify"] == f"{PUBLIC}/{issued['sha256']}"
        f = await client.get(issued["download"], headers=a.headers)
        assert f.status_code == 200 and f.headers["content-type"].startswith("application/pdf")
        assert hashlib.sha256(f.content).hexdigest() == issued["sha256"]
        assert f.headers["x-content-sha256"] == issued["sha256"]
        assert len(f.content) == issued["size_bytes"]
        assert "attachment" in f.headers["content-disposition"]
        listed = (await client.get(f"{a.base}/carbon-reports", headers=a.headers)).json()
        assert [x["id"] for x in listed] == [issued["id"]]

        # Anyone (no token) can check the hash: whose, which period, when. Nothing else.
        v = await client.get(issued["verify"])
        assert v.status_code == 200, v.text
        assert v.json() == {
            "sha256": issued["sha256"],
            "credit_code": a.enterprise.credit_code,
            "enterprise_name": a.enterprise.name,
            "period": "2026-02",
            "issued_at": issued["issued_at"],
        }
        # Upper-case hex is the same hash.
        assert (await client.get(f"{PUBLIC}/{issued['sha256'].upper()}")).status_code == 200

    async def test_a_changed_file_is_not_found(self, client, pool):
        a = await signed_in(client, await admin(pool))
        r = await client.post(
            f"{a.base}/carbon-reports", json={"period": "2026"}, headers=a.headers
        )
        f = await client.get(r.json()["download"], headers=a.headers)
        tampered = f.content[:200] + bytes([f.content[200] ^ 1]) + f.content[201:]
        assert tampered != f.content
        v = await client.get(f"{PUBLIC}/{hashlib.sha256(tampered).hexdigest()}")
        assert v.status_code == 404 and v.json()["code"] == "not_found"

    @pytest.mark.parametrize("bad", ["abc", "g" * 64, "0" * 65])
    async def test_a_malformed_hash_is_a_client_error(self, client, bad):
        r = await client.get(f"{PUBLIC}/{bad}")
        assert 400 <= r.status_code < 500
        assert r.headers["content-type"].startswith("application/problem+json")

    async def test_two_reports_of_one_period_are_two_files_and_a_key_replays(self, client, pool):
        a = await signed_in(client, await admin(pool))
        body = {"period": "2026-02"}
        first = await client.post(f"{a.base}/carbon-reports", json=body, headers=a.headers)
        second = await client.post(f"{a.base}/carbon-reports", json=body, headers=a.headers)
        assert first.json()["sha256"] != second.json()["sha256"]
        key = {**a.headers, "Idempotency-Key": "report-2026-02"}
        k1 = await client.post(f"{a.base}/carbon-reports", json=body, headers=key)
        k2 = await client.post(f"{a.base}/carbon-reports", json=body, headers=key)
        assert k1.status_code == k2.status_code == 201 and k1.json() == k2.json()
        listed = (await client.get(f"{a.base}/carbon-reports", headers=a.headers)).json()
        assert len(listed) == 3

    async def test_a_bad_period_is_validation_failed(self, client, pool):
        a = await signed_in(client, await admin(pool))
        r = await client.post(
            f"{a.base}/carbon-reports", json={"period": "2026-13"}, headers=a.headers
        )
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"
