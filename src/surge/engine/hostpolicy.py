"""Per-host scheduling, as pure logic: which leased item may be requested now, and which host must wait.

Each host has a connection limit (fixed, or adaptive: 429/503/timeouts shrink it), an optional request
rate, a Retry-After pause and a circuit breaker. Hosts with runnable work sit in a round-robin ``ready``
deque; paused or rate-limited hosts are parked on a heap until their time, so workers take other hosts' work
meanwhile instead of sleeping in a slot. Retries wait on a second heap until their not-before time. No I/O and
no event loop: every method takes ``now`` (loop time), so tests drive the clock by hand.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable

from surge.aio import AIMD, ConcurrencyLimit, RateLimiter
from surge.engine.workqueue import Lease
from surge.http.request import AUTHORITY_ENDS, origin_end

__all__ = ["BREAKER_KINDS", "DROP_STATUSES", "HostPolicy", "HostState", "origin_of"]

# Errors that say the host itself is unreachable: these trip the circuit breaker. A 5xx or a read timeout
# means the host answered or at least accepted; those are the retry policy's business, not the breaker's.
BREAKER_KINDS = frozenset({"dns", "connect", "tls", "timeout_connect"})
# Responses that mean "too much": an adaptive per-host limit shrinks on them (and on timeouts).
DROP_STATUSES = frozenset({429, 503})


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL, lower-cased, by string slicing (hot path: no URL parsing).

    The authority ends where urlsplit ends it (see :func:`surge.http.request.origin_end`); a string without
    "://" is its own origin.
    """
    end = origin_end(url)
    return (url if end < 0 else url[:end]).lower()


class HostState:
    """What the policy knows about one host (origin): its queue, in-flight count, limit, pause, breaker."""

    __slots__ = ("cooldown", "fails", "in_flight", "in_ready", "key", "last_error", "limit", "limiter",
                 "open_until", "parked", "paused_until", "probing", "queue", "rate", "tripped")

    def __init__(self, key: str, limit: int, limiter: ConcurrencyLimit | None, rate: RateLimiter | None,
                 cooldown: float) -> None:
        self.key = key
        self.queue: deque[Lease] = deque()
        self.in_flight = 0
        self.limit = limit
        self.limiter = limiter
        self.rate = rate
        self.paused_until = 0.0
        self.in_ready = False
        self.parked = False
        self.fails = 0  # consecutive unreachable-host failures
        self.last_error: str | None = None
        self.tripped: str | None = None  # breaker open: the error class its items fail with
        self.open_until = 0.0
        self.probing = False
        self.cooldown = cooldown

    def __repr__(self) -> str:
        return (f"HostState({self.key!r}, queued={len(self.queue)}, in_flight={self.in_flight}, "
                f"limit={self.limit}, paused_until={self.paused_until}, tripped={self.tripped!r})")


