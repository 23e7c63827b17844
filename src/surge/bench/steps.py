"""`surge bench steps`: the playbook's §5 crawler steps (sync → basic asyncio → OptimizedCrawler) and surge
fetch, fetching the same slow URL (`/delay/100` on `surge serve`) N times: time and speed-up over each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from surge.bench.http import target_server
from surge.bench.targets import (
    ClientRun,
    machine_facts,
    measure_client,
    plan_cores,
    run_peer,
    run_surge_fetch,
)

__all__ = ["STEPS", "STEP_NAMES", "StepsResult", "run_steps"]

# (name, row label, peer module or "surge"): the playbook's steps run as it runs them, on plain asyncio.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("sync", "Step 1: synchronous (requests)", "sync_crawler"),
    ("gather", "Step 2: basic asyncio gather (aiohttp)", "gather_crawler"),
    ("optimized", "Step 3: OptimizedCrawler (aiohttp)", "optimized_crawler"),
    ("surge", "surge fetch", "surge"),
)
STEP_NAMES = tuple(name for name, _, _ in STEPS)


@dataclass(slots=True)
class StepsResult:
    """The §5 comparison: one row per step, speed-up over step 1 and over the row before."""

    url: str
    urls: int
    delay_ms: int
    labels: list[str]
    runs: list[ClientRun]
    machine: dict[str, Any]
    cores: str
    notes: list[str] = field(default_factory=list)
    command: str = ""

    def speedups(self) -> list[tuple[float | None, float | None]]:
        """(× step 1, × previous row) per row: the ratio of elapsed times; None without a step 1."""
        base = self.runs[0].elapsed_s if self.runs and self.labels[0].startswith("Step 1") else None
        out: list[tuple[float | None, float | None]] = []
        prev: float | None = None
        for r in self.runs:
            out.append((base / r.elapsed_s if base and r.elapsed_s else None,
                        prev / r.elapsed_s if prev and r.elapsed_s else None))
            prev = r.elapsed_s
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`--json`)."""
        rows = []
        for label, r, (vs_first, vs_prev) in zip(self.labels, self.runs, self.speedups(), strict=True):
            rows.append({"step": label, **r.to_dict(), "speedup_vs_step1": vs_first,
                         "speedup_vs_previous": vs_prev})
        return {"benchmark": "steps", "command": self.command, "url": self.url, "urls": self.urls,
                "delay_ms": self.delay_ms, "cores": self.cores, "machine": self.machine, "steps": rows,
                "notes": self.notes}

    def markdown(self) -> str:
        """The table and its notes."""
        lines = ["| step | loop | URLs | ok | time s | req/s | × step 1 | × previous |",
                 "|---|---|---:|---:|---:|---:|---:|---:|"]
        for label, r, (vs_first, vs_prev) in zip(self.labels, self.runs, self.speedups(), strict=True):
            first = "—" if vs_first is None else f"{vs_first:.1f}"
            prev = "—" if vs_prev is None else f"{vs_prev:.1f}"
            lines.append(f"| {label} | {r.loop} | {r.requests:,} | {r.ok:,} | {r.elapsed_s:.2f} | "
                         f"{r.rps:,.1f} | {first} | {prev} |")
        return "\n".join([*lines, "", *(f"- {n}" for n in self.notes)])


def run_steps(*, urls: int = 100, delay_ms: int = 100, target: str | None = None,
              steps: Sequence[str] = STEP_NAMES, server_loop: str = "auto", fetch_loop: str = "auto",
              fetch_extra: Sequence[str] = (), progress: Callable[[str], None] | None = None) -> StepsResult:
    """Run §5's three steps and surge fetch on the same URL list, each as a pinned subprocess.

    >>> res = run_steps(urls=5, delay_ms=10)   # doctest: +SKIP
    >>> print(res.markdown())                  # doctest: +SKIP
    """
    plan = plan_cores()
    say = progress or (lambda _msg: None)
    labels: list[str] = []
    runs: list[ClientRun] = []
    skipped: list[str] = []
    with target_server(target, plan, server_loop=server_loop) as (base, _kind, server):
        url = base if target not in (None, "surge") else f"{base}delay/{delay_ms}"
        for name, label, module in STEPS:
            if name not in steps:
                continue
            if module == "surge":
                # One connection per URL up to 100: the concurrency the basic gather gets from aiohttp.
                c = min(urls, 100)
                fn = partial(run_surge_fetch, url, urls, connections=c, core=plan.client, loop=fetch_loop,
                             extra=fetch_extra)
            else:
                fn = partial(run_peer, module, url, urls, loop="asyncio", core=plan.client)
            run = measure_client(label, fn, server, skipped=skipped, say=say)
            if run is not None:
                runs.append(run)
                labels.append(label)
    notes = [f"Every request waits {delay_ms} ms on the server, so one request at a time needs "
             f"≥ {urls * delay_ms / 1000:.2f} s and all at once ≥ {delay_ms / 1000:.2f} s."
             if target in (None, "surge") else f"Target: {url}."]
    if "optimized" in steps:
        notes += ["OptimizedCrawler keeps the playbook's settings (max_concurrent=20, limit_per_host=5): "
                  "against one host at most 5 requests are in flight, so it can be slower than the gather.",
                  "The playbook's OptimizedCrawler crashes as written (it reads self.max_concurrent, never "
                  "set); that one line is fixed, nothing else."]
    notes.append(f"cores: {plan.describe()}.")
    notes += [f"skipped {s}" for s in skipped]
    return StepsResult(url=url, urls=urls, delay_ms=delay_ms, labels=labels, runs=runs,
                       machine=machine_facts(), cores=plan.describe(), notes=notes)
