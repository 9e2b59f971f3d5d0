"""Redemption, two-phase on the ledger (docs/rewards.md):

- ``redeem``: in one transaction, the resident's limit counters (a conditional upsert), a hold
  of the item's cost on their points (``points.place_hold``, timing out when the reward's
  validity ends), one unit of stock (a conditional UPDATE: never oversold) and the reward with
  its code. Any refusal rolls all of it back.
- ``confirm`` (the merchant, at the till): the hold posted to the merchant's account, once.
- ``cancel`` (the resident, unused) and ``expire`` (the periodic task, at the end of validity):
  the hold voided, the stock and the limit slots given back. The ledger consumes lots only on
  posting, so voided points never left their lots; a lot that lapsed meanwhile is expired by
  ``points.expire_lots`` on its next run, not returned to the resident.
- ``refund`` (the merchant, after use): a compensating transfer (``points.reverse``), once.

``redeem_many`` is ``redeem`` for a micro-batch of calls in one transaction, set-wise (a
constant number of statements whatever the batch's size), each call answered exactly as it
would have been had the calls run one after another ("Redemption at scale", docs/rewards.md).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from kit import cursor as cursors
from kit.db import Tx
from points import service as ledger
from points.errors import HoldAlreadySettled, HoldExpired, InsufficientFunds
from points.schemas import Owner, TransferRequest, utcnow
from residents import service as residents
from residents.errors import AccountGone
from rewards import codes, webhooks
from rewards import repository as repo
from rewards.errors import (
    InsufficientPoints,
    ItemNotFound,
    LimitReached,
    NotAvailable,
    OutOfStock,
    RewardAlreadyUsed,
    RewardCancelled,
    RewardExpired,
    RewardNotFound,
    RewardNotUsed,
)
from rewards.schemas import MerchantReward, Reward, RewardPage, Status
from rewards.settings import RewardsConfig

KIND = "redemption"


def period_key(period: str, at: datetime, cfg: RewardsConfig) -> str:
    """The limit period ``at`` falls in, in the programme's time zone."""
    local = at.astimezone(cfg.zone)
    if period == "day":
        return f"D{local.date().isoformat()}"
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"W{year}-{week:02d}"
    return f"M{local.year}-{local.month:02d}"


def reward_of(cfg: RewardsConfig, row: Any, code: str | None = None) -> Reward:
    """The resident's view of a reward row (``code``: its plain code when the caller has it,
    else opened from ``code_sealed``)."""
    if code is None:
        code = codes.open_code(cfg, row["merchant_id"], row["code_sealed"])
    return Reward(
        id=row["id"],
        item_id=row["item_id"],
        merchant_id=row["merchant_id"],
        kind=row["kind"],
        title=row["title"],
        status=row["status"],
        cost_points=row["cost_points"],
        code=codes.display(code, generated=row["kind"] != "coupon_code"),
        qr_payload=codes.qr_payload(row["merchant_id"], code),
        usage_instructions=row["usage_instructions"],
        issued_at=row["issued_at"],
        valid_until=row["valid_until"],
        used_at=row["used_at"],
        closed_at=row["closed_at"],
        refunded_at=row["refunded_at"],
        delivery_status=row["delivery_status"],
    )


def merchant_view(cfg: RewardsConfig, row: Any) -> MerchantReward:
    code = codes.open_code(cfg, row["merchant_id"], row["code_sealed"])
    return MerchantReward(
        id=row["id"],
        item_id=row["item_id"],
        title=row["title"],
        kind=row["kind"],
        status=row["status"],
        cost_points=row["cost_points"],
        code_masked=codes.mask(code),
        issued_at=row["issued_at"],
        valid_until=row["valid_until"],
        used_at=row["used_at"],
        refunded_at=row["refunded_at"],
        delivery_status=row["delivery_status"],
    )


