"""The benchmark harness: pinned target servers (nginx, `surge serve`), pinned load clients (wrk, hey, any
command), their parsed results, the CPU each side used, and the facts about the machine a run happened on.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import re
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import psutil  # type: ignore[import-untyped]  # no stubs in the dev extra

__all__ = [
    "BODY",
    "ClientRun",
    "CorePlan",
    "HarnessError",
    "Nginx",
    "ServerProcess",
    "SurgeServer",
    "TimedRun",
    "command_line",
    "free_port",
    "limiter_note",
    "machine_facts",
    "markdown_header",
    "measure_client",
    "parse_fetch_summary",
    "parse_hey",
    "parse_wrk",
    "pinned",
    "plan_cores",
    "run_hey",
    "run_peer",
    "run_surge_fetch",
    "run_timed",
    "run_wrk",
    "server_cpu",
    "tool_available",
    "wait_for_port",
]

# The fixed body nginx serves: about 100 bytes, like `surge serve`'s `/`.
BODY = "surge benchmark target: a fixed body of one hundred bytes, served with keep-alive, no logging at all."

# At or above this share of one core, a process is taken as the side that limited the run.
SATURATED_PCT = 90.0


class HarnessError(RuntimeError):
    """A target or a client could not be started or its output could not be read."""


# ---------------------------------------------------------------------------------------------- machine


@dataclass(frozen=True, slots=True)
class CorePlan:
    """Which core the client and the server are pinned to; ``shared`` when the machine has only one."""

    client: int | None
    server: int | None
    shared: bool

    def describe(self) -> str:
        """One line for reports: where each side ran."""
        if self.client is None:
            return "not pinned (taskset missing)"
        if self.shared:
            return f"client and server share core {self.client}"
        return f"client on core {self.client}, server on core {self.server}"


def plan_cores() -> CorePlan:
    """Give the server the last usable core and clients the first, so each side gets a core of its own."""
    if shutil.which("taskset") is None:
        return CorePlan(None, None, shared=(os.cpu_count() or 1) < 2)
    cores = sorted(os.sched_getaffinity(0))
    return CorePlan(client=cores[0], server=cores[-1], shared=len(cores) < 2)


def pinned(cmd: Sequence[str], core: int | None) -> list[str]:
    """``cmd`` run under ``taskset -c core`` (unchanged when ``core`` is None)."""
    if core is None:
        return list(cmd)
    return ["taskset", "-c", str(core), *cmd]


def tool_available(name: str) -> bool:
    """Whether an external program (wrk, hey, nginx) is on PATH."""
    return shutil.which(name) is not None


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _tool_version(cmd: Sequence[str], pattern: str) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1) if m else "installed"


def machine_facts() -> dict[str, Any]:
    """What a reader needs to weigh the figures: cores, CPU model, kernel, Python, loops and tools, date."""
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "loops": {"asyncio": platform.python_version(), "uvloop": _version("uvloop"),
                  "rloop": _version("rloop")},
        "peers": {"aiohttp": _version("aiohttp"), "requests": _version("requests")},
        "tools": {
            "wrk": _tool_version(["wrk", "-v"], r"wrk (\S+)"),
            "hey": "installed" if tool_available("hey") else None,
            "nginx": _tool_version(["nginx", "-v"], r"nginx/(\S+)"),
            "taskset": "installed" if tool_available("taskset") else None,
        },
        "cores": plan_cores().describe(),
    }


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed, for the line above a table: ``python benchmarks/bench_x.py -n 1000``."""
    args = sys.argv if argv is None else argv
    return " ".join(["python", *(shlex.quote(a) for a in args)])


def markdown_header(command: str, machine: Mapping[str, Any], details: str = "") -> str:
    """The line above a benchmark's Markdown table: the command, the date, the machine and how it ran."""
    line = (f"`{command}` — {machine['date']}; {machine['nproc']} cores ({machine['cpu_model']}); "
            f"{machine['python']}")
    return f"{line}; {details}\n" if details else f"{line}\n"


