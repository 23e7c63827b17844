"""``surge crawl`` in subprocesses against ``surge serve``: a whole site, bad flags, kill -9 and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from cli_procs import lines, wait_for

from surge.server.site import site_reachable

SURGE = [sys.executable, "-m", "surge"]
PAGES, LINKS, SEED = 2000, 6, 3
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    proc = subprocess.Popen([*SURGE, "serve", "--port", "0", "--site-pages", str(PAGES), "--site-links",
                             str(LINKS), "--seed", str(SEED)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.startswith("http://")
    yield url
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)


def surge_crawl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SURGE, "crawl", "--no-progress", *args], check=False, capture_output=True,
                          text=True, timeout=120)


def rows(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize("args, message", [
    ([], "give seed URLs"),
    (["-d", "deep", "http://h/"], "-d: expected a number or all"),
    (["-d", "-1", "http://h/"], "depth must be >= 0"),
    (["--max-pages", "0", "http://h/"], "max-pages must be >= 1"),
    (["--include", "(", "http://h/"], "invalid regular expression"),
    (["--scope", "planet", "http://h/"], "--scope"),
    (["mailto:a@b"], "not an http(s) URL"),
    (["-i", "/nonexistent/seeds.txt"], "cannot read"),
    (["-o", "out.txt", "http://h/"], "unknown output format"),
])
def test_bad_input_is_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    r = subprocess.run([*SURGE, "crawl", *args], check=False, capture_output=True, text=True, timeout=30,
                       cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_whole_site_to_jsonl_with_json_summary(server: str, tmp_path: Path) -> None:
    out = tmp_path / "pages.jsonl"
    r = surge_crawl(f"{server}/site/", "-d", "all", "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    got = rows(out)
    pages = [g for g in got if g["error"] is None]
    assert len(pages) == site_reachable(PAGES, LINKS, SEED)
    assert {g["error"] for g in got} <= {None, "robots"}
    summary = orjson.loads(r.stdout)
    crawl = summary["crawl"]
    assert crawl["admitted"] == len(got) and crawl["robots"]["fetched"] == 1
    assert crawl["refused"]["out_of_scope"] > 0 and crawl["refused"]["duplicate"] > 0
    assert summary["requests"] == len(got)


def test_kill_9_then_rerun_crawls_every_page_once(server: str, tmp_path: Path) -> None:
    full = tmp_path / "full.jsonl"
    assert surge_crawl(f"{server}/site/", "-d", "all", "-o", str(full)).returncode == 0
    expected = {g["url"] for g in rows(full)}
    out, st = tmp_path / "out.jsonl", tmp_path / "st"
    cmd = [*SURGE, "crawl", "--no-progress", f"{server}/site/", "-d", "all", "-c", "8", "-o", str(out),
           "--state", str(st)]
    killed = 0
    for threshold in (50, 400, 900):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_for(lambda k=threshold: lines(out) >= k, proc):  # type: ignore[misc]
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait(timeout=10)
    assert killed >= 2  # the kills landed mid-crawl
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = rows(out)
    assert Counter(g["url"] for g in got).most_common(1)[0][1] == 1
    assert Counter(g["key"] for g in got).most_common(1)[0][1] == 1
    assert {g["url"] for g in got} == expected


def test_ctrl_c_drains_says_how_to_resume_and_the_rerun_finishes(server: str, tmp_path: Path) -> None:
    out, st = tmp_path / "out.jsonl", tmp_path / "st"
    cmd = [*SURGE, "crawl", "--no-progress", f"{server}/site/", "-d", "all", "-c", "4", "--per-host", "4",
           "-o", str(out), "--state", str(st)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert wait_for(lambda: lines(out) >= 100, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"Resume with: surge crawl" in err and b"Traceback" not in err
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "requests were done before" in r.stderr
    got = rows(out)
    assert Counter(g["url"] for g in got).most_common(1)[0][1] == 1
    assert len([g for g in got if g["error"] is None]) == site_reachable(PAGES, LINKS, SEED)