async def redeem(
    tx: Tx,
    cfg: RewardsConfig,
    resident_id: str,
    item_id: str,
    *,
    now: datetime | None = None,
) -> Reward:
    """Issue one reward of ``item_id`` to the resident, or refuse with ``not_available``,
    ``limit_reached``, ``insufficient_points`` or ``out_of_stock`` (nothing kept)."""
    now = now or utcnow()
    item = await repo.item(tx.conn, item_id)
    if item is None:
        raise ItemNotFound(f"No catalogue item {item_id!r}.")
    if not item["active_from"] <= now < item["active_until"]:
        raise NotAvailable("The item cannot be redeemed now (outside its active window).")
    district = await residents.require_active(tx.conn, resident_id)
    if item["eligible"] and district not in item["eligible"]:
        raise NotAvailable("The item is not offered in the resident's district.")
    if item["remaining"] <= 0:  # the cheap refusal; the conditional UPDATE below decides
        raise OutOfStock("No stock left.")
    keys: list[str] = []
    limits: list[int] = []
    pkey: str | None = None
    if item["per_resident_limit"] is not None:
        keys.append("all")
        limits.append(item["per_resident_limit"])
    if item["period_limit"] is not None:
        pkey = period_key(item["limit_period"], now, cfg)
        keys.append(pkey)
        limits.append(item["period_limit"])
    if keys and await repo.take_usage(tx.conn, item_id, resident_id, keys, limits) < len(keys):
        raise LimitReached("The resident's limit for this item is reached.")
    reward_id = str(uuid.uuid4())
    merchant_id = item["merchant_id"]
    try:
        hold = await ledger.place_hold(
            tx,
            TransferRequest(
                idempotency_key=f"reward:{reward_id}",
                debit=Owner("resident", resident_id),
                credit=Owner("merchant", merchant_id),
                asset="POINT",
                amount=item["cost_points"],
                kind=KIND,
                reason_code="reward_redeemed",
                region_code=district or cfg.region_code,
                occurred_at=now,
                source_ref=reward_id,
            ),
            cfg.points,
            timeout_s=item["validity_s"],
            now=now,
        )
    except InsufficientFunds:
        raise InsufficientPoints(
            f"The item costs {item['cost_points']} points.",
            extra={"cost_points": item["cost_points"]},
        ) from None
    assert hold.timeout_at is not None
    code_hash: bytes | None = None
    sealed: str | None = None
    if item["kind"] != "coupon_code":
        plain = codes.generate()
        code_hash = codes.code_hash(cfg, merchant_id, plain)
        sealed = codes.seal(cfg, merchant_id, plain)
    row = await repo.issue(
        tx.conn,
        reward_id=reward_id,
        item_id=item_id,
        merchant_id=merchant_id,
        resident_id=resident_id,
        kind=item["kind"],
        cost_points=item["cost_points"],
        code_hash=code_hash,
        code_sealed=sealed,
        hold_id=int(hold.id),
        period_key=pkey,
        issued_at=now,
        valid_until=hold.timeout_at,
    )
    if row is None:
        raise OutOfStock("No stock left.")
    return reward_of(cfg, row)


class RedeemCall(NamedTuple):
    """One redemption of a batch: who redeems which item."""

    resident_id: str
    item_id: str


class _Grant(NamedTuple):
    at: int  # the index of the call
    item: Any
    resident_id: str
    district: str | None
    reward_id: str
    pkey: str | None
    code: Any  # the pool code claimed (coupon items), else None


def _insufficient(cost: int) -> InsufficientPoints:
    return InsufficientPoints(f"The item costs {cost} points.", extra={"cost_points": cost})


