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
from surge.aio.loops import available_loops as available_loops
from surge.aio.loops import last_fd_limit as last_fd_limit
from surge.aio.loops import loop_name as loop_name
from surge.aio.loops import raise_fd_limit as raise_fd_limit
from surge.aio.loops import run as run
from surge.aio.ratelimit import KeyedRateLimiter as KeyedRateLimiter
from surge.aio.ratelimit import RateLimiter as RateLimiter
from surge.aio.retry import Attempt as Attempt
from surge.aio.retry import Backoff as Backoff
from surge.aio.retry import RetryPolicy as RetryPolicy
from surge.aio.retry import default_retry_on as default_retry_on
from surge.aio.retry import parse_retry_after as parse_retry_after
from surge.aio.retry import retry as retry
from surge.aio.retry import retrying as retrying
from surge.aio.retry import set_testing as set_testing

__all__ = [
    "AIMD",
    "Attempt",
    "Backoff",
    "ConcurrencyLimit",
    "Gradient2",
    "KeyedRateLimiter",
    "LimitAlgorithm",
    "LimitStatistics",
    "RateLimiter",
    "RetryPolicy",
    "Slot",
    "available_loops",
    "default_retry_on",
    "last_fd_limit",
    "loop_name",
    "parse_retry_after",
    "raise_fd_limit",
    "retry",
    "retrying",
    "run",
    "set_testing",
]

# ---- amap, queues, batching, shutdown -------------------------------------------------------------------
# Imports for the second half of surge.aio go below this line, each followed by `__all__ += [...]`.
from surge.aio.amap import AsyncMap as AsyncMap
from surge.aio.amap import amap as amap
from surge.aio.batching import Batcher as Batcher
from surge.aio.queues import QueueStatistics as QueueStatistics
from surge.aio.queues import WatermarkQueue as WatermarkQueue
from surge.aio.shutdown import Shutdown as Shutdown

__all__ += ["AsyncMap", "Batcher", "QueueStatistics", "Shutdown", "WatermarkQueue", "amap"]
