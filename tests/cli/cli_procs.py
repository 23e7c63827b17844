"""Helpers for tests that run surge in subprocesses: watch their output files."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen[Any], limit: float = 20.0) -> bool:
    """Poll a condition on a subprocess's files (a child process has no event to await); False if the
    process ended first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("condition not reached")


def lines(path: Path) -> int:
    """Lines in ``path`` so far (0 before it exists)."""
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0
