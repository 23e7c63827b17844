"""The real ``surge fetch`` against the hostile server, each run in a network namespace of its own.

Inside ``unshare --net`` only the loopback interface exists: the hostile server and surge talk over it, and a
DNS query or any other traffic has no route off the machine. Each input line is labelled with the outcome it
must end in (``LINES``); the tests compare the records with that table. ``PENDING`` names the lines whose
expectation surge does not meet yet (none now); their checks are left out of the runs' tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hostile
import pytest

BOUND = 60.0  # wall-clock limit of one run: the "nothing hangs" check, not a speed assertion
BASE_PORT = 20000  # a fresh namespace has every port free
SURGE = str(Path(sys.executable).with_name("surge"))
HOSTILE = str(Path(hostile.__file__).resolve())

COMMON = ["--save-body", "--save-headers", "--retries", "1", "--read-timeout", "2s", "--connect-timeout",
          "2s", "-t", "5s", "--max-body", "1MB", "--max-redirects", "5", "--no-progress", "--json"]


@dataclass(frozen=True)
class Expect:
    """The outcome a line must end in. ``attempts`` None: not checked."""

    error: str | None
    status: int | None = None
    attempts: int | None = 1


OK = Expect(None, 200)
INVALID = Expect("invalid_input", None, 0)

# case -> its expected outcome, decided from README, surge/errors.py and docs/robustness.md.
EXPECT: dict[str, Expect] = {
    "ok": OK,
    "slow_drip": Expect("timeout_total", None, 2),  # -t 5s ends it; retried once (timeouts are retryable)
    "silence": Expect("timeout_read", None, 2),
    "reset_mid_body": Expect("protocol"),
    "truncated_chunked": Expect("protocol"),
    "short_body": Expect("protocol"),
    "keepalive_close": OK,  # the stale connection is retried transparently: one attempt
    "huge_body": Expect("body_too_large"),
    "endless": Expect("body_too_large"),
    "gzip_bomb": Expect("body_too_large"),
    "br_bomb": Expect("body_too_large"),
    "zstd_bomb": Expect("body_too_large"),
    "stacked_codings": Expect("protocol"),  # more codings than any real server stacks: refused, not decoded
    "redirect_loop": Expect("too_many_redirects"),
    "redirect_hops": Expect("too_many_redirects"),
    "redirect_file": Expect("protocol"),
    "redirect_ftp": Expect("protocol"),
    "bad_status": Expect("protocol"),
    "icy": Expect("protocol"),
    "big_head": Expect("protocol"),
    "many_headers": Expect("protocol"),
    "nul_header": Expect("protocol"),
    "dup_content_length": Expect("protocol"),
    "non_utf8": OK,
    "non_utf8_text": OK,
    "ra_seconds": Expect(None, 200, 2),
    "ra_date": Expect(None, 200, 2),
    "ra_absurd": Expect(None, 429, 1),  # longer than --max-retry-after: not retried
    "ra_garbage": Expect(None, 200, 2),  # unreadable Retry-After: the usual backoff, then the retry succeeds
    "ra_negative": Expect(None, 200, 2),
    "ra_503": Expect(None, 200, 2),
    "ra_ten": Expect(None, 429, 1),  # run with --max-retry-after 5s only
    "long_url": INVALID,  # a 100 KB URL
    "tls_ok": OK,
    "tls_self_signed": Expect("tls"),
    "tls_wrong_host": Expect("tls"),
    "tls_expired": Expect("tls"),
    "tls_stall": Expect("timeout_connect", None, 2),
    "dns": Expect("dns"),
}

SUFFIX = {"redirect_hops": "?n=20", "long_url": "/" + "a" * 100_000}

# Input lines that are not a request (label -> line).
BAD_LINES: dict[str, str] = {
    "bad_scheme": "htp://x/",
    "no_host": "http://",
    "open_bracket": "http://[::1",
    "port_too_big": "http://127.0.0.1:99999/",
    "no_scheme": "://nohost",
    "port_zero": "http://127.0.0.1:0/",
    "json_no_url": '{"method": "GET"}',
    "json_ftp": '{"url": "ftp://127.0.0.1/x"}',
    # Hosts no URL parser accepts (WHATWG: forbidden host code points, junk after an IPv6 literal).
    "space_in_host": "http://a b/",
    "nul_in_host": "http://a\x00b/",
    "percent_in_host": "http://%zz/",
    "junk_after_ipv6": "http://[::1]x/",
}

PENDING: set[str] = set()  # every case is handled now (six stacked codings and 500 fields were the last)


@dataclass(frozen=True)
class Line:
    label: str
    text: str
    expect: Expect


def case_lines(ports: dict[str, int], cases: list[str]) -> list[Line]:
    return [Line(c, hostile.url(c, ports, SUFFIX.get(c, "")), EXPECT[c]) for c in cases]


def full_lines(ports: dict[str, int], cases: list[str]) -> list[Line]:
    """Every case's URL, a second URL for ``ok`` and ``keepalive_close`` (so a connection is reused), then
    the bad lines."""
    out = case_lines(ports, cases)
    out.append(Line("ok#2", hostile.url("ok", ports, "?i=2"), OK))
    out.append(Line("keepalive_close#2", hostile.url("keepalive_close", ports, "?i=2"), OK))
    out += [Line(label, text, INVALID) for label, text in BAD_LINES.items()]
    return out


def absurd_lines(ports: dict[str, int], cases: list[str]) -> list[Line]:
    """An absurd Retry-After, then healthy URLs on the same host."""
    out = case_lines(ports, ["ra_absurd"])
    out += [Line(f"after_absurd#{i}", hostile.url("ok", ports, f"?after=absurd&i={i}"), OK) for i in range(3)]
    return out


@dataclass(frozen=True)
class Variant:
    name: str
    per_case: bool
    cases: list[str]
    flags: list[str]
    bound: float = BOUND
    make_lines: Callable[[dict[str, int], list[str]], list[Line]] = full_lines

    def lines(self) -> list[Line]:
        return self.make_lines(hostile.layout(BASE_PORT, per_case=self.per_case), self.cases)


ALL = [c.name for c in hostile.CASES]
# (1) every case on one host:port (TLS cases need listeners of their own). Without ra_ten (a 10 s pause
# under the default cap) and ra_absurd, which pauses its host for the cap: ABSURD_CAPPED checks that.
ONE_PORT = Variant("one_port", False, [c for c in ALL if c not in ("ra_ten", "ra_absurd")], COMMON)
# (2) one port per case; --per-host 1, so the second URL on a host reuses the first one's connection.
PER_PORT = Variant("per_port", True, ALL, [*COMMON, "--max-retry-after", "5s", "--per-host", "1", "-c", "50"])
# An absurd Retry-After and healthy URLs after it on its host, one request at a time.
ABSURD_CAPPED = Variant("absurd_capped", False, ["ra_absurd"],
                        [*COMMON, "--max-retry-after", "2s", "-c", "1"], 30.0, absurd_lines)


@dataclass
class Run:
    variant: Variant
    lines: list[Line]
    returncode: int | None  # None: killed at the bound
    seconds: float
    records: list[dict[str, Any]]
    server: dict[str, Any]
    stdout: str
    stderr: str

    def record(self, label: str) -> dict[str, Any]:
        key = str(next(i for i, line in enumerate(self.lines, 1) if line.label == label))
        found = [r for r in self.records if r["key"] == key]
        assert len(found) == 1, (label, found)
        return found[0]

    def target(self, name: str) -> str:
        return hostile.BY_NAME[name].path + SUFFIX.get(name, "")


def can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "--net", "true"], check=False, capture_output=True, timeout=10)
    return probe.returncode == 0


class Launch:
    """A run started in the background (runs are mostly waiting, so several go at once)."""

    def __init__(self, variant: Variant, workdir: Path) -> None:
        self.variant = variant
        self.dir = workdir / variant.name
        self.dir.mkdir(parents=True)
        self.lines = variant.lines()
        (self.dir / "urls.txt").write_bytes(b"".join(line.text.encode() + b"\n" for line in self.lines))
        ca = self.dir / "ca.pem"
        server = [sys.executable, HOSTILE, "--port", str(BASE_PORT), "--ca-file", str(ca),
                  "--stats", str(self.dir / "server.json")]
        if variant.per_case:
            server.append("--ports-per-case")
        fetch = [SURGE, "fetch", "-i", str(self.dir / "urls.txt"), "-o", str(self.dir / "out.jsonl"),
                 *variant.flags]
        cmd = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *server, "--", *fetch]
        # surge verifies certificates against the system store; SSL_CERT_FILE makes that the test CA.
        env = {**os.environ, "SSL_CERT_FILE": str(ca), "NO_COLOR": "1"}
        self.started = time.monotonic()
        self.out = (self.dir / "stdout").open("wb")
        self.err = (self.dir / "stderr").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, env=env, start_new_session=True)

    def wait(self) -> Run:
        try:
            left = max(0.0, self.started + self.variant.bound - time.monotonic())
            code: int | None = self.proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this launch started: server and surge
            self.proc.wait()
            code = None
        seconds = time.monotonic() - self.started
        self.out.close()
        self.err.close()
        out = self.dir / "out.jsonl"
        records = [json.loads(line) for line in out.read_bytes().splitlines()] if out.exists() else []
        stats = self.dir / "server.json"
        server = json.loads(stats.read_text()) if stats.exists() else {}
        text = {name: (self.dir / name).read_text(errors="replace") for name in ("stdout", "stderr")}
        return Run(self.variant, self.lines, code, seconds, records, server, text["stdout"], text["stderr"])


def launch(variants: list[Variant], workdir: Path) -> dict[str, Run]:
    """Make the runs (all at once: they mostly wait on timers) and wait for them."""
    if not can_unshare():
        pytest.skip("needs unshare --net (root or user namespaces) and ip")
    started = [Launch(v, workdir) for v in variants]
    return {launched.variant.name: launched.wait() for launched in started}


# -- the checks both test files make ---------------------------------------------------------------------


RUNS = [ONE_PORT, PER_PORT]


def outcome_params(pending: bool) -> Iterator[Any]:
    """(variant name, line label) of each line of RUNS, the pending ones or the others."""
    for v in RUNS:
        for line in v.lines():
            if (line.label.split("#")[0] in PENDING) == pending:
                yield pytest.param(v.name, line.label, id=f"{v.name}-{line.label}")


def check_outcome(run: Run, label: str) -> None:
    line = next(x for x in run.lines if x.label == label)
    r = run.record(label)
    want = line.expect
    seen = {"error": r["error"], "status": r["status"], "attempts": r["attempts"]}
    expected = {"error": want.error, "status": want.status,
                "attempts": r["attempts"] if want.attempts is None else want.attempts}
    assert seen == expected, (label, r)
    assert r["url"] == line.text[:2048]
    assert r["ok"] is (want.status is not None and want.status < 400)


def check_ends_as_documented(run: Run) -> None:
    """Exit 0 within the bound, exactly one record per input line, a complete JSON summary."""
    assert run.returncode == 0, (run.returncode, run.seconds, run.stderr[-2000:])
    keys = [r["key"] for r in run.records]
    assert sorted(keys, key=int) == [str(i) for i in range(1, len(run.lines) + 1)]
    assert "Traceback" not in run.stderr
    summary = json.loads(run.stdout.splitlines()[-1])  # the first line is the server's ports
    assert summary["requests"] == len(run.lines)
    assert summary["complete"] is True
