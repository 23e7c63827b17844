"""The WorkQueue interface: where work lives (memory, SQLite, later Redis) behind add / lease / ack / pending.

Items are leased, requested (maybe several times), acked with their one Outcome; only the ack marks done.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from surge.engine.items import Outcome, WorkItem

__all__ = ["Lease", "WorkQueue"]


class Lease:
    """A leased item: the item, the queue's id for it, and how many times it was leased before.

    ``attempt`` is 0 on the first lease; a durable queue that re-leases an item after a crash counts up.
    The engine holds a lease while it retries; the queue never hands the item to anyone else meanwhile.
    ``tries`` and ``started_at`` are the engine's: requests made in this run, Unix time of the first.
    ``key`` is the item's key, or the lease's own when one shared item stands for many requests (``-n``
    load mode in memory: no WorkItem per request).
    """

    __slots__ = ("attempt", "id", "item", "key", "started_at", "tries")

    def __init__(self, item: WorkItem, id: int, attempt: int = 0, key: str | None = None) -> None:
        self.item = item
        self.id = id
        self.attempt = attempt
        self.key = item.key if key is None else key
        self.tries = 0
        self.started_at = 0.0

    def __repr__(self) -> str:
        return f"Lease(id={self.id}, attempt={self.attempt}, url={self.item.url!r})"


@runtime_checkable
class WorkQueue(Protocol):
    """Where work lives. Implementations: :class:`~surge.engine.memqueue.MemoryQueue`,
    :class:`~surge.engine.sqlitequeue.SQLiteQueue`.

    - ``add(items)`` enqueues items and returns how many were new (a durable queue may deduplicate by key).
    - ``lease(n)`` hands out up to ``n`` items; ``[]`` means nothing is left right now *and* the input is
      exhausted (check ``pending()`` to tell whether leased items are still out).
    - ``ack(done)`` records each item's final outcome; for a durable queue the item is done only once this
      returns, and items leased but never acked are leased again by the next run.
    - ``pending()`` counts items known and not yet done (leased or not); input not yet read is not counted.
    """

    async def add(self, items: Iterable[WorkItem]) -> int: ...

    async def lease(self, n: int) -> list[Lease]: ...

    async def ack(self, done: Sequence[tuple[Lease, Outcome]]) -> None: ...

    async def pending(self) -> int: ...
