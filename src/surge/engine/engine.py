"""The engine: N worker coroutines that lease work, apply the host policy, request, retry, pass on outcomes.

No task per request: workers loop. Leases come in batches (a feeder task) and outcomes leave in batches
(a committer task that records their statistics and acks them), so the per-request path is a few attribute
updates, one HTTP request and one append.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Protocol

from surge.aio import AIMD, Backoff, ConcurrencyLimit, RateLimiter, RetryPolicy, parse_retry_after
from surge.engine.hostpolicy import DROP_STATUSES, HostPolicy, HostState
from surge.engine.items import Outcome, encode_body
from surge.engine.workqueue import Lease, WorkQueue
from surge.errors import ERROR_KINDS, ConfigError, InvalidURL, PoolClosed, RequestError
from surge.http.client import Submitted
from surge.http.models import NOT_READ, media_type

__all__ = [
    "DEFAULT_RETRY_KINDS",
    "DEFAULT_RETRY_STATUSES",
    "Engine",
    "EngineOptions",
    "EngineResult",
    "RetryRules",
    "Sender",
]

DEFAULT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_RETRY_KINDS = frozenset({"timeout_connect", "timeout_read", "timeout_total", "connect"})

_DROP = DROP_STATUSES
# Timers are armed this late: loops fire them early (uvloop rounds to whole milliseconds and fires up to
# 0.5 ms before the time asked), and a worker woken before the work is due finds nothing, re-arms for the
# same instant and is woken again at once: a busy loop until the clock catches up (for ever on a virtual
# clock that only moves when the loop is idle).
_TIMER_LATE = 0.001
Commit = Callable[[list[tuple[Lease, Outcome]]], Awaitable[None]]


def _ms(seconds: float) -> float:
    """Seconds as milliseconds to 3 decimals (integer rounding: cheaper than ``round(x, 3)``)."""
    return int(seconds * 1e6 + 0.5) / 1000.0


def _keeps_body(types: frozenset[str] | None, content_type: str | None) -> bool:
    """Whether a response of ``content_type`` keeps its body in the record (``EngineOptions.body_types``)."""
    return types is None or media_type(content_type) in types


# What a request may fail with and still have an outcome: surge's request errors, a URL the input check let
# through but the client cannot request, a socket error, a client closed under it. Anything else raised
# from a request is a bug in surge and stops the run (never dressed up as an outcome).
_OUTCOME_ERRORS = (RequestError, InvalidURL, OSError, PoolClosed)


def _error_kind(exc: BaseException) -> str:
    """The outcome error class of a failed request; ``exc`` is one of ``_OUTCOME_ERRORS``."""
    if isinstance(exc, RequestError):
        return exc.kind
    if isinstance(exc, InvalidURL):
        return "invalid_input"
    if isinstance(exc, PoolClosed):
        return "cancelled"
    return "connect"  # OSError


def _cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of a TaskGroup's failure: what the run stopped on (its siblings were cancelled)."""
    first = group.exceptions[0]
    return _cause(first) if isinstance(first, BaseExceptionGroup) else first


class _Lane:
    """One worker's requests on the client's callback path (``submit``), while the worker awaits ``fut``.

    ``host``/``lease``/``ticket`` describe the request in hand (``ticket.start``: when it was sent).
    ``back`` says what the worker finds when ``fut`` resolves: None (nothing in hand, take the next),
    ``_TAKEN`` (a lease taken but not started), or ``(response, error)`` for the request in hand;
    ``_IN_FLIGHT`` while a request is out.
    """

    __slots__ = ("back", "fut", "host", "lease", "ticket")

    def __init__(self, done: Callable[[_Lane, Any, BaseException | None], None]) -> None:
        self.back: Any = None
        self.fut: Any = None  # asyncio.Future[None] once the worker awaits
        self.host: Any = None
        self.lease: Any = None
        # Reused for each of the lane's requests, with one Response object refilled each time: the lane
        # copies what it records, and a response handed back to the worker is read before the next submit.
        self.ticket = Submitted(done, self, reuse_response=True)


def _lanes_not_started(lane: _Lane, resp: Any, exc: BaseException | None) -> None:
    raise RuntimeError("Engine.run() makes the lanes' callback")


_TAKEN: Any = object()
_IN_FLIGHT: Any = object()


