"""Retries: capped exponential backoff with full jitter, Retry-After parsing, and a policy that decides.

The decision (``RetryPolicy.next_delay``) is pure, so the engine can reschedule a request without
sleeping in a worker; ``retrying()`` and ``@retry`` wrap it for ordinary code. ``set_testing(True)``
turns every wait into zero.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import math
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from surge.errors import RequestError

__all__ = [
    "Attempt",
    "Backoff",
    "RetryPolicy",
    "default_retry_on",
    "parse_retry_after",
    "retry",
    "retrying",
    "set_testing",
]

P = ParamSpec("P")
R = TypeVar("R")

_testing = False

# Request failures worth another try: the network or the server may behave next time. A body that is
# too large, a redirect loop, a blocked address or a robots.txt refusal will not change.
_TRANSIENT_KINDS = frozenset(
    {"timeout_connect", "timeout_read", "timeout_total", "dns", "connect", "protocol"}
)


def set_testing(on: bool) -> None:
    """Turn waiting off (``True``) or back on for every retry in the process.

    Decisions stay the same (attempts, deadline, predicate); only the waits become zero.

    >>> set_testing(True)
    >>> RetryPolicy(attempts=3).next_delay(1, TimeoutError())
    0.0
    >>> set_testing(False)
    """
    global _testing
    _testing = bool(on)


class Backoff:
    """Capped exponential backoff, full jitter: try n waits ``uniform(0, min(cap, base*factor**(n-1)))``.

    Full jitter spreads clients that failed together, so they do not retry in lockstep. Pure math;
    ``seed`` makes the sequence reproducible. ``jitter=False`` gives the ceiling itself.

    >>> Backoff(base=0.1, cap=1.0, jitter=False).delay(3)
    0.4
    >>> 0.0 <= Backoff(seed=1).delay(5) <= 1.6
    True
    """

    __slots__ = ("_rng", "base", "cap", "factor", "jitter")

    def __init__(
        self, base: float = 0.1, cap: float = 30.0, factor: float = 2.0, *, jitter: bool = True,
        seed: int | None = None,
    ) -> None:
        if not (base >= 0 and cap >= 0 and math.isfinite(base) and math.isfinite(cap)):
            raise ValueError(f"base and cap must be finite and >= 0, got {base!r}, {cap!r}")
        if not (factor >= 1 and math.isfinite(factor)):
            raise ValueError(f"factor must be finite and >= 1, got {factor!r}")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._rng = random.Random(seed)

    def __repr__(self) -> str:
        return (f"Backoff(base={self.base!r}, cap={self.cap!r}, factor={self.factor!r}, "
                f"jitter={self.jitter!r})")

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay for ``attempt`` (1 = first retry): ``min(cap, base * factor**(attempt-1))``.

        >>> [Backoff(base=1, cap=5, jitter=False).ceiling(n) for n in range(1, 5)]
        [1.0, 2.0, 4.0, 5.0]
        """
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt!r}")
        try:
            value = self.base * self.factor ** (attempt - 1)
        except OverflowError:
            return float(self.cap)
        return float(min(self.cap, value))

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry).

        >>> Backoff(base=0.5, jitter=False).delay(1)
        0.5
        """
        ceiling = self.ceiling(attempt)
        if not self.jitter:
            return ceiling
        return min(ceiling, self._rng.uniform(0.0, ceiling))


_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")
# The same header twice, joined by a proxy or by surge's own header access: "120, 120".
_REPEATED_DELTA = re.compile(r"(\d+(?:\.\d+)?)(?:\s*,\s*\d+(?:\.\d+)?)+")


def parse_retry_after(value: str | None, *, now: float | None = None, cap: float = 60.0) -> float | None:
    """Seconds to wait from a Retry-After header value, at most ``cap``; None if absent or unreadable.

    Accepts delta-seconds ("120", also "1.5", and a repeated field joined as "120, 120": the first) and an
    HTTP-date (a date already past means 0.0). ``now`` is the wall-clock time (``time.time()``) to measure
    a date from. Negative, garbage, ``inf``/``nan`` and exponent forms are unreadable; absurdly large
    values (a hundred digits, the year 9999) are ``cap``. Pass ``cap=math.inf`` to learn what was asked.

    >>> [parse_retry_after(v) for v in ("30", "9999", "-1", "soon", "7, 7", None)]
    [30.0, 60.0, None, None, 7.0, None]
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
    10.0
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _DELTA_SECONDS.fullmatch(value):
        return min(float(value), cap)  # float(): a 300-digit number is inf, never an int-parsing error
    repeated = _REPEATED_DELTA.fullmatch(value)
    if repeated is not None:
        return min(float(repeated.group(1)), cap)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # RFC 9110: HTTP dates are GMT
    try:
        delta = when.timestamp() - (time.time() if now is None else now)
    except (OverflowError, OSError, ValueError):
        return None
    return min(max(delta, 0.0), cap)


