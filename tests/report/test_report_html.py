"""HTML reports: one offline file whose JSON data block reads back the numbers given."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from report_fakes import FakeOutcome, ManualClock

from surge.report.html import (
    BarChart,
    Claim,
    ClaimsTable,
    LineChart,
    Paragraph,
    PercentileChart,
    Table,
    fetch_report,
    read_report_data,
    write_report,
)
from surge.report.stats import Stats, StatsSnapshot

SCRIPT_SRC = re.compile(r"<script[^>]*\bsrc\s*=", re.IGNORECASE)
REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


INLINE_SCRIPT = re.compile(r"<script[^>]*>.*?</script>", re.DOTALL)


def assert_self_contained(page: str) -> None:
    assert not SCRIPT_SRC.search(page), "a script is loaded from elsewhere"
    # Inline plotly.js mentions URLs in strings (links it never loads); the markup must fetch nothing.
    assert not REMOTE.search(INLINE_SCRIPT.sub("", page)), "something is fetched over the network"
    assert "<link" not in page.lower()


def demo_sections() -> list[object]:
    return [
        Paragraph("Measured on this machine.\n\nSecond paragraph </script> <b>escaped</b>"),
        Table(
            "runs", ["client", "loop", "req/s"], [["surge", "uvloop", 61234.5], ["aiohttp", "asyncio", 7001]]
        ),
        BarChart(
            "req/s per client",
            ["surge", "aiohttp"],
            {"asyncio": [28000.0, 7001.0], "uvloop": [61234.5, 9100]},
        ),
        LineChart("throughput over time", {"surge": ([0.0, 1.0, 2.0], [100.0, None, 300.0])}),
        PercentileChart("latency", {"surge": [(50.0, 1.25), (99.0, 4.5), (99.9, 9.75), (100.0, 12.0)]}),
        ClaimsTable("claims", [Claim("100,000 requests on uvloop", "85 s", 3.2, "playbook §7")]),
    ]


def test_composed_report_is_self_contained_and_holds_the_data(tmp_path: Path) -> None:
    path = tmp_path / "surge-report.html"
    write_report(path, title="surge demo", sections=demo_sections(), meta={"machine": {"nproc": 2}})  # type: ignore[arg-type]
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert page.count("Plotly.newPlot") == 3  # one figure per chart (bar, line, percentiles)
    assert page.count("<script type='text/javascript'>") == 1  # plotly.js inlined once
    assert "&lt;b&gt;escaped&lt;/b&gt;" in page
    data = read_report_data(path)
    assert data["title"] == "surge demo" and data["charts"] is True
    assert data["meta"] == {"machine": {"nproc": 2}}
    kinds = [s["kind"] for s in data["sections"]]
    assert kinds == ["paragraph", "table", "bar", "line", "percentiles", "claims"]
    para, table, bar, line, pct, claims = data["sections"]
    assert "</script>" in para["text"]  # survived the escaping inside the data block
    assert table["rows"][0] == ["surge", "uvloop", 61234.5]
    assert bar["series"]["uvloop"] == [61234.5, 9100]
    assert line["lines"]["surge"] == {"x": [0.0, 1.0, 2.0], "y": [100.0, None, 300.0]}
    assert pct["curves"]["surge"][2] == [99.9, 9.75]
    assert claims["rows"] == [["100,000 requests on uvloop", "85 s", 3.2, "playbook §7"]]
    assert not (tmp_path / "surge-report.html.tmp").exists()


def run_snapshot() -> StatsSnapshot:
    clock = ManualClock(0.0)
    stats = Stats(clock=clock, loop="uvloop")
    stats.set_concurrency(20)
    for i in range(300):
        clock.now = i * 0.01
        if i == 150:
            stats.set_concurrency(35)
        stats.record(FakeOutcome(429 if i % 50 == 0 else 200, ok=i % 50 != 0, elapsed_ms=2.0 + i % 3))
    stats.record(FakeOutcome(None, ok=False, error="timeout_read", elapsed_ms=30_000.0))
    stats.connections(5, 295, 0)
    clock.now = 3.0
    stats.finish()
    return stats.snapshot()


def test_fetch_report_has_summary_series_and_breakdown(tmp_path: Path) -> None:
    path = tmp_path / "run.html"
    snap = run_snapshot()
    fetch_report(path, snap, command="surge fetch -n 300 http://127.0.0.1:1/")
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    data = read_report_data(path)
    summary = data["meta"]["summary"]
    assert summary["requests"] == 301 and summary["ok"] == 294 and summary["rps"] == pytest.approx(100.3)
    assert summary["status"] == {"200": 294, "429": 6}
    assert summary["command"] == "surge fetch -n 300 http://127.0.0.1:1/"
    by_title = {s["title"]: s for s in data["sections"]}
    throughput = by_title["throughput over time"]["lines"]["req/s"]
    assert throughput["x"] == [0.0, 1.0, 2.0] and throughput["y"] == [100.0, 100.0, 101.0]
    assert by_title["latency over time"]["lines"]["p99"]["y"] == [4.0, 4.0, 4.0]
    assert by_title["responses by status"]["categories"] == ["200", "429"]
    assert by_title["responses by status"]["series"]["count"] == [294, 6]
    assert by_title["failures by error class"]["categories"] == ["timeout_read"]
    assert by_title["concurrency limit"]["lines"]["limit"]["y"] == [20.0, 35.0]
    curve = dict(map(tuple, by_title["latency distribution"]["curves"]["all responses"]))
    # the timeout got no response, so its 30 s is not a latency
    assert curve[50.0] == pytest.approx(3.0, rel=1e-3) and curve[100.0] == 4.0


def test_without_plotly_the_report_falls_back_to_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)
    path = tmp_path / "plain.html"
    fetch_report(path, run_snapshot(), command="surge fetch", extra_sections=demo_sections())  # type: ignore[arg-type]
    page = path.read_text(encoding="utf-8")
    assert "Plotly" not in page
    assert "install plotly" in page
    assert "<td>surge</td><td>28,000</td><td>61,234</td>" in page  # the bar chart as a table
    data = read_report_data(path)
    assert data["charts"] is False
    assert data["meta"]["summary"]["requests"] == 301
