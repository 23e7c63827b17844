"""The machine-readable run summary (``surge fetch --json``), built from a ``StatsSnapshot``.

The schema is a contract with ``surge bench``, which parses it from a subprocess: add keys, never rename.
"""

from __future__ import annotations

from typing import Any

from surge.report.stats import StatsSnapshot

__all__ = ["to_json"]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def to_json(snapshot: StatsSnapshot, **extra: Any) -> dict[str, Any]:
    """The summary object: counts, rate, latency (ms), bytes, retries, connections, concurrency, series.

    ``extra`` keys are added at the top level and override computed ones (e.g. ``loop="uvloop"``)::

        summary = to_json(stats.snapshot(), command="surge fetch -n 1000 http://127.0.0.1:8080/")
        print(orjson.dumps(summary).decode())
    """
    lat = snapshot.latency
    conc = snapshot.concurrency
    series = snapshot.series
    result: dict[str, Any] = {
        "requests": snapshot.requests,
        "ok": snapshot.ok,
        "failed": snapshot.failed,
        "elapsed_s": round(snapshot.elapsed_s, 3),
        "rps": round(snapshot.rps, 1),
        "loop": snapshot.loop,
        "status": {str(code): n for code, n in snapshot.status.items()},
        "errors": dict(snapshot.errors),
        "latency_ms": {
            "p50": round(lat.p50, 3),
            "p90": round(lat.p90, 3),
            "p99": round(lat.p99, 3),
            "p99.9": round(lat.p999, 3),
            "max": round(lat.max, 3),
            "mean": round(lat.mean, 3),
        },
        "bytes": snapshot.bytes,
        "retries": snapshot.retries,
        "connections": {
            "opened": snapshot.connections.opened,
            "reused": snapshot.connections.reused,
            "closed": snapshot.connections.closed,
        },
        "concurrency": {
            "final": conc.final,
            "max": conc.max,
            "trajectory": [[round(t, 3), limit] for t, limit in conc.trajectory],
        },
        "series": {
            "t": list(series.t),
            "rps": [round(v, 1) for v in series.rps],
            "p50_ms": [_ms(v) for v in series.p50_ms],
            "p99_ms": [_ms(v) for v in series.p99_ms],
            "errors": list(series.errors),
        },
    }
    result.update(extra)
    return result
