"""The harness's pure parts: reading wrk, hey and surge fetch output, ratios, speed-ups, limit notes."""

from __future__ import annotations

import json

import pytest

from surge.bench.loops import LoopsResult, WorkloadResult
from surge.bench.steps import StepsResult
from surge.bench.targets import (
    ClientRun,
    CorePlan,
    HarnessError,
    limiter_note,
    parse_fetch_summary,
    parse_hey,
    parse_wrk,
)

# Real output of `hey -n 200 -c 10` against nginx (trimmed histogram), and of hey against a closed port.
HEY_OK = """
Summary:
  Total:\t0.0069 secs
  Slowest:\t0.0016 secs
  Fastest:\t0.0000 secs
  Average:\t0.0003 secs
  Requests/sec:\t29077.1086

  Total data:\t20200 bytes
  Size/request:\t101 bytes

Latency distribution:
  10% in 0.0001 secs
  25% in 0.0001 secs
  50% in 0.0002 secs
  75% in 0.0004 secs
  90% in 0.0006 secs
  95% in 0.0007 secs
  99% in 0.0014 secs

Status code distribution:
  [200]\t190 responses
  [503]\t10 responses
"""

HEY_REFUSED = """
Summary:
  Total:\t0.0061 secs
  Slowest:\tNaN secs
  Requests/sec:\t49602.4283

Status code distribution:

Error distribution:
  [300]\tGet "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused
"""


def test_parse_hey_counts_statuses_and_percentiles() -> None:
    run = parse_hey(HEY_OK)
    assert (run.requests, run.ok) == (200, 190)
    assert run.elapsed_s == pytest.approx(0.0069)
    assert run.rps == pytest.approx(200 / 0.0069)
    assert run.latency_ms["p50"] == pytest.approx(0.2)
    assert run.latency_ms["p99"] == pytest.approx(1.4)
    assert run.latency_ms["max"] == pytest.approx(1.6)
    assert run.success_pct == pytest.approx(95.0)


def test_parse_hey_counts_connection_errors_as_failed_requests() -> None:
    run = parse_hey(HEY_REFUSED)
    assert (run.requests, run.ok) == (300, 0)
    assert run.errors == {"other": 300}


def test_parse_hey_without_summary_is_a_harness_error() -> None:
    with pytest.raises(HarnessError):
        parse_hey("flag provided but not defined: -x")


def test_parse_wrk_reads_the_done_hook_line() -> None:
    line = ('SURGE_WRK {"requests":1000,"duration_us":500000,"bytes":101000,"connect":0,"read":2,"write":0,'
            '"status":10,"timeout":0,"p50":120,"p90":300,"p99":900,"p999":1500,"max":2000,"mean":150.5}')
    run = parse_wrk("Running 1s test @ http://x/\n" + line + "\n")
    assert (run.requests, run.ok) == (1000, 990)
    assert run.rps == pytest.approx(2000.0)
    assert run.latency_ms["p50"] == pytest.approx(0.12)
    assert run.latency_ms["p99.9"] == pytest.approx(1.5)
    assert run.errors == {"read": 2, "status": 10}
    with pytest.raises(HarnessError):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_parse_fetch_summary_follows_the_json_contract() -> None:
    summary = {"requests": 100, "ok": 98, "failed": 2, "elapsed_s": 0.5, "rps": 200.0, "loop": "uvloop",
               "status": {"200": 98}, "errors": {"timeout_read": 2, "dns": 0},
               "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "p99.9": 4.0, "max": 5.0, "mean": 1.2},
               "bytes": 10000, "retries": 0, "connections": {"opened": 10, "reused": 90, "closed": 0},
               "concurrency": {"final": 10, "max": 10, "trajectory": [[0.0, 10]]},
               "series": {"t": [0, 1], "rps": [100, 100], "p50_ms": [1, 1], "p99_ms": [3, 3],
                          "errors": [1, 1]}}
    run = parse_fetch_summary(json.loads(json.dumps(summary)), loop="asyncio")
    assert (run.client, run.loop, run.requests, run.ok) == ("surge fetch", "uvloop", 100, 98)
    assert run.latency_ms["p99"] == 3.0
    assert run.series["rps"] == [100.0, 100.0]
    assert run.errors == {"timeout_read": 2}


