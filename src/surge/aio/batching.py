"""``Batcher``: gather single submissions into batches by size and delay, one future per item.

For sinks and back ends that are much cheaper per batch than per item (SQL inserts, bulk APIs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Generic, TypeVar

from surge.errors import BatcherClosed

__all__ = ["Batcher"]

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Micro-batching: ``await batcher.submit(item)`` returns this item's result from a batch call.

    A batch is sent to ``fn(items) -> results`` as soon as it holds ``max_size`` items, or
    ``max_delay`` seconds (loop time) after its first item arrived, whichever comes first; ``close()``
    (or leaving ``async with``) sends what is left and waits for every batch in flight. Batches run
    concurrently, at most ``max_concurrency`` at a time (unlimited by default).

    - ``fn`` must return one result per item, in order; otherwise each item fails with ``ValueError``.
    - If ``fn`` raises, every item of that batch fails with that exception.
    - Cancelling a caller never affects another caller's item. A cancelled caller's item is *not sent*
      if its batch has not been sent yet; if it has, the batch runs with it and its result is discarded.
    - ``submit()`` after ``close()`` raises :class:`surge.errors.BatcherClosed`.

    >>> import asyncio
    >>> async def lengths(words: list[str]) -> list[int]:
    ...     print(f"batch of {len(words)}")
    ...     return [len(w) for w in words]
    >>> async def main() -> list[int]:
    ...     async with Batcher(lengths, max_size=3, max_delay=0.01) as batcher:
    ...         return await asyncio.gather(*(batcher.submit(w) for w in ["a", "bb", "ccc", "dddd"]))
    >>> asyncio.run(main())
    batch of 3
    batch of 1
    [1, 2, 3, 4]
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_size: int,
        max_delay: float,
        max_concurrency: int | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        if max_delay < 0:
            raise ValueError(f"max_delay must be >= 0, got {max_delay}")
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self._fn = fn
        self._max_size = max_size
        self._max_delay = max_delay
        self._semaphore = asyncio.Semaphore(max_concurrency) if max_concurrency is not None else None
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._closed = False
        self._batches = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<Batcher {state} pending={len(self._pending)} in_flight={len(self._inflight)}"
            f" max_size={self._max_size} max_delay={self._max_delay}>"
        )

    @property
    def pending(self) -> int:
        """Items waiting for their batch to be sent."""
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        """Batches sent and not finished."""
        return len(self._inflight)

    @property
    def batches(self) -> int:
        """Batches sent so far."""
        return self._batches

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    async def submit(self, item: T) -> R:
        """Add ``item`` to the current batch and wait for its result.

        >>> import asyncio
        >>> async def double(xs: list[int]) -> list[int]:
        ...     return [2 * x for x in xs]
        >>> async def main() -> int:
        ...     async with Batcher(double, max_size=10, max_delay=0.001) as batcher:
        ...         return await batcher.submit(21)
        >>> asyncio.run(main())
        42
        """
        if self._closed:
            raise BatcherClosed("submit to a closed Batcher")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        entry = (item, future)
        pending = self._pending
        pending.append(entry)
        if len(pending) >= self._max_size:
            self._flush()
        elif len(pending) == 1:
            self._timer = loop.call_later(self._max_delay, self._flush)
        try:
            return await future
        except asyncio.CancelledError:
            # Only this caller's entry is touched: unsent, it is withdrawn; sent, its result is dropped.
            pending = self._pending  # a flush replaces the list
            for index, other in enumerate(pending):
                if other is entry:
                    del pending[index]
                    if not pending and self._timer is not None:
                        self._timer.cancel()
                        self._timer = None
                    break
            raise

    def _flush(self) -> None:
        """Send the pending items as one batch (called when full, by the timer, and by close)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A caller cancelled a moment ago may still be listed: its future is cancelled already.
        batch = [entry for entry in self._pending if not entry[1].cancelled()]
        self._pending = []
        if not batch:
            return
        self._batches += 1
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _send(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        futures = [future for _, future in batch]
        try:
            if self._semaphore is not None:
                async with self._semaphore:
                    results = await self._fn([item for item, _ in batch])
            else:
                results = await self._fn([item for item, _ in batch])
        except asyncio.CancelledError:
            # The Batcher itself is being torn down; the callers were not cancelled, so they get an
            # error rather than a CancelledError that would look like their own cancellation.
            _fail(futures, BatcherClosed("batch cancelled before it completed"))
            raise
        except Exception as exc:
            _fail(futures, exc)
            return
        if len(results) != len(futures):
            count = len(results)
            _fail(futures, ValueError(f"batch function returned {count} results for {len(futures)} items"))
            return
        for future, result in zip(futures, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        """Send the remaining items and wait for all batches in flight. Idempotent.

        If ``close()`` is cancelled, the batches in flight are cancelled and their items fail with
        ``BatcherClosed``.
        """
        self._closed = True
        if self._pending:
            self._flush()
        if not self._inflight:
            return
        inflight = set(self._inflight)
        try:
            await asyncio.wait(inflight)
        except asyncio.CancelledError:
            for task in inflight:
                task.cancel()
            await asyncio.wait(inflight)
            raise

    async def __aenter__(self) -> Batcher[T, R]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _fail(futures: list[asyncio.Future[R]], exc: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc)