# ---------------------------------------------------------------------------------------------- servers


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for servers, like nginx, that cannot be told to pick one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, proc: subprocess.Popen[Any], deadline: float) -> None:
    """Return once ``proc`` listens on ``host:port``; HarnessError if it exits or ``deadline`` passes."""
    # A readiness poll with a deadline: the server signals nothing else we can wait on.
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(f"server exited with code {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise HarnessError(f"server did not listen on {host}:{port} within the deadline")


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (nginx master + worker), in seconds."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


class ServerProcess:
    """Base of the target servers, each a subprocess: ``url``, ``pid``, ``cpu_seconds()``; stops on exit."""

    name = "server"
    url: str
    _proc: subprocess.Popen[Any] | None = None

    @property
    def pid(self) -> int:
        """Process id of the server (the root of its process tree)."""
        if self._proc is None:
            raise HarnessError(f"{self.name} is not running")
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """CPU the server's process tree has used so far; take it before and after a run."""
        return _tree_cpu_seconds(self.pid)

    def stop(self) -> None:
        """Terminate the server and wait for it (kill if it does not stop within 5 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


_NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {host}:{port} backlog=4096;
        location / {{
            default_type text/plain;
            return 200 "{body}";
        }}
    }}
}}
"""


class Nginx(ServerProcess):
    """nginx with a temporary config: 1 worker, keep-alive, access_log off, a fixed ~100-byte body; pinned.

    >>> with Nginx(core=1) as target:   # doctest: +SKIP
    ...     print(run_wrk(target.url, duration=1.0).rps)
    """

    name = "nginx"

    def __init__(self, *, core: int | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.core = core
        self.host = host
        self.port = port
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> None:
        """Write the config into a temporary directory and start nginx in the foreground."""
        exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if exe is None:
            raise HarnessError("nginx is not installed")
        self._tmp = tempfile.TemporaryDirectory(prefix="surge-nginx-")
        tmp = self._tmp.name
        port = self.port or free_port(self.host)
        conf = Path(tmp, "nginx.conf")
        conf.write_text(_NGINX_CONF.format(tmp=tmp, host=self.host, port=port, body=BODY))
        self._proc = subprocess.Popen(
            pinned([exe, "-p", tmp, "-c", str(conf), "-e", f"{tmp}/error.log"], self.core),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.host, port, self._proc, time.monotonic() + 10)
        except HarnessError as exc:
            log = Path(tmp, "error.log")
            detail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
            self.stop()
            raise HarnessError(f"{exc}{': ' + detail[0] if detail else ''}") from None
        self.url = f"http://{self.host}:{port}/"

    def stop(self) -> None:
        """Stop nginx (QUIT lets the worker exit) and remove the temporary directory."""
        super().stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


class SurgeServer(ServerProcess):
    """`surge serve` in its own process, pinned to a core; ``url`` is the base URL it printed (no slash)."""

    name = "surge serve"

    def __init__(self, *, core: int | None = None, loop: str = "auto", extra: Sequence[str] = ()) -> None:
        self.core = core
        self.loop = loop
        self.extra = list(extra)
        self._drains: list[tuple[threading.Thread, IO[str]]] = []

    def start(self) -> None:
        """Start `surge serve --port 0` and read the URL it prints on its first stdout line."""
        cmd = [sys.executable, "-m", "surge", "serve", "--port", "0", *self.extra]
        if self.loop != "auto":
            cmd += ["--loop", self.loop]
        self._proc = proc = subprocess.Popen(
            pinned(cmd, self.core), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline().strip()
        m = re.search(r"https?://\S+", line)
        if m is None:
            err = proc.stderr.read() if proc.poll() is not None else ""
            self.stop()
            detail = err.strip()[-300:]
            raise HarnessError(f"surge serve did not print its URL (got {line!r}) {detail}".strip())
        self.url = m.group(0).rstrip("/")
        # Drain both pipes so a chatty server can never block on a full pipe mid-benchmark.
        self._drains = [(threading.Thread(target=stream.read, daemon=True), stream)
                        for stream in (proc.stdout, proc.stderr)]
        for drain, _ in self._drains:
            drain.start()

    def stop(self) -> None:
        """Stop the server, let the pipe readers reach end of file, then close the pipes."""
        super().stop()
        for drain, stream in self._drains:
            drain.join(timeout=5)
            # Closing blocks while another thread reads: a pipe still held open elsewhere is left alone.
            if not drain.is_alive():
                stream.close()
        self._drains = []


# ---------------------------------------------------------------------------------------------- clients


@dataclass(slots=True)
class TimedRun:
    """A finished client subprocess: its output, wall time and the CPU it used (user + system)."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float


def run_timed(cmd: Sequence[str], *, timeout: float | None = None,
              env: Mapping[str, str] | None = None) -> TimedRun:
    """Run a client to completion and measure its CPU via RUSAGE_CHILDREN (exact, even for short runs).

    The delta of RUSAGE_CHILDREN counts only children reaped in between; a server started earlier and still
    running is not counted, so the figure is the client's own.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False,
                             env=dict(env) if env is not None else None)
    except subprocess.TimeoutExpired as exc:
        name = Path(cmd[0]).name if cmd else "client"
        raise HarnessError(f"{name} did not finish within {timeout:.0f} s") from exc
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return TimedRun(out.returncode, out.stdout, out.stderr, wall, cpu)


@dataclass(slots=True)
class ClientRun:
    """One load client's measured run against a target: the row of an http benchmark table.

    ``elapsed_s`` is the run as the client timed it (rps = requests / elapsed_s); ``wall_s`` is the client
    process's whole life, the base of the CPU percentages. ``latency_ms`` maps percentile labels ("p50",
    "p99", ...) to milliseconds, empty when the client does not measure latency (the playbook's script does
    not). ``series`` is a per-second throughput series when the client reports one (surge fetch). Server
    CPU is None when the server is not ours to measure (``--target URL``).
    """

    client: str
    loop: str
    requests: int
    ok: int
    elapsed_s: float
    rps: float
    latency_ms: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    client_cpu_pct: float = 0.0
    server_cpu_pct: float | None = None
    ratio: float = 0.0
    limited_by: str = ""
    note: str = ""
    series: dict[str, list[float | None]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def success_pct(self) -> float:
        """Share of requests that got a 2xx/3xx response, in percent."""
        return 100.0 * self.ok / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with ``success_pct`` added."""
        d = asdict(self)
        d["success_pct"] = round(self.success_pct, 3)
        return d

    def with_server_cpu(self, server_cpu_s: float | None) -> ClientRun:
        """Fill the CPU columns, in percent of one core.

        The client's CPU is over its whole process life (start-up is CPU work too); the server's over the
        run the client timed, since the server idles while the client starts.
        """
        self.client_cpu_pct = 100.0 * self.client_cpu_s / (self.wall_s or self.elapsed_s or 1e-9)
        self.server_cpu_s = server_cpu_s
        run = self.elapsed_s or self.wall_s or 1e-9
        self.server_cpu_pct = None if server_cpu_s is None else 100.0 * server_cpu_s / run
        return self


def limiter_note(client_cpu_pct: float, server_cpu_pct: float | None, plan: CorePlan | None = None,
                 *, server_workers: int = 1) -> str:
    """Name the side that limited a run from the CPU each side used (percent of one core).

    A side at ≥ 90 % of its core is the bottleneck ("server-bound", "client-bound", "both sides"); when
    neither is, the run was bound by latency or concurrency rather than CPU ("neither core full"); "not
    client CPU" when the server is not ours to measure; "shared core" when both sides ran on one.
    """
    if plan is not None and plan.shared:
        return "shared core"
    server_full = server_cpu_pct is not None and server_cpu_pct >= SATURATED_PCT * server_workers
    client_full = client_cpu_pct >= SATURATED_PCT
    if server_full and client_full:
        return "both sides"
    if server_full:
        return "server-bound"
    if client_full:
        return "client-bound"
    if server_cpu_pct is None:
        return "not client CPU"
    return "neither core full"


# wrk writes this JSON line from its done() hook: exact percentiles without parsing rounded text.
_WRK_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nSURGE_WRK {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""


def parse_wrk(output: str) -> ClientRun:
    """Read wrk's run from the ``SURGE_WRK`` JSON line our done() hook writes (latencies in microseconds)."""
    m = re.search(r"^SURGE_WRK (\{.*\})$", output, re.M)
    if m is None:
        raise HarnessError("wrk printed no summary line")
    d = json.loads(m.group(1))
    elapsed = d["duration_us"] / 1e6
    requests = int(d["requests"])
    return ClientRun(
        client="wrk", loop="native", requests=requests, ok=max(0, requests - int(d["status"])),
        elapsed_s=elapsed, rps=requests / elapsed if elapsed else 0.0,
        latency_ms={"p50": d["p50"] / 1000, "p90": d["p90"] / 1000, "p99": d["p99"] / 1000,
                    "p99.9": d["p999"] / 1000, "max": d["max"] / 1000, "mean": d["mean"] / 1000},
        errors={k: int(d[k]) for k in ("connect", "read", "write", "status", "timeout") if d[k]},
        note="wrk runs for a duration, not a count",
    )


def run_wrk(url: str, *, duration: float = 5.0, connections: int = 100, threads: int = 1,
            core: int | None = None) -> ClientRun:
    """``wrk -t1 -cC -dD`` pinned to ``core``; the reference upper bound for a client on one core."""
    if not tool_available("wrk"):
        raise HarnessError("wrk is not installed")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="surge-wrk-", delete=False) as f:
        f.write(_WRK_LUA)
    try:
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "-s", f.name, url]
        out = run_timed(pinned(cmd, core), timeout=duration + 60)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        raise HarnessError(f"wrk exited {out.returncode}: {out.stderr.strip()[-200:]}")
    run = parse_wrk(out.stdout)
    run.client_cpu_s, run.wall_s = out.cpu_s, out.wall_s
    return run


_UNITS = {"secs": 1.0, "ms": 1e-3, "us": 1e-6}


def parse_hey(output: str) -> ClientRun:
    """Read hey's text summary: totals, latency distribution, status and error counts."""
    def grab(label: str) -> float:
        m = re.search(rf"^\s*{label}:\s*([\d.]+)", output, re.M)
        if m is None:
            raise HarnessError(f"hey output has no {label!r}")
        return float(m.group(1))

    total = grab("Total")
    found = re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", output, re.M)
    statuses = {int(code): int(n) for code, n in found}
    errors_block = output.split("Error distribution:", 1)[1] if "Error distribution:" in output else ""
    errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]\s", errors_block, re.M))
    latency = {f"p{int(p)}": float(v) * 1000
               for p, v in re.findall(r"^\s*(\d+)%+ in ([\d.]+) secs", output, re.M)}
    with contextlib.suppress(HarnessError):
        latency["max"] = grab("Slowest") * 1000
        latency["mean"] = grab("Average") * 1000
    requests = sum(statuses.values()) + errors
    ok = sum(n for code, n in statuses.items() if 200 <= code < 400)
    return ClientRun(
        client="hey", loop="native", requests=requests, ok=ok, elapsed_s=total,
        rps=requests / total if total else 0.0, latency_ms=latency,
        errors={"other": errors} if errors else {},
    )


