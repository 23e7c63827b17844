"""`surge demo --quick`: prints the tables and writes a self-contained report that carries the chart data."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from surge.bench.demo import PLAYBOOK_CLAIMS
from surge.cli.main import cli
from surge.report.html import read_report_data

pytestmark = pytest.mark.slow


def test_demo_quick_writes_the_report_with_chart_data(tmp_path: Path) -> None:
    report = tmp_path / "surge-report.html"
    args = ["demo", "--quick", "-q", "--report", str(report)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for heading in ("Event loops (playbook §6)", "Crawler steps (playbook §5)", "Many requests (playbook §7)",
                    "The playbook's claims beside this run"):
        assert heading in result.stdout
    page = report.read_text()
    assert "<script src=" not in page  # nothing fetched from a network when viewed
    data = read_report_data(report)
    sections = {s["title"]: s for s in data["sections"]}
    kinds = {s["kind"] for s in data["sections"]}
    assert {"claims", "bar", "percentiles", "table"} <= kinds

    bars = sections["Many requests (§7): req/s per client and loop"]
    assert "playbook script" in bars["categories"]
    assert set(bars["series"]) >= {"asyncio", "uvloop"}
    runs = next(s for t, s in sections.items()
                if t.startswith("Many requests (§7):") and s["kind"] == "table")
    col = runs["columns"].index("req/s")
    measured = {round(r[col]) for r in runs["rows"]}
    plotted = {round(v) for vs in bars["series"].values() for v in vs if v is not None}
    assert plotted == measured  # the chart shows exactly the figures of the table

    claims = sections["The playbook's claims beside this run"]
    claimed = {row[1] for row in claims["rows"]}
    assert {PLAYBOOK_CLAIMS["tasks_10k_asyncio_s"], PLAYBOOK_CLAIMS["requests_100k_uvloop_rps"]} <= claimed
    assert claims["columns"][1] == "the playbook claims"
    assert all(row[2] is not None for row in claims["rows"] if row[0].startswith("§6"))

    latency = sections["Latency distribution per client (ms)"]
    assert latency["curves"], "at least one client reports latency percentiles"

    over_time = [s for s in data["sections"] if s["kind"] == "line" and "throughput over time" in s["title"]]
    (line,) = over_time
    xs, ys = line["lines"]["req/s"]["x"], line["lines"]["req/s"]["y"]
    assert xs and len(xs) == len(ys) and all(y is None or y >= 0 for y in ys)