def test_parse_fetch_summary_keeps_seconds_without_percentiles() -> None:
    # A second in which no request finished has null percentiles in the summary: kept as None (a gap in the
    # charts), not a crash of the benchmark that reads it.
    summary = {"requests": 10, "ok": 10, "elapsed_s": 2.5, "rps": 4.0, "loop": "uvloop",
               "series": {"t": [0, 1, 2], "rps": [10, 0, 0], "p50_ms": [1.0, None, None],
                          "p99_ms": [2.0, None, None], "errors": [0, 0, 0]}}
    run = parse_fetch_summary(summary, loop="uvloop")
    assert run.series["p50_ms"] == [1.0, None, None]
    assert run.series["rps"] == [10.0, 0.0, 0.0]


def test_cpu_percentages_client_over_its_life_server_over_the_run() -> None:
    run = ClientRun("x", "asyncio", 10, 10, elapsed_s=1.0, rps=10.0, wall_s=2.0, client_cpu_s=1.0)
    run.with_server_cpu(0.5)
    assert run.client_cpu_pct == pytest.approx(50.0)  # over the client's whole life
    assert run.server_cpu_pct == pytest.approx(50.0)  # over the timed run
    assert run.with_server_cpu(None).server_cpu_pct is None


@pytest.mark.parametrize(("client", "server", "expected"), [
    (99.0, 95.0, "both sides"),
    (40.0, 95.0, "server-bound"),
    (97.0, 30.0, "client-bound"),
    (50.0, 50.0, "neither core full"),
    (50.0, None, "not client CPU"),
    (99.0, None, "client-bound"),
])
def test_limiter_note_names_the_full_side(client: float, server: float | None, expected: str) -> None:
    assert limiter_note(client, server, CorePlan(0, 1, shared=False)) == expected


def test_limiter_note_says_when_both_sides_share_a_core() -> None:
    assert limiter_note(99.0, 99.0, CorePlan(0, 0, shared=True)) == "shared core"


def test_steps_speedups_are_ratios_of_elapsed_times() -> None:
    runs = [ClientRun(c, "asyncio", 10, 10, elapsed_s=t, rps=10 / t) for c, t in
            (("sync", 10.0), ("gather", 1.0), ("optimized", 2.0))]
    res = StepsResult(url="u", urls=10, delay_ms=100, labels=["Step 1: a", "Step 2: b", "Step 3: c"],
                      runs=runs, machine={}, cores="")
    assert res.speedups() == [(1.0, None), (10.0, 10.0), (5.0, 0.5)]
    md = res.markdown()
    assert "| Step 2: b | asyncio | 10 | 10 | 1.00 | 10.0 | 10.0 | 10.0 |" in md


def test_loops_table_shows_failed_rows_and_ratios() -> None:
    res = LoopsResult(loops=["asyncio", "uvloop"], machine={}, results=[
        WorkloadResult("call_soon_chain", 100, "asyncio", 0.01, 10_000.0, ratio_to_asyncio=1.0),
        WorkloadResult("call_soon_chain", 100, "uvloop", 0.005, 20_000.0, ratio_to_asyncio=2.0),
        WorkloadResult("tcp_echo_streams", 10, "asyncio", 0.01, 1000.0, ratio_to_asyncio=1.0),
        WorkloadResult("tcp_echo_streams", 10, "uvloop", None, None, error="NotImplementedError: x"),
    ])
    md = res.markdown()
    assert "| call_soon_chain 100 | 10,000 | 1.00 | 20,000 | 2.00 |" in md
    assert "failed: NotImplementedError: x" in md