class Sender(Protocol):
    """What the engine needs from an HTTP client: ``surge.http.Client.request``'s shape.

    The response is read for ``status``, ``url``, ``headers``, ``elapsed`` and ``ttfb`` (seconds, as the
    client measured them), ``num_bytes``, ``content_type`` and, with ``save_body``, ``content``.
    """

    async def request(self, method: str, url: str, *, headers: Any = None, content: bytes | None = None,
                      keep_body: bool = True) -> Any: ...


@dataclass(frozen=True, slots=True)
class RetryRules:
    """Which results are retried: response statuses and outcome error classes.

    >>> RetryRules.parse("429,503,timeout_read").statuses
    frozenset({429, 503})
    """

    statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    kinds: frozenset[str] = DEFAULT_RETRY_KINDS

    @classmethod
    def parse(cls, spec: str) -> RetryRules:
        """From ``--retry-on``: a comma list of statuses (``503``, ``5xx``) and error classes; ``none``."""
        statuses: set[int] = set()
        kinds: set[str] = set()
        for raw in spec.split(","):
            part = raw.strip().lower()
            if not part or part == "none":
                continue
            if part == "default":
                statuses |= DEFAULT_RETRY_STATUSES
                kinds |= DEFAULT_RETRY_KINDS
            elif part.isdigit() and 100 <= int(part) <= 599:
                statuses.add(int(part))
            elif len(part) == 3 and part[0] in "12345" and part[1:] == "xx":
                base = int(part[0]) * 100
                statuses.update(range(base, base + 100))
            elif part == "timeout":
                kinds.update(k for k in ERROR_KINDS if k.startswith("timeout"))
            elif part in ERROR_KINDS and part not in ("cancelled", "invalid_input"):
                kinds.add(part)
            else:
                raise ConfigError(f"--retry-on: unknown status or error class {raw.strip()!r} "
                                  f"(use e.g. 429,5xx,connect,timeout)")
        return cls(frozenset(statuses), frozenset(kinds))


@dataclass(slots=True)
class EngineOptions:
    """How the engine runs. ``concurrency`` workers when fixed; with ``adaptive`` the number of requests in
    flight follows an AIMD limit between 1 and ``max_concurrency``, starting at ``concurrency``.
    ``rate`` caps requests per second overall. ``record_cancelled``: requests cut off by a forced stop get a
    ``cancelled`` outcome (a run without resume state); otherwise they stay un-acked, to be fetched again.
    ``grows``: ``commit`` may add work to the queue (a crawl adds the links it found), so an empty queue is
    the end only once every outcome is committed and the queue, asked after that last commit, is still empty.
    ``body_types``: with ``save_body``, the media types (``text/html``) whose bodies the record keeps; None:
    every body (a crawl reads HTML only, and encoding a 10 MB PDF to drop it costs time and memory).
    ``max_retry_after``: the longest a server's Retry-After may pause its host (seconds). A request whose
    server asks for longer is not retried (its 429/503 is its outcome) and its host pauses for this long;
    the retry policy's own ``max_retry_after`` is set to it, so one number rules both.
    """

    concurrency: int = 50
    adaptive: bool = False
    max_concurrency: int = 512
    rate: float | None = None
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=3, backoff=Backoff(0.2, 10.0)))
    retry_rules: RetryRules = field(default_factory=RetryRules)
    save_body: bool = False
    body_types: frozenset[str] | None = None
    save_headers: bool = False
    duration: float | None = None
    record_cancelled: bool = True
    grows: bool = False
    flush_size: int = 1024
    flush_interval: float = 0.2
    lease_size: int = 0  # 0: from concurrency
    max_retry_after: float = 60.0


@dataclass(slots=True)
class EngineResult:
    """How a run ended: outcomes committed, whether it was stopped early, leases left un-acked."""

    done: int = 0
    stopped: bool = False
    forced: bool = False
    not_started: int = 0
    exhausted: bool = False


