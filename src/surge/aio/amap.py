"""``amap``: run an async function over a (possibly endless) stream of items with N workers.

Memory stays bounded, results come in completion or input order, errors follow an explicit policy.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

from surge.aio.ratelimit import RateLimiter

__all__ = ["AsyncMap", "amap"]

T = TypeVar("T")
R = TypeVar("R")
ErrorPolicy = Literal["raise", "return", "skip"]

# Placeholder for a skipped failure in ordered mode, so the head of the reorder buffer can advance.
_SKIPPED: Any = object()


def _rate_burst(rate: float) -> int:
    """The burst ``amap(rate=...)`` gives its limiter: about 10 ms worth of calls, at least 1.

    Timers fire up to about a millisecond late, and with burst 1 a late start cannot be made up, so the
    achieved rate would run a few percent below ``rate``; 10 ms of slack absorbs that lateness.

    >>> _rate_burst(10), _rate_burst(1000), _rate_burst(50_000)
    (1, 10, 500)
    """
    return max(1, int(rate / 100))


class _State(Generic[T, R]):
    """Everything the workers share. Kept apart from ``AsyncMap`` so that dropping the iterator
    (``break`` without ``aclose``) lets it be collected and its finalizer cancel the workers."""

    __slots__ = (
        "aiter",
        "buffered",
        "consumer",
        "done",
        "error",
        "exhausted",
        "fn",
        "gate",
        "head",
        "it",
        "limit",
        "limiter",
        "lock",
        "on_error",
        "ordered",
        "outstanding",
        "pulled",
        "reorder",
    )

    def __init__(
        self,
        fn: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        limit: int,
        limiter: RateLimiter | None,
        ordered: bool,
        on_error: ErrorPolicy,
    ) -> None:
        self.fn = fn
        self.it: Iterator[T] | None = None
        self.aiter: AsyncIterator[T] | None = None
        if isinstance(items, AsyncIterable):
            self.aiter = aiter(items)
        else:
            self.it = iter(items)
        self.lock = asyncio.Lock()  # serialises __anext__ on async sources (they forbid concurrent calls)
        self.limit = limit
        self.limiter = limiter
        self.ordered = ordered
        self.on_error = on_error
        self.exhausted = False
        # outstanding = items pulled (or reserved) and not yet handed to the consumer.
        # Bounded by ``limit``: that one counter bounds memory in both orders.
        self.outstanding = 0
        self.pulled = 0
        self.gate: deque[asyncio.Future[None]] = deque()  # workers waiting for outstanding < limit
        self.buffered: deque[Any] = deque()  # completion order: finished results
        self.reorder: dict[int, Any] = {}  # input order: index -> result
        self.head = 0  # input order: next index to hand out
        self.consumer: asyncio.Future[None] | None = None
        self.done = False
        self.error: BaseException | None = None

    def wake_consumer(self) -> None:
        # Cleared here so the next result does not wake it twice; the consumer clears it too on resuming.
        waiter = self.consumer
        self.consumer = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def release(self) -> None:
        """One outstanding item left the pipeline: let one waiting worker pull again."""
        self.outstanding -= 1
        if self.gate:
            self.wake_gate()

    def wake_gate(self) -> None:
        gate = self.gate
        while gate:
            waiter = gate.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def pull(self) -> tuple[bool, T | None]:
        if self.exhausted:
            return False, None
        if self.it is not None:
            try:
                return True, next(self.it)
            except StopIteration:
                self.exhausted = True
                return False, None
        assert self.aiter is not None
        async with self.lock:
            if self.exhausted:
                return False, None
            try:
                return True, await anext(self.aiter)
            except StopAsyncIteration:
                self.exhausted = True
                return False, None

    async def wait_gate(self) -> None:
        loop = asyncio.get_running_loop()
        while self.outstanding >= self.limit:
            slot: asyncio.Future[None] = loop.create_future()
            self.gate.append(slot)
            await slot

    async def worker_fast(self) -> None:
        """The worker for the common case: sync source, completion order, no rate limit.

        Hot path, written for speed: checking the gate and pulling the next item are one step
        with no await between them, so no reservation is needed and ``for`` does the pulling.
        """
        fn = self.fn
        limit = self.limit
        on_error = self.on_error
        append = self.buffered.append
        assert self.it is not None
        if self.outstanding >= limit:
            await self.wait_gate()
        for item in self.it:
            self.outstanding += 1
            try:
                result: Any = await fn(item)
            except Exception as exc:
                if on_error == "raise":
                    raise
                if on_error == "skip":
                    self.release()
                    if self.outstanding >= limit:
                        await self.wait_gate()
                    continue
                result = exc
            append(result)
            if self.consumer is not None:
                self.wake_consumer()
            if self.outstanding >= limit:
                await self.wait_gate()
        self.exhausted = True

    async def worker(self) -> None:
        # Hot path: one loop iteration per item; no task, no coroutine, no dict copy per item.
        fn = self.fn
        limit = self.limit
        limiter = self.limiter
        ordered = self.ordered
        on_error = self.on_error
        it = self.it
        append = self.buffered.append
        while True:
            if self.outstanding >= limit:
                await self.wait_gate()
            # Reserve the slot before any await, so concurrent workers never overshoot ``limit``.
            self.outstanding += 1
            if limiter is not None:
                await limiter.acquire()
            item: Any
            if it is not None:
                # Sync source: pulled inline, next() cannot interleave with another worker's.
                try:
                    item = next(it)
                except StopIteration:
                    self.exhausted = True
                    self.release()
                    return
            else:
                ok, item = await self.pull()
                if not ok:
                    self.release()
                    return
            index = self.pulled
            self.pulled = index + 1
            try:
                result: Any = await fn(item)
            except Exception as exc:
                if on_error == "raise":
                    raise
                if on_error == "return":
                    result = exc
                elif ordered:
                    result = _SKIPPED
                else:
                    self.release()
                    continue
            if ordered:
                self.reorder[index] = result
                if index == self.head:
                    self.wake_consumer()
            else:
                append(result)
                if self.consumer is not None:
                    self.wake_consumer()

    async def drive(self, workers: int) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                fast = self.it is not None and not self.ordered and self.limiter is None
                for _ in range(workers):
                    tg.create_task(self.worker_fast() if fast else self.worker())
        except BaseExceptionGroup as group:
            errors = [e for e in group.exceptions if not isinstance(e, asyncio.CancelledError)]
            if not errors:
                raise
            # The consumer raises it: the driver task itself must not end with an unread error.
            self.error = errors[0]
        finally:
            self.done = True
            self.wake_consumer()


class AsyncMap(AsyncIterator[R]):
    """The async iterator :func:`amap` returns; close it with ``aclose()`` or ``async with``.

    >>> import asyncio
    >>> async def double(x: int) -> int:
    ...     return 2 * x
    >>> async def main() -> list[int]:
    ...     async with amap(double, range(5), concurrency=2, ordered=True) as results:
    ...         return [r async for r in results]
    >>> asyncio.run(main())
    [0, 2, 4, 6, 8]
    """

    __slots__ = ("_closed", "_driver", "_state", "_workers")

    def __init__(self, state: _State[Any, Any], workers: int) -> None:
        self._state = state
        self._workers = workers
        self._driver: asyncio.Task[None] | None = None
        self._closed = False

    def __aiter__(self) -> AsyncMap[R]:
        return self

    async def __anext__(self) -> R:
        st = self._state
        buffered = st.buffered
        if buffered:
            # Hot path: a result is ready, hand it out without suspending.
            st.outstanding -= 1
            if st.gate:
                st.wake_gate()
            return buffered.popleft()  # type: ignore[no-any-return]
        if self._driver is None:
            if self._closed:
                raise StopAsyncIteration
            self._driver = asyncio.get_running_loop().create_task(st.drive(self._workers))
        while True:
            # Results finished before an error are still handed out; then the error is raised.
            if st.ordered:
                reorder = st.reorder
                while st.head in reorder:
                    result = reorder.pop(st.head)
                    st.head += 1
                    st.release()
                    if result is not _SKIPPED:
                        return result  # type: ignore[no-any-return]
            elif buffered:
                st.release()
                return buffered.popleft()  # type: ignore[no-any-return]
            if st.error is not None:
                error, st.error = st.error, None
                self._closed = True
                raise error
            if self._closed:
                raise StopAsyncIteration
            if st.done:
                self._closed = True
                raise StopAsyncIteration
            st.consumer = waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            except asyncio.CancelledError:
                # The consumer is going away: take the workers with it.
                await self.aclose()
                raise
            finally:
                st.consumer = None

    async def aclose(self) -> None:
        """Cancel the workers and wait until they are gone. Idempotent."""
        self._closed = True
        # Results not taken are dropped, so that a closed iterator yields nothing more.
        self._state.buffered.clear()
        self._state.reorder.clear()
        driver = self._driver
        if driver is not None and not driver.done():
            driver.cancel()
            await asyncio.wait((driver,))

    async def __aenter__(self) -> AsyncMap[R]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Safety net for ``break`` without ``aclose``: the workers must not outlive their consumer.
        driver = self._driver
        if driver is not None and not driver.done() and not driver.get_loop().is_closed():
            driver.cancel()


@overload
def amap(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    *,
    concurrency: int,
    rate: float | None = ...,
    ordered: bool = ...,
    on_error: Literal["raise", "skip"] = ...,
    buffer: int | None = ...,
) -> AsyncMap[R]: ...


@overload
def amap(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    *,
    concurrency: int,
    rate: float | None = ...,
    ordered: bool = ...,
    on_error: Literal["return"],
    buffer: int | None = ...,
) -> AsyncMap[R | Exception]: ...


def amap(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    *,
    concurrency: int,
    rate: float | None = None,
    ordered: bool = False,
    on_error: ErrorPolicy = "raise",
    buffer: int | None = None,
) -> AsyncMap[R] | AsyncMap[R | Exception]:
    """Apply ``fn`` to every item with ``concurrency`` worker coroutines; iterate the results.

    - ``items`` may be a sync or an async iterable, endless too: at most ``concurrency + buffer``
      items are pulled ahead of the consumer (``buffer`` defaults to ``concurrency``), so a slow
      consumer (or, with ``ordered=True``, a slow head item) back-pressures the input.
    - ``ordered=False`` yields in completion order; ``ordered=True`` in input order.
    - ``rate``: at most ``rate`` calls started per second on average (surge's GCRA limiter). Up to
      ``max(1, rate / 100)`` calls (10 ms worth) may start at once, so that late timer wake-ups are made
      up and the achieved rate is ``rate``, not a few percent below it; below 200/s that is burst 1.
    - ``on_error``: ``"raise"`` cancels the other workers and raises the first error, after they
      are gone (results not yet taken are dropped); ``"return"`` yields the exception object in
      place of the result; ``"skip"`` drops failed items. Only ``Exception`` is an item error;
      errors raised by the input iterator itself are always raised.
    - Cancelling the consumer while it waits for a result, ``aclose()``, leaving ``async with``,
      or dropping the iterator cancels the workers. The input iterator is not closed.

    >>> import asyncio
    >>> async def inverse(x: int) -> float:
    ...     await asyncio.sleep(0.001)
    ...     return 1 / x
    >>> async def main() -> list[float | Exception]:
    ...     async with amap(inverse, [1, 0, 4], concurrency=3, ordered=True, on_error="return") as results:
    ...         return [r async for r in results]
    >>> asyncio.run(main())
    [1.0, ZeroDivisionError('division by zero'), 0.25]
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if buffer is None:
        buffer = concurrency
    if buffer < 0:
        raise ValueError(f"buffer must be >= 0, got {buffer}")
    if on_error not in ("raise", "return", "skip"):
        raise ValueError(f"on_error must be 'raise', 'return' or 'skip', got {on_error!r}")
    limiter = None
    if rate is not None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        limiter = RateLimiter(rate, _rate_burst(rate))
    state: _State[T, R] = _State(
        fn, items, limit=concurrency + buffer, limiter=limiter, ordered=ordered, on_error=on_error
    )
    return AsyncMap(state, concurrency)
