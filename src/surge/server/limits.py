"""Server-side state for ``/ratelimit`` (GCRA per client key) and ``/flaky`` (seeded failures).

Time comes from the running loop's clock, so tests drive it with a virtual clock; memory is bounded.
"""

from __future__ import annotations

import hashlib
import math

MAX_KEYS = 100_000


class ServerRateLimit:
    """Per-key GCRA: ``rps`` requests a second with a burst of ``max(1, rps)``; bounded key table."""

    def __init__(self) -> None:
        self._tat: dict[tuple[str, float], float] = {}

    def check(self, key: str, rps: float, now: float) -> float:
        """0.0 if the request is allowed (and counted), else seconds until one would be allowed."""
        interval = 1.0 / rps
        tolerance = (max(1.0, math.floor(rps)) - 1.0) * interval
        slot = (key, rps)
        tat = max(self._tat.get(slot, now), now)
        wait = tat - now - tolerance
        if wait > 1e-9:
            return wait
        if len(self._tat) >= MAX_KEYS and slot not in self._tat:
            # Keys whose theoretical arrival time has passed carry no state worth keeping.
            self._tat = {k: v for k, v in self._tat.items() if v > now}
            if len(self._tat) >= MAX_KEYS:
                self._tat.clear()
        self._tat[slot] = tat + interval
        return 0.0

    @staticmethod
    def retry_after(wait: float) -> int:
        """Whole seconds for the ``Retry-After`` header (at least 1)."""
        return max(1, math.ceil(wait))


def flaky_fails(p: float, seed: int, key: str, n: int) -> bool:
    """Whether the ``n``-th request (from 0) of ``key`` to ``/flaky?p=&seed=`` fails: pure, reproducible."""
    digest = hashlib.blake2b(f"{seed}\x00{key}\x00{n}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < p


class FlakyCounter:
    """Counts requests per (seed, key), so the failure sequence replays from the start for each key."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, str], int] = {}

    def next(self, seed: int, key: str) -> int:
        """The number of this request for (seed, key), from 0."""
        slot = (seed, key)
        n = self._counts.get(slot, 0)
        if n == 0 and len(self._counts) >= MAX_KEYS:
            self._counts.clear()
        self._counts[slot] = n + 1
        return n