class Engine:
    """Runs requests from ``queue`` through ``client`` under ``policy`` and passes outcomes to ``commit``.

    ``commit(batch)`` receives ``(lease, outcome)`` pairs in batches and must ack them on the queue (the
    Fetcher also writes them to a sink there); the engine calls it from one task, one batch at a time.

    Stopping: when ``stop`` is set (first Ctrl-C, ``duration`` elapsed) workers finish the request they
    are making, take no more, and :meth:`run` returns after the last commit. Cancelling :meth:`run` (second
    Ctrl-C, drain deadline) cuts the requests in flight; with ``record_cancelled`` they are committed as
    ``cancelled``, else left un-acked; then the last commit runs and CancelledError propagates.
    """

    def __init__(self, queue: WorkQueue, client: Sender, commit: Commit, *, policy: HostPolicy | None = None,
                 options: EngineOptions | None = None, stats: Any = None) -> None:
        self.queue = queue
        self.client = client
        self.policy = policy if policy is not None else HostPolicy()
        self.options = opts = options if options is not None else EngineOptions()
        self.stats = stats
        self._commit = commit
        if not opts.max_retry_after >= 0:
            raise ConfigError(f"max_retry_after must be >= 0, got {opts.max_retry_after!r}")
        if opts.retry.max_retry_after != opts.max_retry_after:
            opts.retry = dataclasses.replace(opts.retry, max_retry_after=opts.max_retry_after)
        n = opts.max_concurrency if opts.adaptive else opts.concurrency
        if n < 1:
            raise ConfigError("concurrency must be at least 1")
        self.workers = n
        self.limit: ConcurrencyLimit | None = None
        if opts.adaptive:
            self.limit = ConcurrencyLimit(min(max(opts.concurrency, 1), n), algorithm=AIMD(backoff=0.8),
                                          min_limit=1, max_limit=n)
        self.rate = RateLimiter(opts.rate, max(1, int(opts.rate / 10))) if opts.rate else None
        self._lease_size = opts.lease_size or min(max(64, 2 * n), 1000)
        self._low = max(self._lease_size, 2 * n)
        self._high = self._low + 2 * self._lease_size
        self._done: list[tuple[Lease, Outcome]] = []
        self._idle: deque[asyncio.Future[None]] = deque()
        self._parked: deque[asyncio.Future[None]] = deque()
        self._need = asyncio.Event()
        self._flush = asyncio.Event()
        self._flushed: asyncio.Future[None] | None = None
        self._stop = asyncio.Event()
        self._stopping = False  # mirrors _stop for the hot path: an attribute read, not a method call
        self._exhausted = False
        self._finished = False
        # With options.grows: commits made, and how many had been made when the queue was last found empty.
        self._commits = 0
        self._empty_after = -1
        self._committing = False  # a batch is out of _done and not yet committed
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._feed_error: BaseException | None = None
        self._commit_error: BaseException | None = None
        self._committed = 0
        self._max_pending = max(opts.flush_size * 8, 4 * n)
        self._wall_offset = 0.0  # Unix time minus loop time: see _sync_wall()
        self._now: Callable[[], float] = time.monotonic  # the loop's clock once running
        # The client's callback path, when it has one (surge.http.Client.submit): see _Lane.
        self._submit: Callable[..., Any] | None = getattr(client, "submit", None)
        # The lanes' completion callback: made by run() (it captures the running loop's clock).
        self._lane_done: Callable[[_Lane, Any, BaseException | None], None] = _lanes_not_started
        # Statuses a lane hands back to its worker: retried ones, and those that pause the host.
        self._lane_hands_back = opts.retry_rules.statuses | _DROP

    # -- public -----------------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests being made now."""
        return self.policy.in_flight

    @property
    def concurrency(self) -> int:
        """The concurrency limit now in force."""
        return self.limit.limit if self.limit is not None else self.workers

    def stop(self) -> None:
        """Stop taking work; requests in flight finish (what the first Ctrl-C does)."""
        self._stopping = True
        self._stop.set()
        self._wake_all()

    async def run(self, stop: asyncio.Event | None = None) -> EngineResult:
        """Run until the input is done, ``stop`` is set, or ``duration`` passes; see the class docstring."""
        loop = asyncio.get_running_loop()
        self._now = loop.time
        self._lane_done = self._make_lane_done()
        result = EngineResult()
        watchers: list[asyncio.Task[Any]] = []
        if stop is not None:
            watchers.append(loop.create_task(self._watch(stop)))
        deadline = None
        if self.options.duration is not None:
            deadline = loop.call_later(self.options.duration, self.stop)
        self._sync_wall()
        track = getattr(self.stats, "track_in_flight", None)
        if track is not None:
            # The progress line reads the count when it redraws; nothing is reported per request.
            track(lambda: self.policy.in_flight)
        # Structured: the feeder and the workers are one TaskGroup, so a bug in any of them stops the others
        # and is raised from here. The committer is a child of this call outside the group: it has to
        # outlive the workers, because its last commit (after they stopped, even when this call is being
        # cancelled) is what makes their outcomes done.
        committer = loop.create_task(self._commit_loop())
        bug: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:
                feeder = group.create_task(self._feed())
                workers = [group.create_task(self._worker()) for _ in range(self.workers)]
                self._need.set()
                await asyncio.wait(workers)
                feeder.cancel()  # the workers ended: nothing more will be taken
        except asyncio.CancelledError:
            result.forced = True
            raise
        except BaseExceptionGroup as group_error:
            bug = _cause(group_error)
        finally:
            if deadline is not None:
                deadline.cancel()
            if self._timer is not None:
                self._timer.cancel()
            for t in watchers:
                t.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            self._finished = True
            self._flush.set()
            # The last commit must happen even while the run is being cancelled: it is what makes work done.
            await asyncio.shield(committer)
            result.done = self._committed
            result.stopped = self._stop.is_set()
            result.exhausted = self._exhausted and self.policy.queued == 0
            result.not_started = len(self.policy.drain())
            if track is not None:
                track(None)
                self.stats.set_in_flight(0)
        if bug is not None:
            raise bug
        if self._commit_error is not None:
            raise self._commit_error
        if self._feed_error is not None:
            raise self._feed_error
        return result

    def _sync_wall(self) -> None:
        # Workers stamp started_at from the loop time they already read instead of calling time.time()
        # per request; the offset is refreshed at every commit, so a wall-clock step is followed within
        # a flush interval.
        self._wall_offset = time.time() - asyncio.get_running_loop().time()

    async def _watch(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stop()

    # -- feeding ----------------------------------------------------------------------------------------

    async def _feed(self) -> None:
        # One task keeps the host policy stocked between a low and a high watermark: bounded read-ahead.
        policy = self.policy
        loop = asyncio.get_running_loop()
        try:
            while not self._stop.is_set():
                await self._need.wait()
                self._need.clear()
                while policy.queued < self._high and not self._stop.is_set():
                    commits = self._commits
                    leases = await self.queue.lease(self._lease_size)
                    if not leases:
                        self._exhausted = True
                        self._empty_after = commits
                        self._wake_all()
                        if not self.options.grows:
                            return
                        break  # a commit may add work: asked again after each one (see _commit_loop)
                    self._exhausted = False
                    woke = policy.push_many(leases, loop.time())
                    if policy.invalid:
                        self._record_invalid()
                    self._wake(max(woke, min(len(leases), len(self._idle))))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # Bad input (a malformed line, an unreadable file): treat it as the end of the input, finish
            # every item already read, commit, then report it. Work read before the error is never lost.
            self._feed_error = exc
            self._exhausted = True
            self._wake_all()

    def _settled(self) -> bool:
        # Whether an empty queue means the end. Without ``grows``, it does. With it, every outcome must be
        # committed and the queue found empty after the last commit; until then, outcomes waiting for their
        # commit go now rather than at the flush interval, so a crawl's next level starts at once.
        if not self.options.grows:
            return True
        if self._done or self._empty_after != self._commits or self._committing:
            self._flush.set()
            return False
        return True

    def _record_invalid(self) -> None:
        # Input that is not a request (WorkItem.invalid): its one outcome, without a request.
        leases, self.policy.invalid = self.policy.invalid, []
        at = time.time()
        for lease in leases:
            item = lease.item
            outcome = Outcome(item.url, item.url, item.method, None, False, "invalid_input", 0, 0.0, None, 0,
                              None, at, lease.key)
            if item.depth:
                outcome.depth = item.depth
                outcome.parent = item.parent
            self._emit(lease, outcome)

    # -- waking -----------------------------------------------------------------------------------------

    def _wake(self, n: int) -> None:
        idle = self._idle
        while n > 0 and idle:
            fut = idle.popleft()
            if not fut.done():
                fut.set_result(None)
                n -= 1

    def _wake_all(self) -> None:
        self._wake(len(self._idle))
        for fut in self._parked:
            if not fut.done():
                fut.set_result(None)
        self._parked.clear()

    def _arm_timer(self) -> None:
        t = self.policy.next_wake()
        if t is None:
            return
        if self._timer is not None:
            if self._timer_at <= t:
                return
            self._timer.cancel()
        self._timer_at = t
        self._timer = asyncio.get_running_loop().call_at(t + _TIMER_LATE, self._on_timer)

    def _on_timer(self) -> None:
        # No re-arming here: the due work is still on the policy's heap until a worker takes it, so the
        # next wake would be now again, and the timer would fire every loop turn while the workers are
        # busy. Every worker arms the timer before it waits idle.
        self._timer = None
        self._wake(len(self._idle))

    async def _wait(self, queue: deque[asyncio.Future[None]]) -> None:
        fut = asyncio.get_running_loop().create_future()
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                queue.remove(fut)
            raise

    # -- committing -------------------------------------------------------------------------------------

    def _emit(self, lease: Lease, outcome: Outcome) -> None:
        # One append; the committer takes whole batches (the workers inline this on their hot path).
        done = self._done
        done.append((lease, outcome))
        if len(done) >= self.options.flush_size:
            self._flush.set()

    async def _commit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.options.flush_interval
        flush_size = self.options.flush_size
        while True:
            # Wait for a full batch (or the interval) even when some outcomes are already waiting: the
            # commit just made let the workers add a few, and committing those at once would shrink every
            # batch to what arrives during one commit (~100 records, 10x the per-batch costs).
            if len(self._done) < flush_size and not self._finished:
                handle = loop.call_later(interval, self._flush.set)
                await self._flush.wait()
                handle.cancel()
            self._flush.clear()
            # The workers hold the list itself: copy it out and empty it in place.
            done = self._done
            batch = done[:]
            done.clear()
            self._committing = bool(batch)
            if batch:
                if self.stats is not None:
                    # Statistics by the batch: one call here instead of one per request on the workers.
                    self.stats.record_many([o for _, o in batch])
                try:
                    await self._commit(batch)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:
                    # Cannot write (disk full, output gone): stop; what was not committed stays un-acked.
                    self._commit_error = exc
                    self._finished = True
                    self.stop()
                    waiter, self._flushed = self._flushed, None
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                    return
                self._committed += len(batch)
                self._committing = False
                if self.options.grows:
                    self._commits += 1
                    self._need.set()  # the commit may have added work: the feeder asks the queue again
            self._sync_wall()
            if self.stats is not None:
                self.stats.set_concurrency(self.concurrency)
            waiter, self._flushed = self._flushed, None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self._finished and not self._done:
                return

    async def _backpressure(self) -> None:
        # The committer fell behind (a slow disk, a slow consumer): wait for it rather than pile up outcomes.
        while len(self._done) >= self._max_pending and not self._finished:
            if self._flushed is None:
                self._flushed = asyncio.get_running_loop().create_future()
            self._flush.set()
            await asyncio.shield(self._flushed)

    # -- the workers ------------------------------------------------------------------------------------

    async def _worker(self) -> None:
        # One turn of this loop per request the worker handles itself. With a client that has submit(), a
        # request that can start at once goes on the worker's lane instead of being awaited: its completion
        # runs _lane_done from the client's callback, which records the outcome and starts the next request
        # itself (the hot path), and this coroutine only wakes when the lane meets something it does not
        # handle (see _Lane). Outcomes leave with one append; statistics and output are the committer's.
        loop = asyncio.get_running_loop()
        now = loop.time
        policy = self.policy
        take = policy.take
        release = policy.release
        request = self.client.request
        submit = self._submit
        lane = _Lane(self._lane_done) if submit is not None else None  # the closure run() made
        opts = self.options
        keep_body = opts.save_body
        retry = opts.retry
        retry_statuses = opts.retry_rules.statuses
        retry_kinds = opts.retry_rules.kinds
        max_pause = opts.max_retry_after
        limit = self.limit
        rate = self.rate
        emit = self._emit
        done = self._done
        max_pending = self._max_pending
        need = self._need.set
        wall = time.time
        pending: tuple[HostState, Lease] | None = None
        while True:
            if pending is not None:
                host, lease = pending  # taken by the lane, not started
                pending = None
            else:
                if self._stopping:
                    return
                if limit is not None and limit.in_flight >= limit.limit:
                    await self._wait(self._parked)
                    continue
                if rate is not None and not rate.acquire_nowait():
                    await rate.acquire()
                # The lanes take most leases (see _make_lane_done); this is the worker's own, rarer take.
                got = take(now())
                if got is None:
                    if self._exhausted and policy.queued == 0 and policy.in_flight == 0 and self._settled():
                        self._wake_all()
                        return
                    if not self._exhausted:
                        need()
                    self._arm_timer()
                    await self._wait(self._idle)
                    continue
                host, lease = got
                if policy.queued < self._low and not self._exhausted:
                    need()
                if len(done) >= max_pending:
                    await self._backpressure()
            item = lease.item
            if host.tripped is not None:
                # Circuit open: the host only fails; record the failure without a request.
                emit(lease, Outcome(item.url, item.url, item.method, None, False, host.tripped, lease.tries,
                                    0.0, None, 0, None, lease.started_at or wall(), lease.key))
                continue
            status: int | None = None
            error: str | None = None
            resp: Any = None
            if limit is not None and not limit.acquire_nowait():
                # Over the adaptive limit: it shrank, or the lanes filled it while this lease came here (a
                # lane hands back a lease it could not start). Give the lease back; wait for a free slot.
                policy.untake(host, lease, now())
                await self._wait(self._parked)
                continue
            if lane is not None and submit is not None and not item.headers and item.body is None:
                lane.host = host
                lane.lease = lease
                started = submit(item.method, item.url, lane.ticket, keep_body)
            else:
                started = False
            if lease.tries == 0:
                # Unix time from the loop time just read: the committer keeps the offset fresh.
                lease.started_at = now() + self._wall_offset
            lease.tries += 1
            t0 = perf_counter()
            if started:
                assert lane is not None
                lane.back = _IN_FLIGHT
                lane.fut = fut = loop.create_future()
                try:
                    await fut
                except asyncio.CancelledError:
                    self._lane_cancelled(lane)
                    raise
                # The lane ran requests until one needs this coroutine: carry on from where it stopped.
                back = lane.back
                if back is None:
                    continue  # nothing in hand: take the next one above
                host = lane.host
                lease = lane.lease
                item = lease.item
                if back is _TAKEN:
                    pending = (host, lease)
                    continue
                t0 = lane.ticket.start
                resp, exc = back
                if exc is None:
                    status = resp.status
                elif isinstance(exc, _OUTCOME_ERRORS):
                    error = _error_kind(exc)
                else:
                    policy.release(host, now())
                    raise exc
            else:
                try:
                    if item.headers or item.body is not None:
                        resp = await request(item.method, item.url, headers=item.headers or None,
                                             content=item.body, keep_body=keep_body)
                    else:
                        resp = await request(item.method, item.url, keep_body=keep_body)
                    status = resp.status
                except asyncio.CancelledError:
                    self._cancelled(host, lease, perf_counter() - t0)
                    raise
                except _OUTCOME_ERRORS as exc:  # a request's failure is its outcome; anything else, a bug
                    error = _error_kind(exc)
            # A response carries the time the client measured; only a failure needs a clock read here.
            elapsed = resp.elapsed if error is None else perf_counter() - t0
            retry_after: float | None = None
            if status in _DROP:
                # What the server asked, uncapped: the retry policy gives up on an ask over the cap, and
                # the host's pause is the ask or the cap, whichever is shorter.
                retry_after = parse_retry_after(resp.headers.get("retry-after"), cap=math.inf)
            woke = release(host, now(), elapsed, status, error,
                           retry_after if retry_after is None or retry_after <= max_pause else max_pause)
            if woke and self._idle:
                self._wake(1)  # the host has room again and someone is waiting for work
            if limit is not None:
                limit.release(rtt=elapsed, dropped=status in _DROP
                              or (error is not None and error.startswith("timeout")))
                if self._parked and limit.in_flight < limit.limit:
                    self._wake_parked()
            if status in retry_statuses if error is None else error in retry_kinds:
                delay = retry.next_delay(lease.tries, None, retry_after, elapsed=wall() - lease.started_at)
                if delay is not None:
                    if not self._stopping:
                        t = now()
                        policy.push(lease, t + delay, t)  # rescheduled, not slept on: the slot moves on
                        if self._idle:
                            self._arm_timer()
                            if delay <= 0:
                                self._wake(1)
                        continue
                    if not opts.record_cancelled:
                        continue  # stopping with resume state: left un-acked, the next run retries it
            if error is None:
                self._record(lease, resp, elapsed)
            else:
                outcome = Outcome(item.url, item.url, item.method, None, False, error, lease.tries,
                                  _ms(elapsed), None, 0, None, lease.started_at, lease.key)
                if item.depth:
                    outcome.depth = item.depth
                    outcome.parent = item.parent
                emit(lease, outcome)

    # Every response the worker handles; _lane_done inlines the same: change both together.
    def _record(self, lease: Lease, resp: Any, elapsed: float) -> None:
        item = lease.item
        status = resp.status
        # Milliseconds to 3 decimals by integer rounding (_ms inlined): a quarter of round(x, 3)'s cost,
        # the same values but for rare float ties.
        outcome = Outcome(item.url, resp.url, item.method, status, status < 400, None, lease.tries,
                          int(elapsed * 1e6 + 0.5) / 1000.0, int(resp.ttfb * 1e6 + 0.5) / 1000.0,
                          resp.num_bytes, resp.content_type, lease.started_at, lease.key)
        opts = self.options
        if opts.save_headers:
            outcome.headers = resp.headers.items()
        if opts.save_body and _keeps_body(opts.body_types, outcome.content_type):
            outcome.body, outcome.body_encoding = encode_body(resp.content)
        if item.depth:
            outcome.depth = item.depth
            outcome.parent = item.parent
        done = self._done
        done.append((lease, outcome))
        if len(done) >= self.options.flush_size:
            self._flush.set()

    def _make_lane_done(self) -> Callable[[_Lane, Any, BaseException | None], None]:
        """The lanes' completion callback, as a closure over everything that stays put during the run.

        Why a closure: it runs once per request and reads some twenty of these; captured variables read
        faster than attributes (0.06 us less per request in benchmarks/bench_python_path.py).
        """
        policy = self.policy
        ready = policy._ready
        delayed = policy._delayed
        parked_hosts = policy._parked
        release = policy.release
        now = self._now
        limit = self.limit
        rate = self.rate
        idle = self._idle
        parked = self._parked
        wake = self._wake
        wake_parked = self._wake_parked
        done = self._done
        flush = self._flush.set
        flush_size = self.options.flush_size
        max_pending = self._max_pending
        low = self._low
        need = self._need.set
        submit = self._submit
        keep_body = self.options.save_body
        body_types = self.options.body_types
        save_headers = self.options.save_headers
        hands_back = self._lane_hands_back
        new_outcome = Outcome
        engine = self

        # Hot path: every request that ran on a lane; called by the client, between two loop turns.
        def lane_done(lane: _Lane, resp: Any, exc: BaseException | None) -> None:
            fut = lane.fut
            try:
                if fut.done():
                    # The worker is being cancelled (a forced stop): it deals with this one (_lane_cancelled).
                    lane.back = (resp, exc)
                    return
                if exc is not None or resp.status in hands_back:
                    # A failure, or a status to retry or that pauses the host: the worker's general path.
                    lane.back = (resp, exc)
                    fut.set_result(None)
                    return
                host = lane.host
                elapsed = resp.elapsed
                if host.limiter is None and not host.fails and not host.probing and (
                        host.in_ready or (host.queue and not host.parked and host.paused_until == 0.0)):
                    # HostPolicy.release's common case, inlined: only the counts change, and a
                    # host that was at its per-host limit with work queued is ready again (_schedule's case).
                    host.in_flight -= 1
                    policy.in_flight -= 1
                    if not host.in_ready:
                        host.in_ready = True
                        ready.append(host)
                        if idle:
                            wake(1)
                elif release(host, now(), elapsed, resp.status, None, None) and idle:
                    wake(1)
                if limit is not None:
                    limit.release(rtt=elapsed)
                    if parked and limit.in_flight < limit.limit:
                        wake_parked()
                # Engine._record, inlined (change both together): one call less per request.
                lease = lane.lease
                item = lease.item
                status = resp.status
                ct = resp._content_type  # set by the client when its memo knows it: no property call
                if ct is NOT_READ:
                    ct = resp.content_type
                outcome = new_outcome(item.url, resp.url, item.method, status, status < 400, None,
                                      lease.tries, int(elapsed * 1e6 + 0.5) / 1000.0,
                                      int(resp.ttfb * 1e6 + 0.5) / 1000.0, resp.num_bytes, ct,
                                      lease.started_at, lease.key)
                if save_headers:
                    outcome.headers = resp.headers.items()
                if keep_body and _keeps_body(body_types, ct):
                    outcome.body, outcome.body_encoding = encode_body(resp.content)
                if item.depth:
                    outcome.depth = item.depth
                    outcome.parent = item.parent
                done.append((lease, outcome))
                pending = len(done)
                if pending >= flush_size:
                    flush()
                # The next request, in the common case: no stop, a free slot, a ready host, no backlog.
                if engine._stopping or (limit is not None and limit.in_flight >= limit.limit) \
                        or pending >= max_pending:
                    lane.back = None
                    fut.set_result(None)
                    return
                host = ready[0] if ready else None
                t = now()
                if host is None or host.tripped is not None or host.rate is not None \
                        or host.limiter is not None or host.probing or host.paused_until > t or delayed \
                        or parked_hosts or (rate is not None and not rate.acquire_nowait()):
                    lane.back = None
                    fut.set_result(None)
                    return
                hq = host.queue
                lease = hq.popleft()
                policy.queued -= 1
                host.in_flight += 1
                policy.in_flight += 1
                if not hq or host.in_flight >= host.limit:
                    ready.popleft()
                    host.in_ready = False
                elif len(ready) > 1:
                    ready.rotate(-1)
                if policy.queued < low and not engine._exhausted:
                    need()
                lane.host = host
                lane.lease = lease
                item = lease.item
                if item.headers or item.body is not None \
                        or not submit(item.method, item.url, lane.ticket, keep_body):  # type: ignore[misc]
                    lane.back = _TAKEN  # the worker starts it (a body, headers, or no idle connection)
                    fut.set_result(None)
                    return
                if limit is not None:
                    limit.acquire_nowait()
                if lease.tries == 0:
                    lease.started_at = t + engine._wall_offset
                lease.tries += 1
            except Exception as bug:  # a bug here must not strand the worker: it fails instead of hanging
                if fut.done():
                    raise
                fut.set_exception(bug)

        return lane_done

    def _lane_cancelled(self, lane: _Lane) -> None:
        # A forced stop cut the worker off while its lane had this in hand.
        back = lane.back
        if back is None:
            return
        if back is _TAKEN:
            # Taken, never started: back to the front of its host's queue, counted as not started.
            host = lane.host
            host.queue.appendleft(lane.lease)
            self.policy.queued += 1
            self.policy.release(host, asyncio.get_running_loop().time())
            return
        if back is _IN_FLIGHT:
            self.client.cancel(lane.ticket)  # type: ignore[attr-defined]
        self._cancelled(lane.host, lane.lease, perf_counter() - lane.ticket.start)

    def _wake_parked(self) -> None:
        limit = self.limit
        assert limit is not None
        room = limit.limit - limit.in_flight
        parked = self._parked
        while room > 0 and parked:
            fut = parked.popleft()
            if not fut.done():
                fut.set_result(None)
                room -= 1

    def _cancelled(self, host: HostState, lease: Lease, elapsed: float) -> None:
        # A forced stop cut this request off. Without resume state it still gets its one outcome.
        self.policy.release(host, asyncio.get_running_loop().time())
        if self.limit is not None:
            self.limit.release()
        if self.options.record_cancelled:
            item = lease.item
            self._emit(lease, Outcome(item.url, item.url, item.method, None, False, "cancelled", lease.tries,
                                      _ms(elapsed), None, 0, None, lease.started_at, lease.key))

    def pending_leases(self) -> Iterable[Lease]:
        """Leases taken from the queue and not yet requested (for diagnostics)."""
        for h in self.policy.hosts.values():
            yield from h.queue