async def redeem_many(
    tx: Tx,
    cfg: RewardsConfig,
    calls: Sequence[RedeemCall],
    *,
    now: datetime | None = None,
    districts: Mapping[str, str | None] | None = None,
) -> list[Reward | Exception]:
    """:func:`redeem` for each call, in one transaction, set-wise: each call's reward or its refusal
    (``item_not_found``, ``not_available``, ``account_deleted``, ``out_of_stock``,
    ``limit_reached``, ``insufficient_points``), exactly what the calls would answer one after
    another in this order. A refusal leaves nothing behind and does not stop the others: every call
    is decided first, in Python, on what was read (under the locks of the residents' point accounts;
    then of the coupon items, each in key order: the order of every other writer), and then written
    in bulk (the holds in one statement, then stock, codes, limit counters and rewards in another,
    each write conditional on what was decided). ``districts``: the residents'
    :func:`residents.active_districts`, when the caller has read them already. An exception raised
    (not answered) means the writes did not go as decided: the caller rolls the transaction back."""
    now = now or utcnow()
    if not calls:
        return []
    if districts is None:
        districts = await residents.active_districts(tx.conn, [c.resident_id for c in calls])
    available = await ledger.lock_available(tx, [Owner("resident", c.resident_id) for c in calls])
    # The items, read without a lock: their stock is taken by a conditional UPDATE with the
    # rest of the writes (a batch that ran meanwhile and left too little fails this one, which
    # then runs one by one), so concurrent batches on one item overlap all but their last
    # statement. A coupon item is locked and read again: its pool codes are decided here.
    items = await repo.items_of(tx.conn, [c.item_id for c in calls])
    coupon_ids = [i for i, it in items.items() if it["kind"] == "coupon_code"]
    if coupon_ids:
        items.update(await repo.items_of(tx.conn, coupon_ids, lock=True))
    slots: set[tuple[str, str, str]] = set()
    coupons: dict[str, int] = {}
    for c in calls:
        it = items.get(c.item_id)
        if it is None:
            continue
        if it["per_resident_limit"] is not None:
            slots.add((c.item_id, c.resident_id, "all"))
        if it["period_limit"] is not None:
            slots.add((c.item_id, c.resident_id, period_key(it["limit_period"], now, cfg)))
        if it["kind"] == "coupon_code":
            coupons[c.item_id] = coupons.get(c.item_id, 0) + 1
    used = await repo.usage_of(tx.conn, sorted(slots)) if slots else {}
    pool_codes = {
        i: deque(rows)
        for i, rows in (await repo.free_codes(tx.conn, coupons) if coupons else {}).items()
    }
    remaining = {i: it["remaining"] for i, it in items.items()}
    points = {o.owner_id: v for o, v in available.items()}
    taken: dict[tuple[str, str, str], int] = {}
    out: list[Reward | Exception | None] = [None] * len(calls)
    grants: list[_Grant] = []
    # Decide each call in order, on the state the calls before it left (redeem's checks, in
    # redeem's order).
    for n, c in enumerate(calls):
        it = items.get(c.item_id)
        if it is None:
            out[n] = ItemNotFound(f"No catalogue item {c.item_id!r}.")
            continue
        if not it["active_from"] <= now < it["active_until"]:
            out[n] = NotAvailable("The item cannot be redeemed now (outside its active window).")
            continue
        if c.resident_id not in districts:
            out[n] = AccountGone("This account was deleted; sign in again.")
            continue
        district = districts[c.resident_id]
        if it["eligible"] and district not in it["eligible"]:
            out[n] = NotAvailable("The item is not offered in the resident's district.")
            continue
        if remaining[c.item_id] <= 0:
            out[n] = OutOfStock("No stock left.")
            continue
        limits: list[tuple[tuple[str, str, str], int]] = []
        pkey: str | None = None
        if it["per_resident_limit"] is not None:
            limits.append(((c.item_id, c.resident_id, "all"), it["per_resident_limit"]))
        if it["period_limit"] is not None:
            pkey = period_key(it["limit_period"], now, cfg)
            limits.append(((c.item_id, c.resident_id, pkey), it["period_limit"]))
        # take_usage: a counter that exists takes one more below its limit; a new one starts.
        if any(slot in used and used[slot] >= limit for slot, limit in limits):
            out[n] = LimitReached("The resident's limit for this item is reached.")
            continue
        cost = it["cost_points"]
        if points.get(c.resident_id, 0) < cost:
            out[n] = _insufficient(cost)
            continue
        code = None
        if it["kind"] == "coupon_code":
            free = pool_codes.get(c.item_id)
            if not free:
                out[n] = OutOfStock("No stock left.")
                continue
            code = free.popleft()
        remaining[c.item_id] -= 1
        for slot, _ in limits:
            used[slot] = used.get(slot, 0) + 1
            taken[slot] = taken.get(slot, 0) + 1
        points[c.resident_id] -= cost
        grants.append(_Grant(n, it, c.resident_id, district, str(uuid.uuid4()), pkey, code))
    if grants:
        for grant, reward in zip(grants, await _issue(tx, cfg, grants, taken, now), strict=True):
            out[grant.at] = reward
    done = [o for o in out if o is not None]
    assert len(done) == len(calls), "every call was decided"
    return done


