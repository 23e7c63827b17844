"""The in-memory WorkQueue (default for ``fetch``): pulls from the input lazily, forgets items once acked.

Nothing survives the process; use the SQLite queue (``--state DIR``) for runs that must resume.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from itertools import repeat

from surge.engine.input import InputSource
from surge.engine.items import Outcome, WorkItem
from surge.engine.workqueue import Lease

__all__ = ["MemoryQueue"]


class MemoryQueue:
    """A WorkQueue in memory over an optional lazily-read :class:`~surge.engine.input.InputSource`.

    Items given to :meth:`add` are leased first (the crawler feeds discovered links that way), then the
    input is read, ``n`` at a time, only when :meth:`lease` asks: read-ahead is bounded by the lease size.
    """

    def __init__(self, source: InputSource | None = None) -> None:
        self._source = source
        self._shared = getattr(source, "read_shared", None)  # ArgsSource's -n feed (see lease)
        self._added: deque[WorkItem] = deque()
        self._next_id = 0
        self._out = 0  # leased, not yet acked
        self.acked = 0

    async def add(self, items: Iterable[WorkItem]) -> int:
        """Enqueue items (ahead of unread input); returns how many."""
        before = len(self._added)
        self._added.extend(items)
        return len(self._added) - before

    async def lease(self, n: int) -> list[Lease]:
        """Up to ``n`` items, added ones first; [] when nothing is queued and the input is exhausted."""
        added = self._added
        if not added and self._shared is not None:
            got = self._shared(n)
            if got is not None:
                # One URL repeated: one shared item, each lease carrying its own key (no WorkItem each).
                item, start, stop = got
                c = stop - start
                first = self._next_id
                self._next_id += c
                self._out += c
                return list(map(Lease, repeat(item, c), range(first, first + c), repeat(0, c),
                                map(str, range(start + 1, stop + 1))))
        items: list[WorkItem] = []
        while added and len(items) < n:
            items.append(added.popleft())
        if len(items) < n and self._source is not None:
            items.extend(await self._source.read(n - len(items)))
        first = self._next_id
        self._next_id += len(items)
        self._out += len(items)
        return list(map(Lease, items, range(first, first + len(items))))  # per item: no tuple, no frame

    async def ack(self, done: Sequence[tuple[Lease, Outcome]]) -> None:
        """Forget the items: nothing is kept once an outcome is handed on."""
        self._out -= len(done)
        self.acked += len(done)

    async def pending(self) -> int:
        """Items added or leased and not yet acked (unread input is not counted)."""
        return len(self._added) + self._out
