"""A network namespace with a "public" internet and a "private" network on one loopback, for the SSRF tests.

Run as root in a namespace of its own (``run()`` below starts it)::

    unshare --net --mount python ssrf_netns.py WORKDIR -- COMMAND...

Inside, lo is up with 1.2.3.4, 5.6.7.8 and 169.254.169.254 added, and /etc/hosts is bind-mounted so that
``internal.test`` is 127.0.0.1 and ``public.test`` is 5.6.7.8 (outside the namespace nothing changes).
Servers:

- ``redirector``, http://1.2.3.4/ (public): ``/to/NAME/HOW`` answers 302 to ``target(NAME, HOW)``,
  ``/go?u=URL`` 302 to URL, ``/site/`` an HTML page linking to every target directly and through ``/to/``;
- ``public``, http://5.6.7.8/ (public);
- ``private``, port 8080 of every address (127.0.0.1, ::1, 169.254.169.254...: it stands for everything on
  the private side); it has ``/go?u=URL`` too, for redirects that start there.

Any other path answers 200 with the server's name, over keep-alive HTTP/1.1. Every request a server gets is a
line of WORKDIR/requests.jsonl: ``{"server", "path"}``. COMMAND then runs in WORKDIR; its exit status is this
script's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Where each redirect or link leads: the private ones must be refused from a public page, the last two not.
TARGETS = {
    "loopback": "http://127.0.0.1:8080",
    "loopback-v6": "http://[::1]:8080",
    "decimal": "http://2130706433:8080",
    "hex": "http://0x7f.1:8080",
    "octal": "http://0177.0.0.1:8080",
    "mapped": "http://[::ffff:127.0.0.1]:8080",
    "mapped-hex": "http://[::ffff:7f00:1]:8080",
    "metadata": "http://169.254.169.254:8080",
    "name": "http://internal.test:8080",
    "public": "http://5.6.7.8",
    "public-name": "http://public.test",
}
PUBLIC_TARGETS = ("public", "public-name")
PRIVATE_TARGETS = tuple(name for name in TARGETS if name not in PUBLIC_TARGETS)
REDIRECTOR = "http://1.2.3.4"
HOSTS = "127.0.0.1 localhost\n::1 localhost\n127.0.0.1 internal.test\n5.6.7.8 public.test\n"


def target(name: str, how: str) -> str:
    """The URL ``name`` stands for, with a path saying how it was reached (``link``, ``redirect``...)."""
    return f"{TARGETS[name]}/{name}/{how}"


def site_page() -> bytes:
    links = [target(name, "link") for name in TARGETS] + [f"/to/{name}/redirect" for name in TARGETS]
    return ("<html><body>" + "".join(f'<a href="{u}">{u}</a>' for u in links) + "</body></html>").encode()


def run(workdir: Path, command: list[str], *, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``command`` in a fresh namespace with this script's servers (from pytest: skips without unshare)."""
    import pytest

    if not can_unshare():
        pytest.skip("needs unshare --net --mount (root) and ip")
    return subprocess.run(["unshare", "--net", "--mount", sys.executable, __file__, str(workdir), "--",
                           *command], capture_output=True, text=True, timeout=timeout, check=False)


def can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "--net", "--mount", "true"], check=False, capture_output=True,
                           timeout=10)
    return probe.returncode == 0


def requests_seen(workdir: Path) -> list[dict[str, str]]:
    """Every request the servers got, in order."""
    log = workdir / "requests.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def records(path: Path) -> dict[str, dict[str, Any]]:
    """The JSON-lines output of a run, by URL."""
    return {r["url"]: r for r in map(json.loads, path.read_text().splitlines())}


# -- inside the namespace ---------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.log(self.path)
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        if parts.path == "/go":
            self._answer(302, b"", location=parse_qs(parts.query)["u"][0])
        elif self.server.name == "redirector" and segments[0] == "to" and len(segments) == 3:
            self._answer(302, b"", location=target(segments[1], segments[2]))
        elif self.server.name == "redirector" and parts.path == "/site/":
            self._answer(200, site_page(), content_type="text/html")
        elif self.server.name == "redirector" and parts.path == "/robots.txt":
            self._answer(404, b"")
        else:
            self._answer(200, self.server.name.encode())

    def _answer(self, status: int, body: bytes, *, location: str | None = None,
                content_type: str = "text/plain") -> None:
        self.send_response(status)
        if location is not None:
            self.send_header("Location", location)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str, address: tuple[str, int], log: Path, lock: threading.Lock) -> None:
        self.name = name
        self._log = log
        self._lock = lock
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too, as ::ffff:a.b.c.d
        super().server_bind()

    def log(self, path: str) -> None:
        with self._lock, self._log.open("a") as f:
            f.write(json.dumps({"server": self.name, "path": path}) + "\n")


def _inside(workdir: Path, command: list[str]) -> int:
    for args in (["link", "set", "lo", "up"], ["addr", "add", "1.2.3.4/32", "dev", "lo"],
                 ["addr", "add", "5.6.7.8/32", "dev", "lo"],
                 ["addr", "add", "169.254.169.254/32", "dev", "lo"]):
        subprocess.run(["ip", *args], check=True)
    hosts = workdir / "hosts"
    hosts.write_text(HOSTS)
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)
    log, lock = workdir / "requests.jsonl", threading.Lock()
    # Bound and listening once constructed: connections queue until serve_forever takes them.
    servers = [_Server("redirector", ("1.2.3.4", 80), log, lock),
               _Server("public", ("5.6.7.8", 80), log, lock),
               _Server("private", ("::", 8080), log, lock)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "NO_COLOR": "1"}
        return subprocess.run(command, cwd=workdir, check=False, env=env).returncode
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    sep = sys.argv.index("--")
    sys.exit(_inside(Path(sys.argv[1]), sys.argv[sep + 1:]))