async def _issue(
    tx: Tx,
    cfg: RewardsConfig,
    grants: Sequence[_Grant],
    taken: Mapping[tuple[str, str, str], int],
    now: datetime,
) -> list[Reward]:
    """The writes of the granted calls: their holds, then everything else in one statement."""
    holds = await ledger.place_holds(
        tx,
        [
            TransferRequest(
                idempotency_key=f"reward:{g.reward_id}",
                debit=Owner("resident", g.resident_id),
                credit=Owner("merchant", g.item["merchant_id"]),
                asset="POINT",
                amount=g.item["cost_points"],
                kind=KIND,
                reason_code="reward_redeemed",
                region_code=g.district or cfg.region_code,
                occurred_at=now,
                source_ref=g.reward_id,
            )
            for g in grants
        ],
        cfg.points,
        timeouts=[g.item["validity_s"] for g in grants],
        now=now,
    )
    units: dict[str, int] = {}
    columns: dict[str, list[Any]] = {c: [] for c in repo.REWARD_COLUMNS}
    rewards: list[Reward] = []
    for g, hold in zip(grants, holds, strict=True):
        it = g.item
        units[it["id"]] = units.get(it["id"], 0) + 1
        if g.code is not None:
            code_hash, sealed = bytes(g.code["code_hash"]), g.code["code_sealed"]
            plain = codes.open_code(cfg, it["merchant_id"], sealed)
        else:
            plain = codes.generate()
            code_hash = codes.code_hash(cfg, it["merchant_id"], plain)
            sealed = codes.seal(cfg, it["merchant_id"], plain)
        assert hold.timeout_at is not None
        # The reward as the rewards table answers it (the one-by-one path reads it back).
        row = {
            "id": g.reward_id,
            "item_id": it["id"],
            "merchant_id": it["merchant_id"],
            "kind": it["kind"],
            "title": it["title"],
            "status": "issued",
            "cost_points": it["cost_points"],
            "usage_instructions": it["usage_instructions"],
            "issued_at": now,
            "valid_until": hold.timeout_at,
            "used_at": None,
            "closed_at": None,
            "refunded_at": None,
            "delivery_status": "pending" if it["kind"] == "physical" else None,
        }
        rewards.append(reward_of(cfg, row, plain))
        for column, value in (
            ("id", g.reward_id),
            ("item_id", it["id"]),
            ("merchant_id", it["merchant_id"]),
            ("resident_id", g.resident_id),
            ("kind", it["kind"]),
            ("cost_points", it["cost_points"]),
            ("code_hash", code_hash),
            ("code_sealed", sealed),
            ("hold_id", int(hold.id)),
            ("period_key", g.pkey),
            ("issued_at", now),
            ("valid_until", hold.timeout_at),
        ):
            columns[column].append(value)
    coupon = [g for g in grants if g.code is not None]
    limits = {(g.item["id"], g.resident_id): g.item for g in grants}
    written = await repo.issue_many(
        tx.conn,
        repo.IssueMany(
            stock_items=sorted(units),
            stock_units=[units[i] for i in sorted(units)],
            code_ids=[g.code["id"] for g in coupon],
            code_rewards=[g.reward_id for g in coupon],
            usage=[
                (
                    i,
                    r,
                    k,
                    n,
                    limits[i, r]["per_resident_limit" if k == "all" else "period_limit"],
                )
                for (i, r, k), n in sorted(taken.items())
            ],
            rewards=columns,
        ),
    )
    if not written:
        raise RuntimeError("the batch's writes did not go as decided")
    return rewards


