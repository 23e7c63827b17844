"""`surge bench http`: the playbook's §7 experiment (N requests) with its own script, surge fetch, wrk, hey,
against the embedded server or nginx on another core, with the CPU each side used and which side limited.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from surge.bench.targets import (
    ClientRun,
    CorePlan,
    HarnessError,
    Nginx,
    ServerProcess,
    SurgeServer,
    limiter_note,
    machine_facts,
    measure_client,
    plan_cores,
    run_hey,
    run_peer,
    run_surge_fetch,
    run_wrk,
    tool_available,
)

__all__ = ["CLIENTS", "HttpBenchResult", "markdown_runs", "run_http", "target_server"]

# Every client the benchmark knows, in the order it runs them.
CLIENTS = ("playbook", "surge", "wrk", "hey")


@dataclass(slots=True)
class HttpBenchResult:
    """One `surge bench http` run: a row per client and loop, plus where and against what it ran."""

    target: str
    target_kind: str
    requests: int
    connections: int
    runs: list[ClientRun]
    machine: dict[str, Any]
    cores: str
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    command: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`--json`)."""
        return {"benchmark": "http", "command": self.command, "target": self.target,
                "target_kind": self.target_kind, "requests": self.requests, "connections": self.connections,
                "cores": self.cores, "machine": self.machine, "runs": [r.to_dict() for r in self.runs],
                "notes": self.notes, "skipped": self.skipped}

    def markdown(self) -> str:
        """The table, then the notes that say how to read it."""
        lines = [markdown_runs(self.runs), ""]
        lines += [f"- {n}" for n in self.notes]
        lines += [f"- skipped: {s}" for s in self.skipped]
        return "\n".join(lines)


def _fmt_ms(run: ClientRun, key: str) -> str:
    v = run.latency_ms.get(key)
    return "—" if v is None else f"{v:.2f}"


def markdown_runs(runs: Sequence[ClientRun]) -> str:
    """Markdown table of client runs: time, req/s, success, p50/p99, ratio to the fastest, CPU, limit."""
    lines = ["| client | loop | requests | time s | req/s | success % | p50 ms | p99 ms | × fastest "
             "| client CPU % | server CPU % | limited by |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        srv = "—" if r.server_cpu_pct is None else f"{r.server_cpu_pct:.0f}"
        lines.append(f"| {r.client} | {r.loop} | {r.requests:,} | {r.elapsed_s:.2f} | {r.rps:,.0f} | "
                     f"{r.success_pct:.1f} | {_fmt_ms(r, 'p50')} | {_fmt_ms(r, 'p99')} | {r.ratio:.2f} | "
                     f"{r.client_cpu_pct:.0f} | {srv} | {r.limited_by} |")
    return "\n".join(lines)


@contextlib.contextmanager
def target_server(target: str | None, plan: CorePlan, *,
                  server_loop: str = "auto") -> Iterator[tuple[str, str, ServerProcess | None]]:
    """Yield (url, kind, server): the embedded server (default), pinned nginx (``"nginx"``) or a given URL."""
    if target is None or target == "surge":
        with SurgeServer(core=plan.server, loop=server_loop) as srv:
            yield srv.url + "/", "surge serve", srv
    elif target == "nginx":
        with Nginx(core=plan.server) as ng:
            yield ng.url, "nginx", ng
    else:
        yield target, "external", None


def _finish(runs: list[ClientRun], plan: CorePlan, kind: str) -> list[str]:
    """Ratios to the fastest, the limiting side of each run, and the notes that explain the table."""
    fastest = max((r.rps for r in runs), default=0.0)
    for r in runs:
        r.ratio = r.rps / fastest if fastest else 0.0
        r.limited_by = limiter_note(r.client_cpu_pct, r.server_cpu_pct, plan)
    notes = [f"cores: {plan.describe()}. CPU % is of one core: the client's over its whole process life "
             "(interpreter start included), the server's over the run the client timed. A side at ≥ 90 % "
             "limited the run; 'neither core full' means latency or concurrency did."]
    server_bound = [r for r in runs if r.limited_by in ("server-bound", "both sides")]
    if server_bound and kind == "surge serve":
        notes.append(f"{len(server_bound)} of {len(runs)} runs filled the embedded server's core: those "
                     "figures measure `surge serve` (Python), not the client. On a 2-core machine the "
                     "server has one core; `--target nginx` measures the clients against a faster server.")
    if any(r.client == "wrk" for r in runs):
        notes.append("wrk runs for a duration, not a count (its request total is what it sent in that time).")
    if any(r.client.startswith("playbook") for r in runs):
        notes.append("The playbook's script: semaphore 1000, batches of 1000 gathered one after another, "
                     "aiohttp limit_per_host=100; it does not time requests, so it has no p50/p99. Its §7 "
                     "switches to uvloop with uvloop.install() inside a running asyncio loop, which does not "
                     "change that loop; here each loop runs in its own process.")
    return notes


def run_http(*, requests: int = 100_000, connections: int = 100, target: str | None = None,
             clients: Sequence[str] = CLIENTS, loops: Sequence[str] = ("asyncio", "uvloop"),
             server_loop: str = "auto", wrk_duration: float | None = None,
             fetch_extra: Sequence[str] = (),
             progress: Callable[[str], None] | None = None) -> HttpBenchResult:
    """Run §7: each client (and each loop for the Python ones) in turn against one pinned target.

    >>> res = run_http(requests=2000, clients=("surge", "hey"))   # doctest: +SKIP
    >>> print(res.markdown())                                     # doctest: +SKIP
    """
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown:
        raise HarnessError(f"unknown client {unknown[0]!r} (choose from {', '.join(CLIENTS)})")
    plan = plan_cores()
    say = progress or (lambda _msg: None)
    runs: list[ClientRun] = []
    skipped: list[str] = []
    timeout = max(300.0, requests / 200)
    with target_server(target, plan, server_loop=server_loop) as (url, kind, server):

        def measured(label: str, fn: Callable[[], ClientRun]) -> None:
            run = measure_client(label, fn, server, skipped=skipped, say=say)
            if run is not None:
                runs.append(run)

        for loop in loops:
            if "playbook" in clients:
                measured(f"playbook script on {loop}", partial(
                    run_peer, "massive", url, requests, loop=loop, core=plan.client, timeout=timeout))
            if "surge" in clients:
                measured(f"surge fetch on {loop}", partial(
                    run_surge_fetch, url, requests, connections=connections, loop=loop, core=plan.client,
                    extra=fetch_extra, timeout=timeout))
        if "wrk" in clients:
            if tool_available("wrk"):
                # wrk takes a duration: as long as the typical run so far, so it sends a comparable number.
                typical = statistics.median([r.elapsed_s for r in runs] or [1.0])
                dur = wrk_duration or min(30.0, max(1.0, typical))
                measured("wrk", lambda: run_wrk(url, duration=dur, connections=connections, core=plan.client))
            else:
                skipped.append("wrk (not installed)")
        if "hey" in clients:
            if tool_available("hey"):
                measured("hey", lambda: run_hey(url, requests=requests, connections=connections,
                                                core=plan.client))
            else:
                skipped.append("hey (not installed)")
    notes = _finish(runs, plan, kind)
    return HttpBenchResult(target=url, target_kind=kind, requests=requests, connections=connections,
                           runs=runs, machine=machine_facts(), cores=plan.describe(), notes=notes,
                           skipped=skipped)
