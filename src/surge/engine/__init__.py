"""surge.engine: the WorkQueue interface and its memory/SQLite queues, the host policy, the worker engine,
and ``Fetcher``/``fetch`` which run it over streamed input with exactly one Outcome per request."""

from __future__ import annotations

from surge.engine.engine import Engine as Engine
from surge.engine.engine import EngineOptions as EngineOptions
from surge.engine.engine import RetryRules as RetryRules
from surge.engine.fetcher import Fetcher as Fetcher
from surge.engine.fetcher import FetchResult as FetchResult
from surge.engine.fetcher import fetch as fetch
from surge.engine.hostpolicy import HostPolicy as HostPolicy
from surge.engine.items import Outcome as Outcome
from surge.engine.items import WorkItem as WorkItem
from surge.engine.memqueue import MemoryQueue as MemoryQueue
from surge.engine.sqlitequeue import SQLiteQueue as SQLiteQueue
from surge.engine.workqueue import Lease as Lease
from surge.engine.workqueue import WorkQueue as WorkQueue

__all__ = [
    "Engine",
    "EngineOptions",
    "FetchResult",
    "Fetcher",
    "HostPolicy",
    "Lease",
    "MemoryQueue",
    "Outcome",
    "RetryRules",
    "SQLiteQueue",
    "WorkItem",
    "WorkQueue",
    "fetch",
]