def _refuse_closed(status: Status) -> None:
    if status in ("used", "refunded"):
        raise RewardAlreadyUsed("The reward was already used.")
    if status == "cancelled":
        raise RewardCancelled("The reward was cancelled.")
    if status == "expired":
        raise RewardExpired("The reward expired.")


async def _scanned(
    conn: Any, cfg: RewardsConfig, merchant_id: str, scanned: str, *, lock: bool
) -> Any:
    code = codes.from_scan(merchant_id, scanned)
    row = None
    if code:
        code_hash = codes.code_hash(cfg, merchant_id, code)
        row = await repo.reward_by_code(conn, merchant_id, code_hash, lock=lock)
    if row is None:
        raise RewardNotFound("No reward of this merchant has this code.")
    return row


async def lookup(conn: Any, cfg: RewardsConfig, merchant_id: str, scanned: str) -> MerchantReward:
    """The merchant's reward with this code (text or QR payload), masked; no resident data."""
    return merchant_view(cfg, await _scanned(conn, cfg, merchant_id, scanned, lock=False))


async def confirm(
    tx: Tx,
    cfg: RewardsConfig,
    merchant_id: str,
    scanned: str,
    *,
    now: datetime | None = None,
) -> MerchantReward:
    """The merchant honours the reward: its hold is posted to the merchant's account, once. A
    second confirmation is ``reward_already_used`` (the same request with its
    ``Idempotency-Key`` replays the first answer instead)."""
    now = now or utcnow()
    row = await _scanned(tx.conn, cfg, merchant_id, scanned, lock=True)
    _refuse_closed(row["status"])
    if row["valid_until"] <= now:
        raise RewardExpired("The reward expired.")
    try:
        post = await ledger.post_hold(
            tx,
            str(row["hold_id"]),
            cfg.points,
            idempotency_key=f"reward-confirm:{row['id']}",
            now=now,
        )
    except (HoldExpired, HoldAlreadySettled):
        raise RewardExpired("The reward expired.") from None
    used = await repo.mark_used(
        tx.conn,
        row["id"],
        int(post.id),
        post.occurred_at,
        "shipped" if row["kind"] == "physical" else None,
    )
    view = merchant_view(cfg, used)
    await webhooks.record(tx, "reward.confirmed", [(merchant_id, view)], now)
    return view


async def refund(
    tx: Tx,
    cfg: RewardsConfig,
    merchant_id: str,
    reward_id: str,
    *,
    now: datetime | None = None,
) -> MerchantReward:
    """Give a used reward's points back to the resident (a compensating transfer from the
    merchant's account), at most once: refunding a refunded reward answers it as it is."""
    now = now or utcnow()
    row = await repo.reward_for_update(tx.conn, reward_id)
    if row is None or row["merchant_id"] != merchant_id:
        raise RewardNotFound(f"No reward {reward_id!r} of this merchant.")
    if row["status"] == "refunded":
        return merchant_view(cfg, row)
    if row["status"] == "issued":
        raise RewardNotUsed("The reward was not used: the resident may cancel it instead.")
    if row["status"] != "used":
        _refuse_closed(row["status"])
    (back, *_) = await ledger.reverse(
        tx,
        str(row["post_id"]),
        cfg.points,
        idempotency_key=f"reward-refund:{reward_id}",
        reason_code="reward_refunded",
        now=now,
    )
    done = await repo.mark_refunded(tx.conn, reward_id, int(back.id), back.occurred_at)
    view = merchant_view(cfg, done)
    await webhooks.record(tx, "reward.refunded", [(merchant_id, view)], now)
    return view