def run_hey(url: str, *, requests: int, connections: int = 100, core: int | None = None) -> ClientRun:
    """``hey -n N -c C`` pinned to ``core`` (Go; keep-alive on)."""
    if not tool_available("hey"):
        raise HarnessError("hey is not installed")
    cmd = ["hey", "-n", str(requests), "-c", str(min(connections, requests)), url]
    # One OS thread per core the Go runtime sees; pinning caps it at one core like the other clients.
    env = {**os.environ, "GOMAXPROCS": "1"} if core is not None else None
    out = run_timed(pinned(cmd, core), timeout=600, env=env)
    if out.returncode != 0:
        raise HarnessError(f"hey exited {out.returncode}: {out.stderr.strip()[-200:]}")
    run = parse_hey(out.stdout)
    run.client_cpu_s, run.wall_s = out.cpu_s, out.wall_s
    return run


@contextlib.contextmanager
def server_cpu(server: ServerProcess | None) -> Iterator[list[float | None]]:
    """Measure a server's CPU over a block: the yielded list holds the seconds used once the block ends
    (None when there is no server of ours to measure)."""
    box: list[float | None] = []
    before = server.cpu_seconds() if server is not None else 0.0
    try:
        yield box
    finally:
        box.append((server.cpu_seconds() - before) if server is not None else None)


