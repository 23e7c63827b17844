"""Benchmark: ``surge fetch`` vs wrk and the playbook's §7 script, plus --state cost, memory, politeness.

In one run: nginx (1 worker, ~100-byte body) pinned to the server core; every client pinned to the client core
in its own process. Measured: ``wrk -t1 -cC``; ``surge fetch -n N -c C -o out.jsonl --json`` on uvloop and
asyncio, and with ``--state``; the playbook's §7 MassiveRequestHandler (aiohttp, semaphore + batches of
1,000 gathered) on both loops; peak RSS of ``surge fetch -i`` over a file of --big-urls URLs; and the most
connections a surge serve process (pinned) ever saw open from ``surge fetch --per-host P``.
Targets (issue 4): uvloop >= 0.6 x wrk and >= 5 x playbook/uvloop; asyncio >= 3 x playbook/asyncio;
--state >= 0.7 x in-memory; 1M-URL input peak RSS <= 150 MB; connections seen <= --per-host.

    .venv/bin/python benchmarks/bench_fetch.py [--requests 100000] [--connections 100] [--big-urls 1000000]
        [--json]          # a tiny check: --requests 2000 --big-urls 20000 --polite-urls 300
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from surge.bench.targets import (
    HarnessError,
    Nginx,
    machine_facts,
    pinned,
    plan_cores,
    run_timed,
    run_wrk,
)

PY = sys.executable

# A child that runs a command and prints the peak RSS (KiB) of its children: exact, no sampling.
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "sys.stderr.write(r.stderr.decode()[-500:])\n"
    "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)

# surge serve's app with its connection set replaced by one that remembers its peak size; prints it on exit.
_COUNTING_SERVER = (
    "import asyncio, signal, sys\n"
    "from surge.server.app import TargetServer\n"
    "class Peak(set):\n"
    "    peak = 0\n"
    "    def add(self, x):\n"
    "        super().add(x); self.peak = max(self.peak, len(self))\n"
    "async def main():\n"
    "    s = TargetServer(); s.app.connections = peak = Peak(); print(await s.start(), flush=True)\n"
    "    stop = asyncio.Event(); asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)\n"
    "    await stop.wait(); print(peak.peak, flush=True); await s.aclose()\n"
    "asyncio.run(main())\n"
)


def surge_fetch(args: list[str], core: int | None, timeout: float) -> tuple[dict[str, Any], str]:
    cmd = pinned([PY, "-m", "surge", "fetch", "--json", "--no-progress", *args], core)
    out = run_timed(cmd, timeout=timeout)
    if out.returncode != 0:
        raise HarnessError(f"surge fetch exited {out.returncode}: {out.stderr.strip()[-300:]}")
    return json.loads(out.stdout), shlex.join(cmd)


def playbook(url: str, n: int, loop: str, core: int | None, timeout: float) -> tuple[float, str]:
    cmd = pinned([PY, "-m", "surge.bench.peers.massive", "--url", url, "-n", str(n), "--loop", loop], core)
    out = run_timed(cmd, timeout=timeout)
    if out.returncode != 0:
        raise HarnessError(f"playbook script exited {out.returncode}: {out.stderr.strip()[-300:]}")
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return d["requests"] / d["elapsed_s"], shlex.join(cmd)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--wrk-seconds", type=float, default=5.0)
    ap.add_argument("--big-urls", type=int, default=1_000_000, help="URLs in the memory test's input file")
    ap.add_argument("--polite-urls", type=int, default=3000)
    ap.add_argument("--per-host", type=int, default=8)
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of Markdown")
    args = ap.parse_args(argv)
    plan = plan_cores()
    n, c = args.requests, args.connections
    timeout = max(120.0, n / 500)
    rows: list[dict[str, Any]] = []
    commands: list[str] = []
    res: dict[str, Any] = {"machine": machine_facts(), "requests": n, "connections": c}

    with tempfile.TemporaryDirectory(prefix="surge-bench-fetch-") as tmp, Nginx(core=plan.server) as nginx:
        url = nginx.url
        wrk = run_wrk(url, duration=args.wrk_seconds, connections=c, core=plan.client)
        res["wrk_rps"] = wrk.rps
        for loop in ("uvloop", "asyncio"):
            out = Path(tmp, f"out-{loop}.jsonl")
            s, cmd = surge_fetch(["-n", str(n), "-c", str(c), url, "-o", str(out), "--loop", loop],
                                 plan.client, timeout)
            res[f"surge_{loop}_rps"] = s["rps"]
            commands.append(cmd)
            p_rps, cmd = playbook(url, n, loop, plan.client, timeout)
            res[f"playbook_{loop}_rps"] = p_rps
            commands.append(cmd)
        s, cmd = surge_fetch(["-n", str(n), "-c", str(c), url, "-o", str(Path(tmp, "out-state.jsonl")),
                              "--state", str(Path(tmp, "state")), "--loop", "uvloop"], plan.client, timeout)
        res["surge_state_rps"] = s["rps"]
        commands.append(cmd)

        big = Path(tmp, "big.txt")
        with big.open("w") as f:
            for i in range(args.big_urls):
                f.write(f"{url}?i={i}\n")
        cmd = pinned([PY, "-m", "surge", "fetch", "--no-progress", "-i", str(big), "-c", str(c), "--per-host",
                      str(c), "-o", str(Path(tmp, "big.jsonl"))], plan.client)
        r = subprocess.run([PY, "-c", _RSS_WRAPPER, *cmd], capture_output=True, text=True, check=False,
                           timeout=max(300.0, args.big_urls / 200))
        code, rss_kib = r.stdout.split()
        if code != "0":
            raise HarnessError(f"big-input run exited {code}: {r.stderr.strip()[-300:]}")
        res["big_input_peak_rss_mb"] = int(rss_kib) / 1024
        commands.append(shlex.join(cmd))

    server = subprocess.Popen(pinned([PY, "-c", _COUNTING_SERVER], plan.server), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory(prefix="surge-bench-polite-") as tmp:
            urls = Path(tmp, "urls.txt")
            urls.write_text("".join(f"{base}/delay/5?i={i}\n" for i in range(args.polite_urls)))
            s, cmd = surge_fetch(["-i", str(urls), "-c", str(c), "--per-host", str(args.per_host)],
                                 plan.client, timeout)
            commands.append(cmd)
    finally:
        server.terminate()
        peak = int(server.communicate(timeout=30)[0].strip().splitlines()[-1])
    res["polite_peak_connections"] = peak
    res["per_host"] = args.per_host

    def ratio(a: str, b: str) -> float:
        return res[a] / res[b] if res[b] else 0.0

    rows = [
        {"check": "surge/uvloop vs wrk", "value": ratio("surge_uvloop_rps", "wrk_rps"), "target": 0.6},
        {"check": "surge/uvloop vs playbook/uvloop",
         "value": ratio("surge_uvloop_rps", "playbook_uvloop_rps"), "target": 5.0},
        {"check": "surge/asyncio vs playbook/asyncio",
         "value": ratio("surge_asyncio_rps", "playbook_asyncio_rps"), "target": 3.0},
        {"check": "--state vs in-memory (uvloop)", "value": ratio("surge_state_rps", "surge_uvloop_rps"),
         "target": 0.7},
    ]
    res["checks"] = rows
    res["commands"] = commands
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    m = res["machine"]
    print(f"## surge fetch: {n:,} requests, c={c}\n")
    print(f"{m['date']}; {m['nproc']} cores ({m['cpu_model']}); {m['cores']}; Python {m['python']}\n")
    print("| client | req/s |\n| --- | ---: |")
    for key, label in (("wrk_rps", "wrk -t1"), ("surge_uvloop_rps", "surge fetch, uvloop"),
                       ("surge_asyncio_rps", "surge fetch, asyncio"),
                       ("surge_state_rps", "surge fetch --state"),
                       ("playbook_uvloop_rps", "playbook §7, uvloop"),
                       ("playbook_asyncio_rps", "playbook §7, asyncio")):
        print(f"| {label} | {res[key]:,.0f} |")
    print("\n| check | measured | target | |\n| --- | ---: | ---: | --- |")
    for row in rows:
        ok = row["value"] >= row["target"]
        print(f"| {row['check']} | {row['value']:.2f}x | >= {row['target']}x | {'ok' if ok else 'MISSED'} |")
    rss = res["big_input_peak_rss_mb"]
    print(f"| peak RSS, {args.big_urls:,}-URL input | {rss:.0f} MB | <= 150 MB | "
          f"{'ok' if rss <= 150 else 'MISSED'} |")
    print(f"| most connections seen, --per-host {args.per_host} | {peak} | <= {args.per_host} | "
          f"{'ok' if peak <= args.per_host else 'MISSED'} |")
    print("\nCommands:\n")
    for cmd in commands:
        print(f"    {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