class HostPolicy:
    """Decides which leased item to request next, honouring every host's limits. Pure; times are loop times.

    - ``per_host``: connections per host (None: no per-host cap). With ``adaptive=True`` each host's limit
      starts there and shrinks on 429/503/timeouts (AIMD, via :class:`surge.aio.ConcurrencyLimit`).
    - ``host_rate``: requests per second per host (GCRA, :class:`surge.aio.RateLimiter`), ``host_burst``.
    - ``breaker_threshold``: that many consecutive unreachable-host failures open the host's breaker for
      ``breaker_cooldown`` seconds (doubling, up to ``breaker_max_cooldown``); its items then fail at once
      with the last error class; after the cooldown one probe request decides whether it closes.

    Use: ``push(lease)`` new work, ``push(lease, not_before=t)`` a retry, ``take(now)`` the next item or None,
    ``release(host, now, ...)`` when its request ended. ``next_wake()`` says when parked work becomes due.

    >>> p = HostPolicy(per_host=1)
    >>> from surge.engine.items import WorkItem
    >>> p.push_many([Lease(WorkItem("http://a/1"), 1), Lease(WorkItem("http://a/2"), 2)])
    1
    >>> host, lease = p.take(0.0); lease.id, p.take(0.0)
    (1, None)
    >>> p.release(host, 0.1, rtt=0.1), p.take(0.1)[1].id
    (True, 2)
    """

    def __init__(self, *, per_host: int | None = None, adaptive: bool = False, host_rate: float | None = None,
                 host_burst: int = 1, breaker_threshold: int = 0, breaker_cooldown: float = 30.0,
                 breaker_max_cooldown: float = 600.0, clock: Callable[[], float] | None = None) -> None:
        if per_host is not None and per_host < 1:
            raise ValueError(f"per_host must be >= 1, got {per_host}")
        self.per_host = per_host
        self.adaptive = adaptive
        self.host_rate = host_rate
        self.host_burst = host_burst
        self.breaker_threshold = breaker_threshold
        self.breaker_cooldown = breaker_cooldown
        self.breaker_max_cooldown = breaker_max_cooldown
        self._clock = clock
        self.hosts: dict[str, HostState] = {}
        self._ready: deque[HostState] = deque()
        self._parked: list[tuple[float, int, HostState]] = []
        self._delayed: list[tuple[float, int, Lease]] = []
        self._seq = 0
        self.queued = 0  # leases held (queued in a host or delayed), not in flight
        self.in_flight = 0
        self._last_url = ""
        self._last_prefix = "\0"  # the last URL's origin part, as written ("\0": matches no URL)
        self._last_host: HostState | None = None
        # Leases given to push_many whose item is not a request (WorkItem.invalid): never scheduled, left
        # here for the engine to record.
        self.invalid: list[Lease] = []
        # origin -> its own cap (set_host_rate), kept when the host is forgotten
        self.host_rates: dict[str, float] = {}

    def set_host_rate(self, origin: str, rate: float) -> None:
        """Cap one origin at ``rate`` requests per second (a robots.txt Crawl-delay); with ``host_rate`` also
        set, the lower of the two holds."""
        key = origin.lower()
        if self.host_rate is not None:
            rate = min(rate, self.host_rate)
        self.host_rates[key] = rate
        h = self.hosts.get(key)
        if h is not None:
            h.rate = RateLimiter(rate, self.host_burst, clock=self._clock)

    # -- adding work -------------------------------------------------------------------------------------

    def _host(self, url: str) -> HostState:
        # Load mode requests one URL over and over: remember the last lookup (the same str object). A list
        # comes host by host: the last URL's origin part answers by one comparison.
        if url is self._last_url and self._last_host is not None:
            return self._last_host
        prefix = self._last_prefix
        n = len(prefix)
        if url[:n] == prefix and url[n:n + 1] in AUTHORITY_ENDS and self._last_host is not None:
            self._last_url = url
            return self._last_host
        end = origin_end(url)
        self._last_prefix = url[:end] if end >= 0 else "\0"
        key = (url if end < 0 else self._last_prefix).lower()
        h = self.hosts.get(key)
        if h is None:
            limit = self.per_host if self.per_host is not None else 1 << 30
            limiter = None
            if self.adaptive and self.per_host is not None:
                limiter = ConcurrencyLimit(self.per_host, algorithm=AIMD(backoff=0.7), min_limit=1,
                                           max_limit=self.per_host, clock=self._clock)
            per_second = self.host_rates.get(key, self.host_rate)
            rate = (RateLimiter(per_second, self.host_burst, clock=self._clock)
                    if per_second is not None else None)
            h = HostState(key, limit, limiter, rate, self.breaker_cooldown)
            self.hosts[key] = h
        self._last_url = url
        self._last_host = h
        return h

    def push(self, lease: Lease, not_before: float = 0.0, now: float = 0.0) -> bool:
        """Hold a lease: runnable now, or (a retry) from loop time ``not_before`` on.

        Returns True when a host became ready to run (an idle worker should be woken).
        """
        if not_before > now:
            self._seq += 1
            heapq.heappush(self._delayed, (not_before, self._seq, lease))
            self.queued += 1
            return False
        h = self._host(lease.item.url)
        h.queue.append(lease)
        self.queued += 1
        return self._schedule(h, now)

    def push_many(self, leases: Iterable[Lease], now: float = 0.0) -> int:
        """Hold many new leases; returns how many hosts became ready.

        A lease whose item is marked invalid (not a request) is set aside in :attr:`invalid` instead.
        """
        # Per-lease work here is the feeding cost of every request: resolve the host once per run of
        # same-host leases (load mode: the whole batch), schedule each touched host once.
        touched: list[HostState] = []
        h: HostState | None = None
        url = None
        n = 0
        for lease in leases:
            u = lease.item.url
            if u is not url or h is None:
                if lease.item.invalid is not None:
                    self.invalid.append(lease)
                    url = None  # the next lease is looked at afresh
                    continue
                url = u
                h = self._host(u)
                if not touched or touched[-1] is not h:
                    touched.append(h)
            h.queue.append(lease)
            n += 1
        self.queued += n
        woke = 0
        for t in touched:
            woke += self._schedule(t, now)
        return woke

    def _schedule(self, h: HostState, now: float) -> bool:
        # Put a host with work where it belongs: ready, parked, or neither (at its limit: release() re-adds).
        if h.in_ready or h.parked or not h.queue:
            return False
        if h.paused_until > now:
            self._park(h, h.paused_until)
            return False
        if h.in_flight >= (1 if h.probing else h.limit):
            return False
        h.in_ready = True
        self._ready.append(h)
        return True

    def _park(self, h: HostState, until: float) -> None:
        h.parked = True
        self._seq += 1
        heapq.heappush(self._parked, (until, self._seq, h))

    def _promote(self, now: float) -> None:
        delayed = self._delayed
        while delayed and delayed[0][0] <= now:
            _, _, lease = heapq.heappop(delayed)
            h = self._host(lease.item.url)
            h.queue.appendleft(lease)  # retries go first: they are the oldest work
            self._schedule(h, now)
        parked = self._parked
        while parked and parked[0][0] <= now:
            _, _, h = heapq.heappop(parked)
            h.parked = False
            self._schedule(h, now)

    # -- taking and releasing ----------------------------------------------------------------------------

    def take(self, now: float) -> tuple[HostState, Lease] | None:
        """The next lease to request and its host, or None if nothing may run at ``now``.

        If the host's breaker is open (``host.tripped`` is set) the lease is handed out without counting as
        in flight: the caller records it failed with ``host.tripped`` and does not call :meth:`release`.
        """
        # Hot path (once per request): the common case is one ready host with work and room.
        if (self._delayed and self._delayed[0][0] <= now) or (self._parked and self._parked[0][0] <= now):
            self._promote(now)
        ready = self._ready
        while ready:
            h = ready[0]
            if h.tripped is not None:
                if now < h.open_until:
                    lease = h.queue.popleft()
                    self.queued -= 1
                    if not h.queue:
                        ready.popleft()
                        h.in_ready = False
                    return h, lease
                h.tripped = None
                h.probing = True  # half-open: one request decides
            if h.paused_until > now:
                ready.popleft()
                h.in_ready = False
                self._park(h, h.paused_until)
                continue
            if h.in_flight >= (1 if h.probing else h.limit):
                # Its adaptive limit shrank below what is in flight while it stayed ready (release() leaves
                # a ready host where it is): no room now; the release that makes room schedules it again.
                ready.popleft()
                h.in_ready = False
                continue
            rate = h.rate
            if rate is not None and not rate.acquire_nowait():
                ready.popleft()
                h.in_ready = False
                self._park(h, now + max(rate.wait_time(), 1e-6))
                continue
            lease = h.queue.popleft()
            self.queued -= 1
            h.in_flight += 1
            self.in_flight += 1
            if h.limiter is not None:
                h.limiter.acquire_nowait()
            if not h.queue or h.in_flight >= (1 if h.probing else h.limit):
                ready.popleft()
                h.in_ready = False
            elif len(ready) > 1:
                ready.rotate(-1)  # round robin between hosts
            return h, lease
        return None

    def release(self, h: HostState, now: float, rtt: float | None = None, status: int | None = None,  # noqa: PLR0917 - positional on the hot path
                error: str | None = None, retry_after: float | None = None) -> bool:
        """A request to ``h`` ended (``status`` or ``error``); update its limit, pause and breaker.

        ``retry_after`` (seconds) pauses the whole host. Returns True when the host became ready to run.
        Hot path (once per request): the engine passes everything positionally.
        """
        h.in_flight -= 1
        self.in_flight -= 1
        if h.limiter is not None:
            dropped = status in DROP_STATUSES or (error is not None and error.startswith("timeout"))
            h.limiter.release(rtt=rtt, dropped=dropped)
            h.limit = h.limiter.limit
        if retry_after is not None and retry_after > 0:
            h.paused_until = max(h.paused_until, now + retry_after)
        if error is not None and error in BREAKER_KINDS:
            h.fails += 1
            h.last_error = error
            if h.probing or (self.breaker_threshold and h.fails >= self.breaker_threshold):
                if h.probing:
                    h.cooldown = min(h.cooldown * 2, self.breaker_max_cooldown)
                h.tripped = error
                h.open_until = now + h.cooldown
        elif h.fails:
            h.fails = 0
            h.cooldown = self.breaker_cooldown
        h.probing = False
        if h.queue:
            return self._schedule(h, now)
        if h.in_flight == 0 and not h.parked and not h.fails and h.paused_until <= now \
                and (h.limiter is None or h.limit >= (self.per_host or 0)) \
                and (h.rate is None or h.rate.wait_time() == 0.0):
            # Idle and nothing to remember: forget it, so a million-host list keeps bounded memory.
            del self.hosts[h.key]
            if self._last_host is h:
                self._last_host = None
        return False

    def untake(self, h: HostState, lease: Lease, now: float = 0.0) -> None:
        """Give back a lease taken but not requested; it goes first again, and its host is ready again."""
        h.in_flight -= 1
        self.in_flight -= 1
        if h.limiter is not None:
            h.limiter.unacquire()
        h.queue.appendleft(lease)
        self.queued += 1
        self._schedule(h, now)

    def next_wake(self) -> float | None:
        """Loop time at which parked or delayed work becomes due, or None."""
        t: float | None = None
        if self._delayed:
            t = self._delayed[0][0]
        if self._parked and (t is None or self._parked[0][0] < t):
            t = self._parked[0][0]
        return t

    def drain(self) -> list[Lease]:
        """Remove and return every held lease (queued and delayed): the run stops without them."""
        out: list[Lease] = []
        for h in self.hosts.values():
            out.extend(h.queue)
            h.queue.clear()
            h.in_ready = False
        out.extend(lease for _, _, lease in self._delayed)
        self._delayed.clear()
        self._ready.clear()
        self.queued = 0
        return out