def measure_client(label: str, fn: Callable[[], ClientRun], server: ServerProcess | None, *,
                   skipped: list[str], say: Callable[[str], None]) -> ClientRun | None:
    """Run one client with the server's CPU measured over it; None when it cannot run here.

    A client that cannot run (a loop it lacks, a command not installed) is a row skipped with its reason,
    appended to ``skipped``, not a lost benchmark.
    """
    say(f"running {label}")
    try:
        with server_cpu(server) as used:
            run = fn()
    except HarnessError as exc:
        skipped.append(f"{label}: {exc}")
        say(f"skipped {label}: {exc}")
        return None
    return run.with_server_cpu(used[0])


def run_peer(module: str, url: str, requests: int, *, loop: str = "asyncio", core: int | None = None,
             timeout: float = 900.0) -> ClientRun:
    """Run one of the playbook's scripts (``surge.bench.peers.<module>``) as a pinned subprocess."""
    cmd = [sys.executable, "-m", f"surge.bench.peers.{module}", "--url", url, "-n", str(requests),
           "--loop", loop]
    out = run_timed(pinned(cmd, core), timeout=timeout)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"peer {module} on {loop} exited {out.returncode}: {last[-200:]}")
    d = json.loads(out.stdout.strip().splitlines()[-1])
    elapsed = float(d["elapsed_s"])
    errors = {k: int(d[k]) for k in ("failed", "timeout") if d.get(k)}
    return ClientRun(client=d["client"], loop=d["loop"], requests=int(d["requests"]), ok=int(d["ok"]),
                     elapsed_s=elapsed, rps=int(d["requests"]) / elapsed if elapsed else 0.0,
                     wall_s=out.wall_s, client_cpu_s=out.cpu_s, errors=errors)