async def set_delivery(
    tx: Tx, cfg: RewardsConfig, merchant_id: str, reward_id: str, status: str
) -> MerchantReward:
    """A physical reward's delivery status (``shipped`` on confirmation, then ``delivered``)."""
    row = await repo.reward_for_update(tx.conn, reward_id)
    if row is None or row["merchant_id"] != merchant_id or row["kind"] != "physical":
        raise RewardNotFound(f"No physical reward {reward_id!r} of this merchant.")
    if row["status"] not in ("used", "refunded"):
        raise RewardNotUsed("Confirm the reward before its delivery.")
    await repo.set_delivery(tx.conn, reward_id, status)
    return msgspec.structs.replace(merchant_view(cfg, row), delivery_status=status)


async def cancel(
    tx: Tx,
    cfg: RewardsConfig,
    resident_id: str,
    reward_id: str,
    *,
    now: datetime | None = None,
) -> Reward:
    """The resident gives an unused reward back: hold voided, stock and limit slots released
    (a coupon's code is burnt). Cancelling a cancelled reward answers it as it is."""
    now = now or utcnow()
    row = await repo.reward_for_update(tx.conn, reward_id)
    if row is None or row["resident_id"] != resident_id:
        raise RewardNotFound(f"No reward {reward_id!r}.")
    if row["status"] == "cancelled":
        return reward_of(cfg, row)
    _refuse_closed(row["status"])
    if row["valid_until"] <= now:
        raise RewardExpired("The reward expired.")
    try:
        await ledger.void_hold(
            tx,
            str(row["hold_id"]),
            cfg.points,
            idempotency_key=f"reward-cancel:{reward_id}",
            reason_code="reward_cancelled",
            now=now,
        )
    except HoldAlreadySettled:
        raise RewardExpired("The reward expired.") from None
    (closed,) = await repo.close(tx.conn, [reward_id], "cancelled", now)
    return reward_of(cfg, closed)


async def expire(
    tx: Tx, cfg: RewardsConfig, *, now: datetime | None = None, limit: int = 1000
) -> int:
    """Expire up to ``limit`` issued rewards past their validity, set-wise: their holds (which
    time out at the same instant) voided by the ledger's own sweep, then the rewards closed,
    their stock and limit slots given back, one ``reward.expired`` webhook each. How many."""
    now = now or utcnow()
    while await ledger.void_timed_out_holds(tx, cfg.points, now=now, limit=limit) >= limit:
        pass
    ids = await repo.due_rewards(tx.conn, now, limit)
    if not ids:
        return 0
    closed = await repo.close(tx.conn, ids, "expired", now)
    await webhooks.record(
        tx, "reward.expired", [(r["merchant_id"], merchant_view(cfg, r)) for r in closed], now
    )
    return len(closed)


class _Cursor(msgspec.Struct, frozen=True):
    t: datetime  # issued_at of the last reward shown
    i: str  # its id


async def my_rewards(
    conn: Any,
    cfg: RewardsConfig,
    resident_id: str,
    *,
    status: Status | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> RewardPage:
    limit = max(1, min(limit, 100))
    after = None
    if cursor is not None:
        pos = cursors.decode(cursor, _Cursor)
        try:
            uuid.UUID(pos.i)
        except ValueError:
            raise cursors.invalid() from None
        if pos.t.tzinfo is None:
            raise cursors.invalid()
        after = (pos.t, pos.i)
    rows = await repo.rewards_of(conn, resident_id, status=status, after=after, limit=limit + 1)
    more = len(rows) > limit
    page = [reward_of(cfg, r) for r in rows[:limit]]
    nxt = cursors.encode(_Cursor(page[-1].issued_at, page[-1].id)) if more else None
    return RewardPage(rewards=page, next_cursor=nxt)


async def my_reward(conn: Any, cfg: RewardsConfig, resident_id: str, reward_id: str) -> Reward:
    row = await repo.reward_of(conn, resident_id, reward_id)
    if row is None:
        raise RewardNotFound(f"No reward {reward_id!r}.")
    return reward_of(cfg, row)
