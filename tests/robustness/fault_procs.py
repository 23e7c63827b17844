"""Helpers for the process-fault tests: a ``surge serve`` process, URL files, small file systems, and counting
the records of an output (by key) and of a --state database."""

from __future__ import annotations

import contextlib
import csv
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

# The subprocess helpers are shared with tests/cli; that folder is on sys.path only when pytest collected it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
from cli_procs import lines, wait_for

__all__ = ["SURGE", "done_in_state", "lines", "output_keys", "serve", "small_fs", "url_file", "wait_for"]

SURGE = [sys.executable, "-m", "surge"]


@contextlib.contextmanager
def serve(*args: str) -> Iterator[str]:
    """A ``surge serve`` process on a free port (no limits of the test's surge processes apply to it)."""
    proc = subprocess.Popen([*SURGE, "serve", "--port", "0", *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://"), url
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def url_file(path: Path, server: str, n: int, endpoint: str = "bytes/10") -> Path:
    """``n`` distinct URLs of ``endpoint``, one a line; record i (from 1) has key ``str(i)``."""
    sep = "&" if "?" in endpoint else "?"
    path.write_text("".join(f"{server}/{endpoint}{sep}i={i}\n" for i in range(n)))
    return path


def output_keys(path: Path) -> Counter[str]:
    """How many records each key has in a .jsonl, .csv or .sqlite output (an absent file has none)."""
    if not path.exists():
        return Counter()
    if path.suffix == ".sqlite":
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return Counter(k for (k,) in db.execute("SELECT key FROM outcomes"))
        finally:
            db.close()
    if path.suffix == ".csv":
        with path.open(newline="") as f:
            return Counter(row["key"] for row in csv.DictReader(f))
    return Counter(orjson.loads(line)["key"] for line in path.read_bytes().splitlines())


def done_in_state(state: Path) -> tuple[dict[str, int], int, int]:
    """``(key -> seq of its outcome batch, exported_seq, exported_pos)`` from a --state database."""
    db = sqlite3.connect(f"file:{state / 'state.db'}?mode=ro", uri=True)
    try:
        done = {orjson.loads(line)["key"]: seq
                for seq, data in db.execute("SELECT seq, data FROM outcomes") for line in data.splitlines()}
        meta = dict(db.execute("SELECT k, v FROM meta WHERE k IN ('exported_seq', 'exported_pos')"))
    finally:
        db.close()
    return done, int(meta["exported_seq"]), int(meta["exported_pos"])


class SmallFS:
    """A tmpfs mounted at ``path``; ``resize`` changes its size keeping its files."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True,
                       capture_output=True)


@contextlib.contextmanager
def small_fs(path: Path, size: str) -> Iterator[SmallFS]:
    """Mount a tmpfs of ``size`` at ``path`` (created), unmounted at the end; skips the test where mounting
    is not permitted (not root, no CAP_SYS_ADMIN, no mount command)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           check=False, capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command: a small file system is needed to fill the disk")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root or CAP_SYS_ADMIN): {r.stderr.strip()}")
    try:
        yield SmallFS(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
