"""Benchmark: surge.http.Client against wrk and aiohttp, 100-byte GETs from nginx on the other core.

nginx (1 worker, ``return 200`` of a ~100-byte body, keep-alive, no access log) runs pinned to --server-core;
every client runs pinned to --client-core in its own process: ``wrk -t1 -cC`` (for a duration), surge on
uvloop, surge on asyncio, aiohttp (one session, C workers). Each Python client drives N requests with C
worker coroutines awaiting ``request()`` in a loop. Targets (issue 2): surge/uvloop >= 0.75 x wrk,
surge/asyncio >= 0.25 x wrk.

    .venv/bin/python benchmarks/bench_client.py [--requests 100000] [--connections 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

BODY = b"surge benchmark body: " + b"x" * 77 + b"\n"  # 100 bytes


# -- helpers other benchmarks may reuse ----------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], core: int | None) -> list[str]:
    """``cmd`` run under ``taskset -c core`` (unchanged if core is None or taskset is missing)."""
    if core is None or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", str(core), *cmd]


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def nginx(core: int | None = 0, body: bytes = BODY) -> Iterator[str]:
    """Run nginx (1 worker, keep-alive, no access log, ``return 200 body``) and yield its base URL."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="surge-nginx-") as tmp:
        text = body.decode().replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        conf = f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_timeout 300;
    keepalive_requests 100000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type text/plain; return 200 "{text}"; }}
    }}
}}
"""
        path = os.path.join(tmp, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        proc = subprocess.Popen(pinned([exe, "-p", tmp, "-c", path, "-e", f"{tmp}/error.log"], core),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port(port)
            yield f"http://127.0.0.1:{port}/"
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_wrk(url: str, *, core: int | None = 1, connections: int = 100,
            seconds: float = 5.0) -> dict[str, Any]:
    """``wrk -t1 -cC -dS url`` pinned to ``core``: requests, seconds, req/s."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url]
    out = subprocess.run(pinned(cmd, core), capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    assert m is not None
    secs = float(m.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}.get(m.group(3), 1.0)
    return {"client": "wrk -t1", "loop": "-", "requests": int(m.group(1)), "seconds": secs, "rps": rps}


def machine() -> dict[str, Any]:
    """nproc, CPU model, Python, date: what a result needs to be read later."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


# -- the clients, each run in its own pinned process ---------------------------------------------


async def drive_surge(url: str, n: int, c: int) -> float:
    from surge.http import Client, Limits

    async with Client(limits=Limits(per_host=c, total=c)) as client:
        await client.request("GET", url)  # warm-up: caches the prepared request
        left = n

        async def worker() -> None:
            nonlocal left
            request = client.request
            while left > 0:
                left -= 1
                r = await request("GET", url, keep_body=False)
                if r.status != 200:
                    raise RuntimeError(f"status {r.status}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(c)))
        return time.perf_counter() - t0


async def drive_aiohttp(url: str, n: int, c: int) -> float:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=c, limit_per_host=c)
    async with aiohttp.ClientSession(connector=connector) as session:
        left = n

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with session.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"status {r.status}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(c)))
        return time.perf_counter() - t0


def child(args: argparse.Namespace) -> None:
    drive = drive_surge if args.child == "surge" else drive_aiohttp
    coro = drive(args.url, args.requests, args.connections)
    if args.loop == "uvloop":
        import uvloop

        secs = uvloop.run(coro)
    else:
        secs = asyncio.run(coro)
    print(json.dumps({"requests": args.requests, "seconds": secs}))


def run_child(name: str, loop: str, url: str, n: int, c: int, core: int | None) -> dict[str, Any]:  # noqa: PLR0917
    cmd = pinned([sys.executable, __file__, "--child", name, "--loop", loop, "--url", url,
                  "--requests", str(n), "--connections", str(c)], core)
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{name} on {loop} failed:\n{out.stderr.strip()}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    label = "surge.http.Client" if name == "surge" else "aiohttp (1 session, C workers)"
    return {"client": label, "loop": loop, "requests": res["requests"], "seconds": res["seconds"],
            "rps": res["requests"] / res["seconds"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", "-n", type=int, default=100_000)
    p.add_argument("--connections", "-c", type=int, default=100)
    p.add_argument("--wrk-seconds", type=float, default=5.0)
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--client-core", type=int, default=1)
    p.add_argument("--only", default="wrk,surge-uvloop,surge-asyncio,aiohttp",
                   help="comma-separated subset of: wrk, surge-uvloop, surge-asyncio, aiohttp")
    p.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--loop", default="uvloop", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return

    only = set(args.only.split(","))
    rows: list[dict[str, Any]] = []
    with nginx(args.server_core) as url:
        # Warm nginx up so the first measured client does not pay for it.
        subprocess.run(["wrk", "-t1", "-c10", "-d1s", url], capture_output=True, check=False)
        if "wrk" in only:
            rows.append(run_wrk(url, core=args.client_core, connections=args.connections,
                                seconds=args.wrk_seconds))
        for name, loop in (("surge", "uvloop"), ("surge", "asyncio"), ("aiohttp", "uvloop")):
            if f"{name}-{loop}" in only or (name == "aiohttp" and "aiohttp" in only):
                rows.append(run_child(name, loop, url, args.requests, args.connections, args.client_core))
    wrk = next((r["rps"] for r in rows if r["client"].startswith("wrk")), None)
    for r in rows:
        r["ratio_to_wrk"] = r["rps"] / wrk if wrk else None
    meta = {"command": " ".join([os.path.relpath(sys.executable), *sys.argv]), **machine(),
            "requests": args.requests, "connections": args.connections}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(f"`{meta['command']}` — {meta['nproc']} cores, {meta['cpu']}, "
          f"Python {meta['python']}, {meta['date']}")
    print(f"nginx pinned to core {args.server_core}, clients to core {args.client_core}, "
          f"{args.connections} connections\n")
    print("| client | loop | requests | seconds | req/s | ratio to wrk |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        ratio = f"{r['ratio_to_wrk']:.2f}" if r["ratio_to_wrk"] is not None else "-"
        print(f"| {r['client']} | {r['loop']} | {r['requests']} | {r['seconds']:.2f} "
              f"| {r['rps']:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
