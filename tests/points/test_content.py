"""A transfer's content (points.content): its row, wire form and leaf hash agree (no database).

The pinned hashes were computed with the code before the content Struct existed (the v1
format as ``merkle.leaf_hash`` spelled it): if any of them changes, every journal already
sealed stops auditing, so a change here is never a test to update but a format to version.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from points import merkle, repository
from points.content import ROW_COLUMNS, TransferContent
from points.schemas import Owner, Transfer

RECORDED = datetime(2026, 3, 1, 8, 0, 1, tzinfo=UTC)

HOLD = TransferContent(
    idempotency_key="hold:order-42",
    phase="pending",
    kind="redemption",
    reason_code="reward",
    asset="POINT",
    debit=Owner("resident", "6f1c9d1e-0000-4000-8000-000000000001"),
    credit=Owner("merchant", "m1"),
    amount=37,
    source_ref="order-42",
    region_code="440305",
    # Not UTC on purpose: the hash commits to the instant, written in UTC.
    occurred_at=datetime(2026, 3, 1, 16, 0, tzinfo=timezone(timedelta(hours=8))),
    timeout_at=datetime(2026, 3, 1, 8, 15, tzinfo=UTC),
)
HOLD_V1 = "cc187085a64116654cd6212b29c53908dbabce43f442680139358d3039a33253"

# Every optional field set (as no real transfer has them together), microseconds included.
FULL = TransferContent(
    idempotency_key="issuance:co2e:evt-1",
    phase="post_pending",
    kind="issuance",
    reason_code="verified_reduction",
    asset="CO2E_G",
    debit=Owner("system", "issuance.3"),
    credit=Owner("resident", "r-1"),
    amount=1234,
    source_ref=None,
    region_code="440305",
    occurred_at=datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC),
    pending_id=17,
    reverses_id=42,
)
FULL_V1 = "7990e39f243ca6e24f8cc69bfa3cc9f8bd1e321a9a53c52cae645b253adb3a29"


@pytest.mark.parametrize(("content", "pinned"), [(HOLD, HOLD_V1), (FULL, FULL_V1)])
class TestDerivations:
    def test_the_leaf_is_format_v1(self, content: TransferContent, pinned: str) -> None:
        assert content.leaf().hex() == pinned

    def test_the_wire_form_hashes_to_the_same_leaf(
        self, content: TransferContent, pinned: str
    ) -> None:
        wire = content.wire(99, RECORDED)
        assert merkle.transfer_leaf(wire).hex() == pinned
        assert TransferContent.of(wire) == content
        assert (wire.id, wire.recorded_at) == ("99", RECORDED)

    def test_the_wire_form_survives_json(self, content: TransferContent, pinned: str) -> None:
        wire = content.wire(99, RECORDED)
        again = msgspec.json.decode(msgspec.json.encode(wire), type=Transfer)
        assert merkle.transfer_leaf(again).hex() == pinned

    def test_the_row_holds_the_content(self, content: TransferContent, pinned: str) -> None:
        row = dict(zip(ROW_COLUMNS, content.row(5, 6), strict=True))
        assert (row["debit_account_id"], row["credit_account_id"]) == (5, 6)
        stored = {
            **row,
            "debit_type": content.debit.owner_type,
            "debit_id": content.debit.owner_id,
            "credit_type": content.credit.owner_type,
            "credit_id": content.credit.owner_id,
        }
        # What the repository reads back is the content it wrote, so the same leaf.
        assert TransferContent.from_record(stored) == content
        assert TransferContent.from_record(stored).leaf().hex() == pinned

    def test_every_content_field_reaches_the_row_and_the_wire(
        self, content: TransferContent, pinned: str
    ) -> None:
        fields = set(content.__struct_fields__)
        owners = {"debit", "credit"}
        assert set(ROW_COLUMNS) == (fields - owners) | {"debit_account_id", "credit_account_id"}
        assert fields <= set(Transfer.__struct_fields__)


def test_each_content_field_changes_the_leaf() -> None:
    changed = {
        "idempotency_key": "other",
        "phase": "posted",
        "kind": "other",
        "reason_code": "other",
        "asset": "CO2E_G",
        "debit": Owner("resident", "someone-else"),
        "credit": Owner("merchant", "m2"),
        "amount": 38,
        "source_ref": None,
        "region_code": "440306",
        "occurred_at": HOLD.occurred_at + timedelta(microseconds=1),
        "pending_id": 1,
        "reverses_id": 1,
        "timeout_at": None,
    }
    assert set(changed) == set(HOLD.__struct_fields__)
    for name, value in changed.items():
        assert msgspec.structs.replace(HOLD, **{name: value}).leaf() != HOLD.leaf(), name


def test_the_insert_statement_lists_the_row_columns_in_order() -> None:
    """The INSERT's column list and its unnest arrays come from ROW_COLUMNS."""
    sql = repository._INSERT_TRANSFERS
    assert f"INSERT INTO ledger_transfers (batch_id, {', '.join(ROW_COLUMNS)}, hash)" in sql
    assert f"AS u({', '.join(ROW_COLUMNS)}, hash, lot_expires_at, ord)" in sql