def parse_fetch_summary(summary: Mapping[str, Any], *, loop: str) -> ClientRun:
    """Turn `surge fetch --json`'s summary (schema in the contract) into a table row."""
    series = summary.get("series") or {}
    return ClientRun(
        client="surge fetch", loop=str(summary.get("loop") or loop), requests=int(summary["requests"]),
        ok=int(summary["ok"]), elapsed_s=float(summary["elapsed_s"]), rps=float(summary["rps"]),
        latency_ms={k: float(v) for k, v in (summary.get("latency_ms") or {}).items() if v is not None},
        # A second in which nothing finished has no percentiles: None there (a gap in the charts).
        series={k: [None if x is None else float(x) for x in v] for k, v in series.items()
                if isinstance(v, list)},
        errors={str(k): int(v) for k, v in (summary.get("errors") or {}).items() if v},
    )


def run_surge_fetch(url: str, requests: int | None, *, connections: int = 100, loop: str = "uvloop",
                    core: int | None = None, duration: float | None = None, extra: Sequence[str] = (),
                    timeout: float = 900.0) -> ClientRun:
    """``surge fetch URL -n N -c C --loop L --json --no-progress`` as a pinned subprocess
    (``-z DURATION`` instead of ``-n`` when ``requests`` is None)."""
    amount = ["-n", str(requests)] if requests is not None else ["-z", f"{duration or 1.0:g}s"]
    cmd = [sys.executable, "-m", "surge", "fetch", url, *amount, "-c", str(connections),
           "--loop", loop, "--json", "--no-progress", *extra]
    out = run_timed(pinned(cmd, core), timeout=timeout)
    # A run with failed requests may exit non-zero and still print its summary: the summary decides.
    try:
        summary = json.loads(out.stdout)
    except json.JSONDecodeError:
        last = (out.stderr.strip().splitlines() or ["no summary on stdout"])[-1]
        raise HarnessError(f"surge fetch on {loop} exited {out.returncode}: {last[-200:]}") from None
    run = parse_fetch_summary(summary, loop=loop)
    run.client_cpu_s, run.wall_s = out.cpu_s, out.wall_s
    return run
