"""Connection pool bookkeeping: which request gets which connection, when a new one may open, which close.

Sans-I/O: no sockets, no futures awaited here. The client performs what this decides: it opens a connection
for an ``OPEN`` grant, hands a connection to a waiter, closes what lands in ``to_close``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from surge.http.models import Limits, PoolStatistics

__all__ = ["Origin", "PoolState", "Poolable"]


class Poolable(Protocol):
    """What the bookkeeping needs to know about a connection."""

    key: Hashable  # the origin it belongs to
    idle_since: float  # loop time it last became idle
    counted: bool  # still holds a slot in the pool's counts
    closed: bool  # the transport is gone


C = TypeVar("C", bound=Poolable)
W = TypeVar("W")  # a waiter: opaque here (the client uses futures)


class Origin(Generic[C, W]):
    """One origin's share of the pool: idle connections (a stack, newest last), waiters (FIFO), count."""

    __slots__ = ("alive", "count", "idle", "key", "waiters")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.idle: list[C] = []
        self.waiters: deque[W] = deque()
        self.count = 0  # connections open or being opened
        self.alive = True  # still the pool's entry for its key (a client may hold on to it while so)


class PoolState(Generic[C, W]):
    """Limits and counts for every origin of one client.

    Each call may leave work in two outboxes the caller must carry out: ``grants`` (waiter, its origin,
    and a connection or None = "open a new one, the slot is reserved for you") and ``to_close``
    (connections to close, already uncounted).
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.origins: dict[Hashable, Origin[C, W]] = {}
        self.total = 0
        self.idle = 0
        self.opened = 0
        self.reused = 0
        self.closed = 0
        self.requests = 0
        self.grants: list[tuple[W, Origin[C, W], C | None]] = []
        self.to_close: list[C] = []
        # Origins with waiters that are held back by the total limit, not their own per-host limit.
        self._starved: deque[Origin[C, W]] = deque()

    def origin(self, key: Hashable) -> Origin[C, W]:
        """The bookkeeping of ``key``, created on first use."""
        o = self.origins.get(key)
        if o is None:
            o = self.origins[key] = Origin(key)
        return o

    # Hot path: called once per request.
    def checkout(self, o: Origin[C, W], now: float) -> C | None:
        """The most recently used live idle connection of ``o``, or None; expired ones go to ``to_close``."""
        idle = o.idle
        expiry = self.limits.idle_expiry
        while idle:
            conn = idle.pop()
            self.idle -= 1
            if conn.closed or now - conn.idle_since >= expiry:
                self._uncount(o, conn)
                if not conn.closed:
                    self.to_close.append(conn)
                continue
            self.reused += 1
            return conn
        return None

    def reserve(self, o: Origin[C, W]) -> bool:
        """Reserve a slot for a new connection to ``o`` if the limits allow (closing an idle connection
        of another origin when only the total limit is in the way)."""
        if o.count >= self.limits.per_host:
            return False
        if self.total >= self.limits.total and not self._evict_idle_elsewhere(o):
            return False
        o.count += 1
        self.total += 1
        return True

    def wait(self, o: Origin[C, W], waiter: W) -> None:
        """Queue ``waiter`` for the next connection or slot of ``o``."""
        o.waiters.append(waiter)
        if o.count < self.limits.per_host:
            self._starved.append(o)

    def cancel_wait(self, o: Origin[C, W], waiter: W) -> None:
        """Forget a waiter that gave up (it may already have been served; then this does nothing)."""
        try:
            o.waiters.remove(waiter)
        except ValueError:
            pass

    # Hot path: called once per request.
    def checkin(self, conn: C, now: float) -> None:
        """A connection finished a request and can be reused."""
        o = self.origins[conn.key]
        if o.waiters:
            self.reused += 1
            self.grants.append((o.waiters.popleft(), o, conn))
            return
        if self._starved and self._grant_starved_from(o, conn):
            return
        conn.idle_since = now
        o.idle.append(conn)
        self.idle += 1

    def discard(self, conn: C) -> None:
        """A connection closed (or must close): free its slot for a waiter."""
        if not conn.counted:
            return
        o = self.origins[conn.key]
        if conn in o.idle:
            o.idle.remove(conn)
            self.idle -= 1
        self._uncount(o, conn)
        self._grant_slot(o)

    def release_slot(self, o: Origin[C, W]) -> None:
        """A reserved slot whose connection never opened (connect failed or was cancelled)."""
        o.count -= 1
        self.total -= 1
        self._grant_slot(o)
        self._forget_if_empty(o)

    def expired(self, now: float) -> None:
        """Move every idle connection past its expiry to ``to_close``; drop origins with nothing left."""
        expiry = self.limits.idle_expiry
        for o in list(self.origins.values()):
            keep = [c for c in o.idle if now - c.idle_since < expiry and not c.closed]
            if len(keep) != len(o.idle):
                for c in o.idle:
                    if c not in keep:
                        self.idle -= 1
                        self._uncount(o, c)
                        if not c.closed:
                            self.to_close.append(c)
                o.idle = keep
            self._forget_if_empty(o)

    def close_all(self) -> list[W]:
        """Every idle connection to ``to_close``; returns the waiters, which the caller fails."""
        waiters: list[W] = []
        for o in list(self.origins.values()):
            for c in o.idle:
                self.idle -= 1
                self._uncount(o, c)
                if not c.closed:
                    self.to_close.append(c)
            o.idle.clear()
            waiters.extend(o.waiters)
            o.waiters.clear()
        self._starved.clear()
        return waiters

    def statistics(self) -> PoolStatistics:
        """Counts so far and connections now idle and in use."""
        return PoolStatistics(
            opened=self.opened,
            reused=self.reused,
            closed=self.closed,
            idle=self.idle,
            active=self.total - self.idle,
            requests=self.requests,
        )

    def _uncount(self, o: Origin[C, W], conn: C) -> None:
        if conn.counted:
            conn.counted = False
            o.count -= 1
            self.total -= 1
            self.closed += 1

    def _grant_slot(self, o: Origin[C, W]) -> None:
        # A slot is free: first to this origin's own queue, then to an origin starved by the total limit.
        if o.waiters and o.count < self.limits.per_host and self.total < self.limits.total:
            o.count += 1
            self.total += 1
            self.grants.append((o.waiters.popleft(), o, None))
            return
        while self._starved and self.total < self.limits.total:
            s = self._starved.popleft()
            if s.waiters and s.count < self.limits.per_host:
                s.count += 1
                self.total += 1
                self.grants.append((s.waiters.popleft(), s, None))
                if s.waiters:
                    self._starved.appendleft(s)
                return

    def _grant_starved_from(self, o: Origin[C, W], conn: C) -> bool:
        # The total limit is full and another origin waits: close this connection instead of idling it.
        if self.total < self.limits.total:
            return False
        while self._starved:
            s = self._starved[0]
            if s.waiters and s.count < self.limits.per_host and s is not o:
                self._uncount(o, conn)
                self.to_close.append(conn)
                self._grant_slot(s)
                return True
            self._starved.popleft()
        return False

    def _evict_idle_elsewhere(self, o: Origin[C, W]) -> bool:
        for other in self.origins.values():
            if other is not o and other.idle:
                conn = other.idle.pop(0)  # the oldest
                self.idle -= 1
                self._uncount(other, conn)
                if not conn.closed:
                    self.to_close.append(conn)
                return True
        return False

    def _forget_if_empty(self, o: Origin[C, W]) -> None:
        if o.count == 0 and not o.waiters and not o.idle:
            self.origins.pop(o.key, None)
            o.alive = False
