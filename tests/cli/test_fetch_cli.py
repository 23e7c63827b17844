"""``surge fetch`` in subprocesses against ``surge serve``: exact-once under SIGINT and kill -9, bad input."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from cli_procs import lines, wait_for

SURGE = [sys.executable, "-m", "surge"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc = subprocess.Popen([*SURGE, "serve", "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("http://")
    yield url
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)


def surge_fetch(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SURGE, "fetch", "--no-progress", *args], check=False, capture_output=True,
                          text=True, timeout=60, **kw)  # type: ignore[call-overload,no-any-return]


def check_exactly_once(out: Path, n: int) -> None:
    keys = Counter(orjson.loads(line)["key"] for line in out.read_bytes().splitlines())
    assert set(keys) == {str(i) for i in range(1, n + 1)}
    assert max(keys.values()) == 1


@pytest.mark.parametrize("args, message", [
    ([], "give URLs"),
    (["-c", "zero", "http://h/"], "-c"),
    (["-c", "0", "http://h/"], "-c must be"),
    (["-n", "0", "http://h/"], "-n must be"),
    (["-z", "soon", "http://h/"], "invalid duration"),
    (["-H", "nocolon", "http://h/"], "-H"),
    (["--retry-on", "teapot", "http://h/"], "--retry-on"),
    (["-i", "/nonexistent/urls.txt"], "cannot read"),
    (["-o", "/nonexistent/dir/out.jsonl", "http://h/"], "does not exist"),
    (["-o", "out.txt", "http://h/"], "unknown output format"),
    (["ftp://h/"], "scheme"),
    (["--max-body", "lots", "http://h/"], "invalid size"),
    (["-o", "-", "--json", "http://h/"], "stdout"),
    (["--bogus-flag", "http://h/"], "No such option"),
])
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    r = surge_fetch(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("surge: error:") and message in r.stderr


def test_load_mode_json_summary(server: str, tmp_path: Path) -> None:
    r = surge_fetch("-n", "300", "-c", "10", f"{server}/", "--json", "-o", str(tmp_path / "o.jsonl"))
    assert r.returncode == 0, r.stderr
    summary = orjson.loads(r.stdout)
    assert summary["requests"] == 300 and summary["status"] == {"200": 300}
    assert summary["concurrency"]["final"] == 10 and summary["connections"]["opened"] >= 1
    check_exactly_once(tmp_path / "o.jsonl", 300)


def test_list_from_stdin_to_csv_and_bad_lines_are_recorded(server: str, tmp_path: Path) -> None:
    good = [f"{server}/status/{200 + i % 3}\n" for i in range(20)]
    data = "".join(good[:10]) + "not a url\n" + "".join(good[10:]) + '{"url": 5}\n'
    r = surge_fetch("-i", "-", "-o", str(tmp_path / "o.csv"), input=data)
    # The run goes on past bad lines: each gets its row (error invalid_input), one line on stderr says so.
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "2 input lines were not a request" in r.stderr and "stdin:11" in r.stderr
    rows = (tmp_path / "o.csv").read_text().splitlines()
    assert len(rows) == 23  # header + 20 fetched + 2 invalid
    bad = sorted(row.split(",")[0] for row in rows[1:] if "invalid_input" in row)
    assert bad == ["11", "22"]


def test_other_command_on_same_state_is_refused(server: str, tmp_path: Path) -> None:
    st = str(tmp_path / "st")
    assert surge_fetch("-n", "5", f"{server}/", "--state", st).returncode == 0
    r = surge_fetch("-n", "6", f"{server}/", "--state", st)
    assert r.returncode == 2 and "another command" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _urls(server: str, tmp_path: Path, n: int, bad_every: int = 0) -> Path:
    # With bad_every, every bad_every-th line is not a URL: it must get its one row like the others.
    f = tmp_path / "urls.txt"
    f.write_text("".join(f"not a url {i}\n" if bad_every and i % bad_every == bad_every - 1
                         else f"{server}/delay/10?i={i}\n" for i in range(n)))
    return f


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_drains_then_resume_completes_exactly_once(server: str, tmp_path: Path, sig: int,
                                                          code: int) -> None:
    n = 1500
    urls, out, st = _urls(server, tmp_path, n), tmp_path / "out.jsonl", tmp_path / "st"
    cmd = [*SURGE, "fetch", "--no-progress", "-i", str(urls), "-o", str(out), "--state", str(st), "-c", "40",
           "--per-host", "40"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    wait_for(lambda: lines(out) >= 100, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert b"Resume with: surge fetch" in err and b"Traceback" not in err
    assert lines(out) < n
    before = lines(out)
    r = subprocess.run(cmd, check=False, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    check_exactly_once(out, n)
    assert f"{before} requests were done before".encode() in r.stderr
    again = subprocess.run(cmd, check=False, capture_output=True, timeout=60)  # a finished run: no requests
    assert again.returncode == 0 and lines(out) == n
    said = again.stderr.decode().strip()
    assert said == f"surge: nothing to do: all {n} requests already have their outcome (--state {st})"


def test_kill_9_at_many_points_never_loses_or_duplicates(server: str, tmp_path: Path) -> None:
    n = 2000
    urls, out, st = _urls(server, tmp_path, n, bad_every=97), tmp_path / "out.jsonl", tmp_path / "st"
    cmd = [*SURGE, "fetch", "--no-progress", "-i", str(urls), "-o", str(out), "--state", str(st), "-c", "50",
           "--per-host", "50"]
    rng = random.Random(4)
    kill_after = [0, 1, 150, 400, 900, 1300, 1700]  # rows in the output when the kill lands (0: random)
    kills = 0
    for k in kill_after:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if k == 0:
            time.sleep(rng.uniform(0.05, 0.4))  # a random moment: start-up, loading, first requests
        elif not wait_for(lambda k=k: lines(out) >= k, proc):  # type: ignore[misc]
            continue  # this run finished first
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        # Rows written but not yet recorded may be present now; the next run cuts them off and rewrites.
    assert kills >= 5
    r = subprocess.run(cmd, check=False, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    check_exactly_once(out, n)
    records = map(orjson.loads, out.read_bytes().splitlines())
    invalid = [o["key"] for o in records if o["error"] == "invalid_input"]
    assert sorted(map(int, invalid)) == list(range(97, n + 1, 97))


def test_kill_9_with_sqlite_output(server: str, tmp_path: Path) -> None:
    n = 800
    urls, out, st = _urls(server, tmp_path, n), tmp_path / "out.sqlite", tmp_path / "st"
    cmd = [*SURGE, "fetch", "--no-progress", "-i", str(urls), "-o", str(out), "--state", str(st), "-c", "30",
           "--per-host", "30"]

    def rows() -> int:
        try:
            return int(sqlite3.connect(out).execute("SELECT count(*) FROM outcomes").fetchone()[0])
        except sqlite3.Error:
            return 0

    for k in (50, 400):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_for(lambda k=k: rows() >= k, proc):  # type: ignore[misc]
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert subprocess.run(cmd, check=False, capture_output=True, timeout=60).returncode == 0
    keys = Counter(k for (k,) in sqlite3.connect(out).execute("SELECT key FROM outcomes"))
    assert set(keys) == {str(i) for i in range(1, n + 1)} and max(keys.values()) == 1
