"""Each benchmark in a tiny configuration, through the CLI with --json: shape and sanity of its report."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest
from click.testing import CliRunner

from surge.aio.loops import available_loops
from surge.bench.targets import tool_available
from surge.cli.main import cli

pytestmark = pytest.mark.slow

FETCH_LANDED = importlib.util.find_spec("surge.cli.fetch") is not None


def run_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_bench_loops_runs_every_workload_on_every_installed_loop() -> None:
    data = run_json("bench", "loops", "--tasks", "200", "--ops", "200", "--echo", "20", "--repeat", "1")
    assert data["loops"] == [lp for lp in ("asyncio", "uvloop", "rloop") if lp in available_loops()]
    rows = data["results"]
    workloads = {r["workload"] for r in rows}
    assert workloads == {"gather_sleep", "task_create_await", "call_soon_chain", "future_chain",
                         "tcp_echo_protocol", "tcp_echo_streams"}
    assert len(rows) == len(workloads) * len(data["loops"])
    base = {r["workload"]: r["elapsed_s"] for r in rows if r["loop"] == "asyncio"}
    for r in rows:
        if r["loop"] in ("asyncio", "uvloop"):
            assert r["error"] is None, r
        if r["error"] is None:
            assert r["ops_per_s"] == pytest.approx(r["n"] / r["elapsed_s"])
            assert r["ratio_to_asyncio"] == pytest.approx(base[r["workload"]] / r["elapsed_s"])
    assert data["machine"]["nproc"] >= 1


def test_bench_steps_every_step_fetches_every_url() -> None:
    data = run_json("bench", "steps", "-n", "5", "--delay-ms", "10")
    steps = {s["step"]: s for s in data["steps"]}
    expected = ["Step 1: synchronous (requests)", "Step 2: basic asyncio gather (aiohttp)",
                "Step 3: OptimizedCrawler (aiohttp)"] + (["surge fetch"] if FETCH_LANDED else [])
    assert list(steps)[: len(expected)] == expected
    first = steps[expected[0]]["elapsed_s"]
    for s in steps.values():
        assert (s["requests"], s["ok"]) == (5, 5), s
        assert s["speedup_vs_step1"] == pytest.approx(first / s["elapsed_s"])
    # One request at a time cannot beat the server's delay summed over the URLs.
    assert steps[expected[0]]["elapsed_s"] >= 5 * 0.010


def test_bench_http_every_client_completes_its_requests() -> None:
    data = run_json("bench", "http", "-n", "2000", "--wrk-duration", "1")
    runs = data["runs"]
    names = {(r["client"].split(" ")[0], r["loop"]) for r in runs}
    assert {("playbook", "asyncio"), ("playbook", "uvloop")} <= names
    if FETCH_LANDED:
        assert {("surge", "asyncio"), ("surge", "uvloop")} <= names
    for tool in ("wrk", "hey"):
        assert ((tool, "native") in names) == tool_available(tool)
    fastest = max(r["rps"] for r in runs)
    for r in runs:
        if r["client"] != "wrk":  # wrk sends for a duration, not a count
            assert r["requests"] == 2000, r
        assert r["ok"] == r["requests"] and r["success_pct"] == 100.0, r
        # surge fetch reports its own rps from unrounded times; the others' is requests / elapsed here.
        assert r["rps"] == pytest.approx(r["requests"] / r["elapsed_s"], rel=0.02)
        assert r["ratio"] == pytest.approx(r["rps"] / fastest)
        assert r["client_cpu_pct"] > 0 and r["server_cpu_pct"] is not None
        assert r["limited_by"]
    assert max(r["ratio"] for r in runs) == pytest.approx(1.0)
    assert data["target_kind"] == "surge serve"


@pytest.mark.skipif(not (tool_available("nginx") and tool_available("hey")), reason="nginx or hey missing")
def test_bench_http_against_pinned_nginx() -> None:
    data = run_json("bench", "http", "-n", "1000", "--target", "nginx", "--client", "hey", "-q")
    (run,) = data["runs"]
    assert data["target_kind"] == "nginx"
    assert (run["requests"], run["ok"]) == (1000, 1000)


@pytest.mark.parametrize("args", [
    ["bench", "http", "--target", "ftp://example"],
    ["bench", "loops", "--loop", "tokio"],
    ["bench", "loops", "--tasks", "ten"],
    ["bench", "http", "-n", "0"],
])
def test_bad_input_is_one_line_and_nonzero_exit(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.strip().count("\n") <= 3  # click's usage lines at most, then the error


def test_bench_crawl_both_crawlers_reach_the_whole_site() -> None:
    # benchmarks/bench_crawl.py in its smallest shape: surge crawl (with and without --state) and the
    # Scrapy peer each get a 200 from exactly the pages the site's graph says are reachable.
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "benchmarks" / "bench_crawl.py"
    r = subprocess.run([sys.executable, str(script), "--pages", "300", "--links", "6", "--rounds", "1",
                        "--json"], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-1000:]
    data = json.loads(r.stdout)
    from surge.server.site import site_reachable

    assert data["expected"] == site_reachable(300, 6) and data["agree"] is True
    (only,) = data["runs"]  # one round
    assert {name: run["pages_200"] for name, run in only.items()} == {
        "surge": data["expected"], "surge_state": data["expected"], "scrapy": data["expected"]}