def default_retry_on(exc: BaseException) -> bool:
    """The default retry predicate: transient request errors, timeouts, connection errors, and anything
    that carries a ``retry_after`` (a server that asked to be retried).

    >>> from surge.errors import ConnectError, TooManyRedirects
    >>> default_retry_on(ConnectError()), default_retry_on(TooManyRedirects()), default_retry_on(KeyError())
    (True, False, False)
    """
    if isinstance(exc, RequestError):
        return exc.kind in _TRANSIENT_KINDS
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return getattr(exc, "retry_after", None) is not None


def _retry_after_of(exc: BaseException | None) -> float | None:
    # What the exception says the server asked for, uncapped (the policy compares it with its cap).
    value = getattr(exc, "retry_after", None)
    if value is None:
        return None
    if isinstance(value, str):
        return parse_retry_after(value, cap=math.inf)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value >= 0 and not math.isnan(value):
        return float(value)
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry and how long to wait first.

    ``attempts`` counts every try, the first included. ``deadline`` (seconds since the first try) stops
    retrying when the next wait would end past it. ``retry_on`` decides which exceptions are worth another
    try (default: ``default_retry_on``). A server's Retry-After -- passed as ``retry_after`` or found on the
    exception as an attribute ``retry_after`` (seconds as a number, or the raw header string) -- replaces
    the backoff. A server asking for longer than ``max_retry_after`` is not retried at all: waiting less
    than it asked would disobey it, and waiting what it asked (``Retry-After: 99999999`` is three years)
    would never end, so the failure stands.

    >>> policy = RetryPolicy(attempts=3, backoff=Backoff(base=1, jitter=False))
    >>> [policy.next_delay(n, TimeoutError()) for n in (1, 2, 3)]
    [1.0, 2.0, None]
    >>> policy.next_delay(1, None, retry_after=7.0), policy.next_delay(1, ValueError())
    (7.0, None)
    >>> policy.next_delay(1, None, retry_after=3600.0) is None  # longer than max_retry_after: give up
    True
    """

    attempts: int = 3
    deadline: float | None = None
    backoff: Backoff = field(default_factory=Backoff)
    retry_on: Callable[[BaseException], bool] = default_retry_on
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts!r}")
        if self.deadline is not None and not self.deadline >= 0:
            raise ValueError(f"deadline must be >= 0, got {self.deadline!r}")
        if not self.max_retry_after >= 0:
            raise ValueError(f"max_retry_after must be >= 0, got {self.max_retry_after!r}")

    def next_delay(
        self,
        attempt: int,
        exc: BaseException | None,
        retry_after: float | None = None,
        *,
        elapsed: float = 0.0,
    ) -> float | None:
        """Seconds to wait before the next try after try number ``attempt`` failed, or None to give up.

        ``exc`` is what failed (None for a failure without an exception, e.g. a 503 response);
        ``elapsed`` the seconds since the first try started (for ``deadline``). Pure apart from the
        backoff's random jitter; returns 0.0 instead of the wait under ``set_testing(True)``.

        >>> RetryPolicy(attempts=5, deadline=1.0).next_delay(1, TimeoutError(), 2.0)
        """
        if attempt >= self.attempts:
            return None
        if exc is not None and (not isinstance(exc, Exception) or not self.retry_on(exc)):
            return None  # CancelledError, KeyboardInterrupt and the like are never retried
        if retry_after is None:
            retry_after = _retry_after_of(exc)
        if retry_after is not None and retry_after >= 0:
            if retry_after > self.max_retry_after:
                return None  # the server asked for longer than we wait: its answer stands
            delay = float(retry_after)
        else:
            delay = self.backoff.delay(attempt)
        if self.deadline is not None and elapsed + delay > self.deadline:
            return None
        return 0.0 if _testing else delay


class Attempt:
    """One try inside ``retrying()``: use it as ``with attempt:`` around the code to retry.

    An exception the policy retries is swallowed and the loop goes on after the wait; any other one
    (or the last) propagates from the ``with`` block. ``number`` counts from 1; ``last_exception`` is the
    previous try's error.

    >>> import asyncio
    >>> async def main() -> list[int]:
    ...     seen = []
    ...     async for attempt in retrying(attempts=3, on=KeyError):
    ...         with attempt:
    ...             seen.append(attempt.number)
    ...             if attempt.number < 3:
    ...                 raise KeyError("flaky")
    ...     return seen
    >>> set_testing(True); asyncio.run(main()); set_testing(False)
    [1, 2, 3]
    """

    __slots__ = ("_delay", "_done", "_elapsed", "_policy", "last_exception", "number")

    def __init__(
        self, number: int, policy: RetryPolicy, elapsed: float, last_exception: BaseException | None
    ) -> None:
        self.number = number
        self.last_exception = last_exception
        self._policy = policy
        self._elapsed = elapsed
        self._delay: float | None = None
        self._done = False

    def __repr__(self) -> str:
        return f"Attempt(number={self.number})"

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            self._done = True
            return False
        delay = self._policy.next_delay(self.number, exc, elapsed=self._elapsed)
        if delay is None:
            return False  # give up: the exception propagates unchanged
        self._delay = delay
        self.last_exception = exc
        return True


def _policy_from(policy: RetryPolicy | None, kw: dict[str, Any]) -> RetryPolicy:
    on = kw.pop("on", None)
    if on is not None:
        if "retry_on" in kw:
            raise TypeError("give either on= or retry_on=, not both")
        types = on if isinstance(on, tuple) else (on,)
        kw["retry_on"] = lambda exc: isinstance(exc, types)
    if policy is None:
        return RetryPolicy(**kw)
    if kw:
        raise TypeError("give either a policy or keyword arguments, not both")
    return policy


async def _attempts(policy: RetryPolicy) -> AsyncIterator[Attempt]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    number = 1
    last: BaseException | None = None
    while True:
        attempt = Attempt(number, policy, loop.time() - start, last)
        yield attempt
        if attempt._delay is None:
            return  # succeeded (or the body did not use `with attempt`)
        last = attempt.last_exception
        await asyncio.sleep(0.0 if _testing else attempt._delay)
        number += 1


def retrying(policy: RetryPolicy | None = None, **kw: Any) -> AsyncIterator[Attempt]:
    """Iterate over tries until one succeeds or the policy gives up (then its exception propagates).

    Takes a ``RetryPolicy`` or its fields as keywords (``attempts``, ``deadline``, ``backoff``,
    ``retry_on``, ``max_retry_after``), plus ``on=`` an exception type or tuple as a shortcut for
    ``retry_on``. Waits use the loop's clock (virtual clocks work) and vanish under ``set_testing(True)``.

    >>> import asyncio
    >>> async def main() -> str:
    ...     async for attempt in retrying(attempts=2, on=ConnectionError):
    ...         with attempt:
    ...             return "ok"
    ...     raise AssertionError("unreachable")
    >>> asyncio.run(main())
    'ok'
    """
    return _attempts(_policy_from(policy, dict(kw)))


def retry(
    policy: RetryPolicy | None = None, **kw: Any
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate an async function so that it is retried by a policy (same arguments as ``retrying``).

    >>> import asyncio
    >>> calls = []
    >>> @retry(attempts=3, on=TimeoutError, backoff=Backoff(base=0.001))
    ... async def fetch() -> int:
    ...     calls.append(1)
    ...     if len(calls) < 2:
    ...         raise TimeoutError
    ...     return len(calls)
    >>> asyncio.run(fetch())
    2
    """
    resolved = _policy_from(policy, dict(kw))

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            async for attempt in _attempts(resolved):
                with attempt:
                    return await fn(*args, **kwargs)
            raise AssertionError("unreachable: the last attempt returns or raises")

        return wrapper

    return decorate
