"""surge.aio: the asyncio toolkit surge is built on (no HTTP in here).

Event loops, rate and concurrency limits (fixed and adaptive), retries, and -- below -- mapping, queues,
batching and graceful shutdown.
"""

from __future__ import annotations

from surge.aio.concurrency import AIMD as AIMD
from surge.aio.concurrency import ConcurrencyLimit as ConcurrencyLimit
from surge.aio.concurrency import Gradient2 as Gradient2
from surge.aio.concurrency import LimitAlgorithm as LimitAlgorithm
from surge.aio.concurrency import LimitStatistics as LimitStatistics
from surge.aio.concurrency import Slot as Slot
from surge.aio.ratelimit import KeyedRateLimiter as KeyedRateLimiter
from surge.aio.ratelimit import RateLimiter as RateLimiter

__all__ = [
    "AIMD",
    "ConcurrencyLimit",
    "Gradient2",
    "KeyedRateLimiter",
    "LimitAlgorithm",
    "LimitStatistics",
    "RateLimiter",
    "Slot",
]

# ---- amap, queues, batching, shutdown -------------------------------------------------------------------
# Imports for the second half of surge.aio go below this line, each followed by `__all__ += [...]`.
