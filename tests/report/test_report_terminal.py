"""Terminal rendering into a rich Console on a StringIO, as a terminal and as a plain stream."""

from __future__ import annotations

import asyncio
from io import StringIO

import pytest
from report_fakes import FakeOutcome, ManualClock
from rich.console import Console

from surge.report.stats import Stats, StatsSnapshot
from surge.report.terminal import (
    LiveProgress,
    format_bytes,
    format_duration,
    print_summary,
    render_progress,
    sparkline,
)


def console(*, tty: bool) -> tuple[Console, StringIO]:
    out = StringIO()
    return Console(file=out, force_terminal=tty, width=120, color_system="standard" if tty else None), out


def sample() -> StatsSnapshot:
    clock = ManualClock(0.0)
    stats = Stats(clock=clock, total=400, loop="uvloop")
    stats.set_concurrency(10)
    for i in range(200):
        clock.now = i * 0.02
        if i == 100:
            stats.set_concurrency(64)
        failed = i % 10 == 0
        stats.record(FakeOutcome(503 if failed else 200, ok=not failed, elapsed_ms=1.0 + i % 5, bytes=1000))
    stats.record(FakeOutcome(None, ok=False, error="connect", bytes=0))
    stats.connections(opened=4, reused=196, closed=1)
    stats.set_in_flight(12)
    clock.now = 4.0
    return stats.snapshot()


@pytest.mark.parametrize("tty", [True, False])
def test_summary_lists_every_figure(tty: bool) -> None:
    con, out = console(tty=tty)
    print_summary(sample(), console=con, title="surge fetch")
    text = out.getvalue()
    for needle in (
        "surge fetch",
        "201",
        "throughput",
        "50.2 req/s",
        "uvloop",
        "195.3 KiB",
        "retries",
        "4 opened, 196 reused (98.0%), 1 closed",
        "10→64, final 64",
        "503",
        "connect",
        "89.6%",  # share of 200s (180 of 201)
        "10.0%",  # share of 503s
        "0.5%",  # share of connect errors
        "p99.9",
        "5.00",  # max latency
    ):
        assert needle in text, needle
    assert ("\x1b[" in text) is tty  # colour only on a terminal


def test_summary_of_an_empty_run_does_not_fail() -> None:
    con, out = console(tty=False)
    print_summary(Stats(clock=ManualClock()).snapshot(), console=con)
    assert "requests" in out.getvalue()


def test_progress_line_fields() -> None:
    con, out = console(tty=False)
    con.print(render_progress(sample()))
    text = out.getvalue()
    for needle in ("201/400", "50 req/s", "p50 3.0 ms", "p99 5.0 ms", "errors 21", "in flight 12", "c=64"):
        assert needle in text, needle
    assert "ETA 4.0s" in text  # 199 left at 50.25 req/s


def test_helpers() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_duration(75.4) == "1m15s"
    assert format_duration(3 * 3600 + 120) == "3h02m"
    assert sparkline([]) == ""
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "███"  # measured from 0: steady, not a cliff
    assert len(sparkline(list(range(1000)), width=30)) == 30


@pytest.mark.looptime
async def test_live_progress_redraws_on_a_terminal() -> None:
    stats = Stats(total=10)
    con, out = console(tty=True)
    async with LiveProgress(stats, console=con) as progress:
        assert progress.enabled
        for _ in range(4):
            stats.record(FakeOutcome())
        await asyncio.sleep(1.0)
        assert "4/10" in out.getvalue()
    assert progress._task is None and progress._live is None


@pytest.mark.looptime
async def test_live_progress_is_silent_off_a_terminal() -> None:
    stats = Stats(total=10)
    con, out = console(tty=False)
    async with LiveProgress(stats, console=con) as progress:
        stats.record(FakeOutcome())
        await asyncio.sleep(1.0)
    assert not progress.enabled
    assert out.getvalue() == ""


@pytest.mark.looptime
async def test_cancelled_run_leaves_no_refresh_task() -> None:
    stats = Stats()
    con, _ = console(tty=True)
    progress = LiveProgress(stats, console=con)

    async def run() -> None:
        async with progress:
            await asyncio.sleep(100.0)

    task = asyncio.create_task(run())
    await asyncio.sleep(0.6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert progress._task is None and progress._live is None
    assert asyncio.all_tasks() == {asyncio.current_task()}
