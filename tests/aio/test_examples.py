"""Every examples/ script runs as a user would run it and prints the facts its section is about."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.slow


def run_example(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def test_every_section_has_an_example() -> None:
    names = sorted(p.name for p in EXAMPLES.glob("s*.py"))
    assert names == [
        "s1_event_loop.py",
        "s2_tasks.py",
        "s3_concurrency.py",
        "s4_patterns.py",
        "s6_uvloop.py",
    ]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_s1_event_loop(loop: str) -> None:
    out = run_example("s1_event_loop.py", "--loop", loop)
    lines = out.splitlines()
    # Both start before either finishes, and the shorter one finishes first.
    assert lines.index("Task 2 started") < lines.index("Task 2 done") < lines.index("Task 1 done")
    assert lines.index("Task 1 started") < lines.index("Task 2 done")
    assert "results: ['Result 1', 'Result 2']" in lines
    assert f"event loop: {loop} (" in out
    assert "running: True, closed: False" in lines
    assert "tasks alive: 3" in lines
    assert "  - helper-0" in lines


def test_s2_tasks() -> None:
    out = run_example("s2_tasks.py")
    assert "results: ['Data from api1', 'Data from api2']" in out
    assert "task cancelled: True" in out
    assert "timed out after 0.02 s" in out
    assert "task 1: Task 1 success\ntask 2: failed: Task 2 failed\ntask 3: Task 3 success" in out
    assert "TaskGroup failed with 1 error(s): Task 2 failed" in out
    m = re.search(r"produced 40, consumed (\d+), pauses (\d+), max depth (\d+) \(high 8\)", out)
    assert m is not None
    consumed, pauses, depth = map(int, m.groups())
    assert consumed == 40 and pauses >= 2 and depth == 8
    assert "stop requested: intake closed, draining" in out
    m = re.search(r"signal: SIGTERM, units started (\d+), finished (\d+), forced: False", out)
    assert m is not None
    started, finished = map(int, m.groups())
    assert started == finished > 0  # every unit of work begun before the signal was finished
    assert out.rstrip().endswith("forced: True")


def test_s3_concurrency() -> None:
    out = run_example("s3_concurrency.py")
    assert "10 URLs, peak in flight 3," in out
    assert "10 URLs in input order: 'Data from https://example.com/page0' .." in out
    assert "page9', peak 3" in out
    assert "final value: 5" in out
    assert "before set: 0 released" in out and "after set: 3 released" in out
    per = r"consumer 0: (\d+), consumer 1: (\d+), consumer 2: (\d+)"
    m = re.search(rf"produced (\d+), consumed (\d+) \({per}\)", out)
    assert m is not None
    produced, consumed, *per_consumer = map(int, m.groups())
    assert produced == consumed == sum(per_consumer) == 25
    m = re.search(r"max depth (\d+), pauses (\d+)", out)
    assert m is not None and int(m.group(1)) <= 6


def test_s4_patterns() -> None:
    out = run_example("s4_patterns.py")
    assert "succeeded: 15/15" in out
    m = re.search(r"connections opened: (\d+), requests on reused connections: (\d+)", out)
    assert m is not None
    opened, reused = map(int, m.groups())
    assert opened <= 5 and opened + reused == 15
    assert "batches: 4 of sizes [5, 5, 5, 5]" in out
    assert "processed: 20 items, sample ['processed_item_0', 'processed_item_1', 'processed_item_2']" in out
    assert "fast-api: Success: fast-api" in out
    assert "slow-api: Success: slow-api" in out
    assert "  slow-api: try 3/3" in out
    assert "  fast-api: try 2/3" not in out
    assert "very-slow-api: failed after 3 tries (TimeoutError)" in out


def test_s6_uvloop() -> None:
    out = run_example("s6_uvloop.py", "-n", "500")
    assert "=== asyncio ===" in out and "=== uvloop ===" in out
    assert out.count("  500 tasks completed") == 2
    assert re.search(r"uvloop vs asyncio: \d+\.\d\dx", out)
