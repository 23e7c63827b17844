"""Benchmark: every speed and memory target of ``surge fetch`` (issue 4), measured in one pinned run.

nginx (1 worker, ~100-byte body) on the server core, every client on the client core in its own process
(the shared harness, ``surge.bench.targets``). Each round measures, back to back:

- ``wrk -t1 -cC`` (the reference limit);
- ``surge fetch -n N -c C -o out.jsonl`` on uvloop and on asyncio, and on uvloop with ``--state DIR``;
- the playbook's §7 script (aiohttp, semaphore + batches of 1,000 gathered) on uvloop and on asyncio;
- ``surge fetch -i FILE`` over N distinct URLs (list mode, reported, no target);

then, once: the peak RSS of ``surge fetch -i`` over a file of --big-urls URLs, and the most connections a
``surge serve`` process saw open at once from ``surge fetch --per-host P``. Ratios are taken within a
round (the machine may be shared and noisy); with ``--rounds R`` the table shows each ratio's median.

Targets: uvloop >= 0.6 x wrk and >= 5 x playbook/uvloop; asyncio >= 3 x playbook/asyncio; --state >= 0.7 x
in-memory; peak RSS <= 150 MB on 1,000,000 URLs; connections seen <= --per-host.

    .venv/bin/python benchmarks/bench_fetch.py [--requests 100000] [--connections 100] [--rounds 1]
        [--big-urls 1000000] [--json]
    # a tiny check: --requests 2000 --big-urls 20000 --polite-urls 200 --wrk-seconds 1
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from surge.bench.targets import (
    ClientRun,
    HarnessError,
    Nginx,
    machine_facts,
    parse_fetch_summary,
    pinned,
    plan_cores,
    run_peer,
    run_surge_fetch,
    run_timed,
    run_wrk,
)

PY = sys.executable

# Not in the harness: a child that runs a command and prints its exit code and the peak RSS (KiB) of its
# children. RUSAGE_CHILDREN of a fresh process covers that one command only: exact, no sampling.
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "sys.stderr.write(r.stderr.decode()[-500:])\n"
    "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)

# Not in the harness: surge serve's app with its connection set replaced by one that remembers its peak
# size, printed on SIGTERM. It is what the server saw, not what the client believes it did.
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

# (key, label) of the throughput rows, in table order.
ROWS = (
    ("wrk", "wrk -t1"),
    ("surge_uvloop", "surge fetch -o out.jsonl, uvloop"),
    ("surge_asyncio", "surge fetch -o out.jsonl, asyncio"),
    ("surge_state", "surge fetch -o out.jsonl --state, uvloop"),
    ("surge_list", "surge fetch -i FILE (distinct URLs), uvloop"),
    ("playbook_uvloop", "playbook §7 script, uvloop"),
    ("playbook_asyncio", "playbook §7 script, asyncio"),
)
# (label, numerator, denominator, target) of the ratio checks.
CHECKS = (
    ("surge/uvloop vs wrk", "surge_uvloop", "wrk", 0.6),
    ("surge/uvloop vs playbook/uvloop", "surge_uvloop", "playbook_uvloop", 5.0),
    ("surge/asyncio vs playbook/asyncio", "surge_asyncio", "playbook_asyncio", 3.0),
    ("--state vs in-memory (uvloop)", "surge_state", "surge_uvloop", 0.7),
    ("list mode vs load mode (uvloop)", "surge_list", "surge_uvloop", None),
)


def fetch_command(url: str | None, requests: int | None, connections: int, loop: str,
                  extra: list[str]) -> str:
    """The command line run_surge_fetch runs, for the record (the harness does not return it)."""
    amount = ["-n", str(requests)] if requests is not None else []
    target = [url] if url is not None else []
    return shlex.join(["surge", "fetch", *target, *amount, "-c", str(connections), "--loop", loop, "--json",
                       "--no-progress", *extra])


def one_round(url: str, args: argparse.Namespace, tmp: Path, core: int | None, *, rnd: int,
              commands: dict[str, str]) -> dict[str, ClientRun]:
    n, c = args.requests, args.connections
    runs: dict[str, ClientRun] = {"wrk": run_wrk(url, duration=args.wrk_seconds, connections=c, core=core)}
    commands["wrk"] = f"wrk -t1 -c{c} -d{max(1, round(args.wrk_seconds))}s {url}"
    for loop in ("uvloop", "asyncio"):
        extra = ["-o", str(tmp / f"out-{loop}.jsonl")]
        runs[f"surge_{loop}"] = run_surge_fetch(url, n, connections=c, loop=loop, core=core, extra=extra)
        commands[f"surge_{loop}"] = fetch_command(url, n, c, loop, extra)
    extra = ["-o", str(tmp / "out-state.jsonl"), "--state", str(tmp / f"state-{rnd}")]
    runs["surge_state"] = run_surge_fetch(url, n, connections=c, loop="uvloop", core=core, extra=extra)
    commands["surge_state"] = fetch_command(url, n, c, "uvloop", extra)
    extra = ["-i", str(tmp / "list.txt"), "--per-host", str(c), "-o", str(tmp / "out-list.jsonl")]
    runs["surge_list"] = list_fetch(extra, c, core)
    commands["surge_list"] = fetch_command(None, None, c, "uvloop", extra)
    for loop in ("uvloop", "asyncio"):
        runs[f"playbook_{loop}"] = run_peer("massive", url, n, loop=loop, core=core)
        commands[f"playbook_{loop}"] = f"python -m surge.bench.peers.massive --url {url} -n {n} --loop {loop}"
    return runs


def list_fetch(extra: list[str], connections: int, core: int | None) -> ClientRun:
    """``surge fetch -i FILE`` pinned, read as run_surge_fetch reads its summary (which always passes a URL
    argument, so it cannot run list mode: a local helper)."""
    cmd = [PY, "-m", "surge", "fetch", "-c", str(connections), "--loop", "uvloop", "--json", "--no-progress",
           *extra]
    out = run_timed(pinned(cmd, core), timeout=900)
    try:
        summary = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise HarnessError(f"surge fetch -i exited {out.returncode}: {out.stderr.strip()[-200:]}") from None
    run = parse_fetch_summary(summary, loop="uvloop")
    run.client_cpu_s, run.wall_s = out.cpu_s, out.wall_s
    return run


def peak_rss_mb(url: str, urls: int, connections: int, tmp: Path, core: int | None) -> tuple[float, str]:
    big = tmp / "big.txt"
    with big.open("w") as f:
        for i in range(urls):
            f.write(f"{url}?i={i}\n")
    cmd = pinned([PY, "-m", "surge", "fetch", "--no-progress", "-i", str(big), "-c", str(connections),
                  "--per-host", str(connections), "-o", str(tmp / "big.jsonl")], core)
    r = subprocess.run([PY, "-c", _RSS_WRAPPER, *cmd], capture_output=True, text=True, check=False,
                       timeout=max(300.0, urls / 200))
    code, rss_kib = r.stdout.split()
    if code != "0":
        raise HarnessError(f"big-input run exited {code}: {r.stderr.strip()[-300:]}")
    return int(rss_kib) / 1024, shlex.join(cmd)


def polite_peak(args: argparse.Namespace, plan: Any) -> tuple[int, str]:
    server = subprocess.Popen(pinned([PY, "-c", _COUNTING_SERVER], plan.server), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        base = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory(prefix="surge-bench-polite-") as tmp:
            urls = Path(tmp, "urls.txt")
            urls.write_text("".join(f"{base}/delay/5?i={i}\n" for i in range(args.polite_urls)))
            extra = ["-i", str(urls), "--per-host", str(args.per_host)]
            list_fetch(extra, args.connections, plan.client)
            cmd = fetch_command(None, None, args.connections, "uvloop", extra)
    finally:
        server.terminate()
        peak = int(server.communicate(timeout=30)[0].strip().splitlines()[-1])
    return peak, cmd


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1, help="repeat the throughput runs; medians are shown")
    ap.add_argument("--wrk-seconds", type=float, default=5.0)
    ap.add_argument("--big-urls", type=int, default=1_000_000, help="URLs in the memory test's input file")
    ap.add_argument("--polite-urls", type=int, default=3000)
    ap.add_argument("--per-host", type=int, default=8)
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of Markdown")
    args = ap.parse_args(argv)
    plan = plan_cores()
    n, c = args.requests, args.connections
    rounds: list[dict[str, ClientRun]] = []
    commands: dict[str, str] = {}
    res: dict[str, Any] = {"machine": machine_facts(), "requests": n, "connections": c, "rounds": args.rounds,
                           "command": shlex.join(["python", "benchmarks/bench_fetch.py", *sys.argv[1:]])}

    with tempfile.TemporaryDirectory(prefix="surge-bench-fetch-") as tmp_name, \
            Nginx(core=plan.server) as nginx:
        tmp = Path(tmp_name)
        url = nginx.url
        (tmp / "list.txt").write_text("".join(f"{url}?i={i}\n" for i in range(n)))
        for rnd in range(args.rounds):
            rounds.append(one_round(url, args, tmp, plan.client, rnd=rnd, commands=commands))
        rss, commands["big_input"] = peak_rss_mb(url, args.big_urls, c, tmp, plan.client)
    peak, commands["polite"] = polite_peak(args, plan)

    def median(key: str) -> float:
        return statistics.median(r[key].rps for r in rounds)

    checks = []
    for label, num, den, target in CHECKS:
        ratios = [r[num].rps / r[den].rps if r[den].rps else 0.0 for r in rounds]
        checks.append({"check": label, "value": statistics.median(ratios), "target": target,
                       "each_round": ratios})
    res.update(rps={key: median(key) for key, _ in ROWS}, checks=checks, big_input_urls=args.big_urls,
               big_input_peak_rss_mb=rss, per_host=args.per_host, polite_peak_connections=peak,
               commands=commands, runs=[{k: v.to_dict() for k, v in r.items()} for r in rounds])
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print_markdown(res)
    return 0


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def print_markdown(res: dict[str, Any]) -> None:
    m = res["machine"]
    n, c = res["requests"], res["connections"]
    print(f"## surge fetch: {n:,} requests, c={c}, median of {res['rounds']} round(s)\n")
    print(f"`{res['command']}`  ")
    print(f"{m['date']}; {m['nproc']} cores ({m['cpu_model']}); {m['cores']}; {m['python']}; "
          f"uvloop {m['loops']['uvloop']}; nginx {m['tools']['nginx']}\n")
    print("| client | req/s | × wrk |\n| --- | ---: | ---: |")
    wrk = res["rps"]["wrk"]
    for key, label in ROWS:
        rps = res["rps"][key]
        print(f"| {label} | {rps:,.0f} | {rps / wrk if wrk else 0.0:.2f} |")
    print("\n| check | measured | target | | each round |\n| --- | ---: | ---: | --- | --- |")
    for row in res["checks"]:
        # Three decimals: a ratio that rounds to its target must still show which side of it it is on.
        each = " ".join(f"{v:.3f}" for v in row["each_round"])
        if row["target"] is None:
            print(f"| {row['check']} | {row['value']:.3f}× | – | | {each} |")
        else:
            print(f"| {row['check']} | {row['value']:.3f}× | ≥ {row['target']}× | "
                  f"{verdict(row['value'] >= row['target'])} | {each} |")
    rss = res["big_input_peak_rss_mb"]
    print(f"| peak RSS, {res['big_input_urls']:,}-URL input | {rss:.0f} MB | ≤ 150 MB | "
          f"{verdict(rss <= 150)} | |")
    peak, per_host = res["polite_peak_connections"], res["per_host"]
    print(f"| most connections the server saw, --per-host {per_host} | {peak} | ≤ {per_host} | "
          f"{verdict(peak <= per_host)} | |")
    print("\nCommands (each pinned with `taskset`; nginx on the server core):\n")
    for cmd in res["commands"].values():
        print(f"    {cmd}")


if __name__ == "__main__":
    sys.exit(main())
