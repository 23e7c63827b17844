"""Benchmark: `surge serve`'s `/` under `wrk -t1 -c100`, against a bare httptools server and nginx.

Each target runs pinned to one core and wrk to the other, one target at a time: nginx (1 worker, ~100-byte
body), a bare 15-line httptools Protocol server (the floor of any Python server on that loop), and `surge
serve` on uvloop and asyncio. Target (issue 2): surge serve on uvloop >= 30,000 req/s. Ratios, not seconds,
are the result: machines are shared and noisy. Median of --repeat runs.

    .venv/bin/python benchmarks/bench_server.py [--duration 5] [--connections 100] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from surge.bench.targets import (
    HarnessError,
    Nginx,
    ServerProcess,
    SurgeServer,
    command_line,
    free_port,
    machine_facts,
    markdown_header,
    pinned,
    plan_cores,
    run_wrk,
    tool_available,
    wait_for_port,
)

# The reference: the least a Python HTTP server can do per request on a given loop.
BARE_SERVER = '''\
import asyncio, sys, httptools
RESP = b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: 100\\r\\n\\r\\n" + b"x" * 100
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.p = t, httptools.HttpRequestParser(self)
    def data_received(self, d):
        try: self.p.feed_data(d)
        except httptools.HttpParserError: self.t.close()
    def on_message_complete(self): self.t.write(RESP)
async def main(port):
    srv = await asyncio.get_running_loop().create_server(P, "127.0.0.1", port, backlog=4096)
    await srv.serve_forever()
if sys.argv[2] == "uvloop":
    import uvloop; uvloop.run(main(int(sys.argv[1])))
else:
    asyncio.run(main(int(sys.argv[1])))
'''


class BareServer(ServerProcess):
    """The 15-line httptools server above, in its own process, pinned."""

    name = "bare httptools"

    def __init__(self, *, core: int | None, loop: str) -> None:
        self.core = core
        self.loop = loop
        self._script: Path | None = None

    def start(self) -> None:
        """Write the script, start it and wait until it accepts connections."""
        fd, name = tempfile.mkstemp(prefix="surge-bare-", suffix=".py")
        with open(fd, "w") as f:
            f.write(BARE_SERVER)
        self._script = Path(name)
        port = free_port()
        self._proc = proc = subprocess.Popen(pinned([sys.executable, name, str(port), self.loop], self.core),
                                             stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port("127.0.0.1", port, proc, time.monotonic() + 10)
        except HarnessError:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        """Stop the server and remove the script."""
        super().stop()
        if self._script is not None:
            self._script.unlink(missing_ok=True)
            self._script = None


def _targets(names: list[str], core: int | None) -> list[tuple[str, str, ServerProcess]]:
    out: list[tuple[str, str, ServerProcess]] = []
    for name in names:
        if name == "nginx":
            if tool_available("nginx") or Path("/usr/sbin/nginx").exists():
                out.append(("nginx (1 worker)", "native", Nginx(core=core)))
        elif name.startswith("bare-"):
            out.append(("bare httptools", name[5:], BareServer(core=core, loop=name[5:])))
        elif name.startswith("surge-"):
            out.append(("surge serve", name[6:], SurgeServer(core=core, loop=name[6:])))
        else:
            raise SystemExit(f"bench_server: error: unknown target {name!r}")
    return out


def _measure(server: ServerProcess, args: argparse.Namespace, client_core: int | None) -> dict[str, Any]:
    runs = []
    with server:
        url = server.url.rstrip("/") + "/"
        for _ in range(args.repeat):
            cpu0 = server.cpu_seconds()
            run = run_wrk(url, duration=args.duration, connections=args.connections, core=client_core)
            run.with_server_cpu(server.cpu_seconds() - cpu0)
            runs.append(run)
    best = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
    return {"rps": statistics.median(r.rps for r in runs), "runs": [round(r.rps) for r in runs],
            "p50_ms": best.latency_ms.get("p50"), "p99_ms": best.latency_ms.get("p99"),
            "server_cpu_pct": best.server_cpu_pct, "errors": best.errors}


def main() -> None:
    """Run the targets one after another and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="runs per target; the median is reported")
    parser.add_argument("--targets", default="nginx,bare-uvloop,surge-uvloop,bare-asyncio,surge-asyncio",
                        help="comma-separated: nginx, bare-<loop>, surge-<loop>")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args()
    if not tool_available("wrk"):
        raise SystemExit("bench_server: error: wrk is not installed")
    plan = plan_cores()
    rows = []
    for label, loop, server in _targets(args.targets.split(","), plan.server):
        try:
            result = _measure(server, args, plan.client)
        except HarnessError as exc:
            print(f"bench_server: {label} ({loop}) skipped: {exc}", file=sys.stderr)
            continue
        rows.append({"target": label, "loop": loop, **result})
    bare = {r["loop"]: r["rps"] for r in rows if r["target"] == "bare httptools"}
    nginx = next((r["rps"] for r in rows if r["target"].startswith("nginx")), None)
    for r in rows:
        r["vs_bare"] = r["rps"] / bare[r["loop"]] if r["loop"] in bare else None
        r["vs_nginx"] = r["rps"] / nginx if nginx else None
    command = command_line()
    report = {"command": command, "machine": machine_facts(), "cores": plan.describe(),
              "duration_s": args.duration, "connections": args.connections, "repeat": args.repeat,
              "rows": rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(markdown_header(command, report["machine"],
                          f"{plan.describe()}; wrk -t1 -c{args.connections} -d{args.duration:g}s, "
                          f"median of {args.repeat}"))
    print("| target | loop | req/s | × bare httptools | × nginx | p50 ms | p99 ms | server CPU % |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")

    def fmt(value: float | None, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    for r in rows:
        print(f"| {r['target']} | {r['loop']} | {r['rps']:,.0f} | {fmt(r['vs_bare'], '.2f')} | "
              f"{fmt(r['vs_nginx'], '.2f')} | {fmt(r['p50_ms'], '.2f')} | {fmt(r['p99_ms'], '.2f')} | "
              f"{fmt(r['server_cpu_pct'], '.0f')} |")


if __name__ == "__main__":
    main()
