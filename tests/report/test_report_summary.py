"""The JSON summary keeps exactly the schema surge bench parses."""

from __future__ import annotations

import orjson
from report_fakes import FakeOutcome, ManualClock

from surge.report.stats import Stats
from surge.report.summary import to_json

TOP_KEYS = {
    "requests",
    "ok",
    "failed",
    "elapsed_s",
    "rps",
    "loop",
    "status",
    "errors",
    "latency_ms",
    "bytes",
    "retries",
    "connections",
    "concurrency",
    "series",
}


def build() -> dict[str, object]:
    clock = ManualClock(0.0)
    stats = Stats(clock=clock, loop="asyncio")
    stats.set_concurrency(50)
    for i in range(40):
        clock.now = i * 0.05
        stats.record(FakeOutcome(elapsed_ms=2.0 + i % 4))
    stats.record(FakeOutcome(None, ok=False, error="timeout_read", attempts=2, bytes=0))
    stats.connections(2, 38, 0)
    clock.now = 2.0
    stats.finish()
    return to_json(stats.snapshot(), command="surge fetch")


def test_schema_and_values() -> None:
    data = build()
    assert set(data) == TOP_KEYS | {"command"}
    assert data["requests"] == 41 and data["ok"] == 40 and data["failed"] == 1
    assert data["elapsed_s"] == 2.0 and data["rps"] == 20.5
    assert data["status"] == {"200": 40}
    assert data["errors"] == {"timeout_read": 1}
    assert set(data["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max", "mean"}  # type: ignore[arg-type]
    assert data["latency_ms"]["max"] == 5.0  # type: ignore[index]
    assert data["latency_ms"]["mean"] == 3.5  # type: ignore[index]
    assert data["bytes"] == 4000 and data["retries"] == 1
    assert data["connections"] == {"opened": 2, "reused": 38, "closed": 0}
    assert data["concurrency"] == {"final": 50, "max": 50, "trajectory": [[0.0, 50]]}
    series = data["series"]
    assert set(series) == {"t", "rps", "p50_ms", "p99_ms", "errors"}  # type: ignore[arg-type]
    assert series["t"] == [0.0, 1.0]  # type: ignore[index]
    assert series["rps"] == [20.0, 21.0]  # type: ignore[index]
    assert series["errors"] == [0, 1]  # type: ignore[index]
    assert data["command"] == "surge fetch"


def test_extra_overrides_and_serializes() -> None:
    data = to_json(Stats(clock=ManualClock()).snapshot(), loop="uvloop")
    assert data["loop"] == "uvloop"
    assert orjson.loads(orjson.dumps(data)) == data
