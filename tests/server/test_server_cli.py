"""``surge serve`` as a process: prints its URL first, answers, exits 0 on SIGTERM/SIGINT, one-line errors."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from surge.server.routes import ROOT_BODY

pytestmark = pytest.mark.slow


@contextmanager
def _serve(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen([sys.executable, "-m", "surge", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def _get(url: str, path: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_url_answers_and_exits_cleanly(sig: signal.Signals) -> None:
    with _serve("--port", "0", "--site-pages", "50", "--site-links", "3", "--seed", "7") as (proc, url):
        assert url.startswith("http://127.0.0.1:")
        assert _get(url, "/") == (200, ROOT_BODY)
        status, body = _get(url, "/site/stats")
        assert status == 200 and b'"pages":50' in body and b'"seed":7' in body
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "Traceback" not in err


def test_serve_workers_share_the_port() -> None:
    with _serve("--workers", "2", "--loop", "asyncio") as (proc, url):
        assert url.startswith("http://127.0.0.1:")
        for _ in range(10):
            assert _get(url, "/bytes/3") == (200, b"abc")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "Traceback" not in err


def test_port_in_use_is_one_line_and_nonzero() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for extra in ([], ["--workers", "2"]):
            done = subprocess.run([sys.executable, "-m", "surge", "serve", "--port", str(port), *extra],
                                  check=False, capture_output=True, text=True, timeout=20)
            assert done.returncode != 0
            assert done.stdout == ""
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "address already in use" in lines[0], done.stderr


def test_bad_host_and_bad_port() -> None:
    for args in (["--host", "no-such-host.invalid"], ["--port", "70000"], ["--loop", "nope"]):
        done = subprocess.run([sys.executable, "-m", "surge", "serve", *args], check=False,
                              capture_output=True, text=True, timeout=20)
        assert done.returncode != 0, args
        assert "Traceback" not in done.stderr
        assert done.stdout == ""
