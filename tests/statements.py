"""The one statement counter of the tests: how many round trips a piece of code makes.

The constant-round-trip tests (the ledger's bulk paths, the ingestion pipeline) wrap the
connection of an open transaction and hand it on as ``Tx(CountingConnection(tx.conn))``::

    async with transaction(pool) as tx:
        counter = CountingConnection(tx.conn)
        await service.issue_reductions(Tx(counter), items, POLICY)
    assert counter.calls == ...   # counter.log says which statements, for the failure message

Every method that sends something to PostgreSQL and waits for it counts once, COPY included;
everything else (``transaction``, attributes) passes through uncounted.
"""

from __future__ import annotations

from typing import Any

SENDING = frozenset(
    {
        "fetch",
        "fetchrow",
        "fetchval",
        "execute",
        "executemany",
        "copy_records_to_table",
        "copy_to_table",
        "copy_from_table",
        "copy_from_query",
    }
)


class CountingConnection:
    """A connection that counts (``calls``) and records (``log``) the statements sent through it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.calls = 0
        self.log: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.conn, name)
        if name not in SENDING:
            return attr

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            what = str(args[0]) if args else name
            self.log.append(f"{name}: " + " ".join(what.split())[:60])
            return await attr(*args, **kwargs)

        return counted
