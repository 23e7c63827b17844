"""Benchmark: surge.http.Client against wrk and aiohttp, 100-byte GETs from nginx on the other core.

nginx (1 worker, ``return 200`` of a ~100-byte body, keep-alive, no access log; the shared harness in
``surge.bench.targets``) runs pinned to --server-core; every client runs pinned to --client-core in its own
process: ``wrk -t1 -cC`` (for a duration), surge on uvloop, surge on asyncio, aiohttp (one session,
C workers). Each Python client drives N requests with C
worker coroutines awaiting ``request()`` in a loop. Targets (issue 2): surge/uvloop >= 0.75 x wrk,
surge/asyncio >= 0.25 x wrk.

    .venv/bin/python benchmarks/bench_client.py [--requests 100000] [--connections 100] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from surge.bench.targets import Nginx, machine_facts, pinned, plan_cores, run_wrk

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


async def drive_bare(url: str, n: int, c: int) -> float:
    """A minimal httptools Protocol client (no pool, no timeouts): the floor to measure the client against."""
    import httptools

    loop = asyncio.get_running_loop()
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    req = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    left = n

    class P(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpResponseParser(self)
            self.fut: asyncio.Future[None] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t: Any = transport

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            assert self.fut is not None
            self.fut.set_result(None)

    async def worker() -> None:
        nonlocal left
        _, p = await loop.create_connection(P, host, int(port))
        while left > 0:
            left -= 1
            p.fut = loop.create_future()
            p.t.write(req)
            await p.fut
            if p.parser.get_status_code() != 200:
                raise RuntimeError("status")
        p.t.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    return time.perf_counter() - t0


def child(args: argparse.Namespace) -> None:
    drive = {"surge": drive_surge, "aiohttp": drive_aiohttp, "bare": drive_bare}[args.child]
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
    label = {"surge": "surge.http.Client", "aiohttp": "aiohttp (1 session, C workers)",
             "bare": "bare httptools Protocol"}[name]
    return {"client": label, "loop": loop, "requests": res["requests"], "seconds": res["seconds"],
            "rps": res["requests"] / res["seconds"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", "-n", type=int, default=100_000)
    p.add_argument("--connections", "-c", type=int, default=100)
    p.add_argument("--wrk-seconds", type=float, default=5.0)
    plan = plan_cores()
    p.add_argument("--server-core", type=int, default=plan.server)
    p.add_argument("--client-core", type=int, default=plan.client)
    p.add_argument("--only", default="wrk,surge-uvloop,surge-asyncio,aiohttp",
                   help="comma-separated subset of: wrk, surge-uvloop, surge-asyncio, aiohttp, "
                        "bare-uvloop, bare-asyncio")
    p.add_argument("--rounds", "-r", type=int, default=1,
                   help="run every client R times, interleaved, and report each one's median")
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
    with Nginx(core=args.server_core) as target:
        url = target.url
        # Warm nginx up so the first measured client does not pay for it.
        subprocess.run(["wrk", "-t1", "-c10", "-d1s", url], capture_output=True, check=False)
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for _ in range(max(args.rounds, 1)):
            if "wrk" in only:
                w = run_wrk(url, duration=args.wrk_seconds, connections=args.connections,
                            core=args.client_core)
                runs.setdefault(("wrk", "-"), []).append(
                    {"client": "wrk -t1", "loop": "-", "requests": w.requests, "seconds": w.elapsed_s,
                     "rps": w.rps})
            for name, loop in (("surge", "uvloop"), ("surge", "asyncio"), ("aiohttp", "uvloop"),
                               ("bare", "uvloop"), ("bare", "asyncio")):
                if f"{name}-{loop}" in only or (name == "aiohttp" and "aiohttp" in only):
                    runs.setdefault((name, loop), []).append(
                        run_child(name, loop, url, args.requests, args.connections, args.client_core))
        for samples in runs.values():
            samples.sort(key=lambda r: r["rps"])
            median = dict(samples[len(samples) // 2])
            median["all_rps"] = [round(r["rps"]) for r in samples]
            rows.append(median)
    wrk = next((r["rps"] for r in rows if r["client"].startswith("wrk")), None)
    for r in rows:
        r["ratio_to_wrk"] = r["rps"] / wrk if wrk else None
    m = machine_facts()
    meta = {"command": " ".join([os.path.relpath(sys.executable), *sys.argv]), "nproc": m["nproc"],
            "cpu": m["cpu_model"], "python": m["python"], "date": m["date"], "machine": m,
            "requests": args.requests, "connections": args.connections, "rounds": args.rounds}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(f"`{meta['command']}` — {meta['nproc']} cores, {meta['cpu']}, "
          f"{meta['python']}, {meta['date']}")
    print(f"nginx pinned to core {args.server_core}, clients to core {args.client_core}, "
          f"{args.connections} connections\n")
    if args.rounds > 1:
        print(f"median of {args.rounds} interleaved rounds (all rounds' req/s in the last column)\n")
    print("| client | loop | requests | seconds | req/s | ratio to wrk | rounds |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        ratio = f"{r['ratio_to_wrk']:.2f}" if r["ratio_to_wrk"] is not None else "-"
        print(f"| {r['client']} | {r['loop']} | {r['requests']} | {r['seconds']:.2f} "
              f"| {r['rps']:,.0f} | {ratio} | {' '.join(map(str, r['all_rps']))} |")


if __name__ == "__main__":
    main()
