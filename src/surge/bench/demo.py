"""`surge demo`: short runs of the loop, crawler-step and many-request benchmarks on the embedded server,
printed as tables and written as one offline HTML report beside the playbook's claims (labelled as such).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surge.bench.http import CLIENTS, HttpBenchResult, run_http
from surge.bench.loops import LoopsResult, run_loops
from surge.bench.steps import StepsResult, run_steps
from surge.bench.targets import (
    ClientRun,
    HarnessError,
    SurgeServer,
    limiter_note,
    machine_facts,
    plan_cores,
    run_surge_fetch,
    server_cpu,
)
from surge.report.html import (
    BarChart,
    Claim,
    ClaimsTable,
    LineChart,
    Paragraph,
    PercentileChart,
    Section,
    Table,
    write_report,
)

__all__ = ["PLAYBOOK_CLAIMS", "DemoConfig", "DemoResult", "claims", "demo_sections", "run_demo"]

# The playbook's own figures, shown only as its claims beside what this run measured.
PLAYBOOK_CLAIMS: dict[str, float] = {
    "tasks_10k_asyncio_s": 2.431,
    "tasks_10k_uvloop_s": 0.847,
    "tasks_10k_speedup": 2.87,
    "requests_100k_asyncio_s": 250.45,
    "requests_100k_asyncio_rps": 399,
    "requests_100k_uvloop_s": 85.62,
    "requests_100k_uvloop_rps": 1168,
    "requests_100k_speedup": 2.92,
    "crawler_sync_s": 100.0,
    "crawler_basic_s": 10.0,
    "crawler_optimized_s": 3.0,
}


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Sizes of the three short runs; ``quick()`` is the tiny one the tests use."""

    tasks: tuple[int, ...] = (10_000, 100_000)
    ops: int = 100_000
    echo: int = 10_000
    loop_repeat: int = 1
    step_urls: int = 100
    step_delay_ms: int = 100
    requests: int = 30_000
    connections: int = 100
    wrk_duration: float | None = None
    series_seconds: float = 6.0

    @classmethod
    def quick(cls) -> DemoConfig:
        """A configuration that finishes in seconds: for tests and a first look."""
        return cls(tasks=(500,), ops=500, echo=50, step_urls=5, step_delay_ms=10, requests=2_000,
                   wrk_duration=1.0, series_seconds=1.0)


@dataclass(slots=True)
class DemoResult:
    """The three results, the report written from them and how long the demo took."""

    config: DemoConfig
    loops: LoopsResult
    steps: StepsResult
    http: HttpBenchResult
    machine: dict[str, Any]
    series: ClientRun | None = None
    elapsed_s: float = 0.0
    report: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`surge demo --json`)."""
        return {"benchmark": "demo", "elapsed_s": self.elapsed_s, "report": self.report,
                "machine": self.machine, "loops": self.loops.to_dict(), "steps": self.steps.to_dict(),
                "http": self.http.to_dict(), "series": self.series.to_dict() if self.series else None,
                "claims": [_claim_dict(c) for c in claims(self)]}


def run_demo(config: DemoConfig | None = None, *, report: str | Path | None = "surge-report.html",
             progress: Callable[[str], None] | None = None) -> DemoResult:
    """Run the loops, steps and http benchmarks in short form and write the HTML report.

    >>> res = run_demo(DemoConfig.quick(), report="/tmp/surge-report.html")   # doctest: +SKIP
    """
    cfg = config or DemoConfig()
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    say("1/3 event loops (playbook §6)")
    loops = run_loops(tasks=cfg.tasks, ops=cfg.ops, echo=cfg.echo, repeat=cfg.loop_repeat,
                      core=plan_cores().client)
    say("2/3 crawler steps (playbook §5)")
    steps = run_steps(urls=cfg.step_urls, delay_ms=cfg.step_delay_ms, progress=say)
    say("3/3 many requests (playbook §7)")
    http = run_http(requests=cfg.requests, connections=cfg.connections, clients=CLIENTS,
                    wrk_duration=cfg.wrk_duration, progress=say)
    say(f"surge fetch for {cfg.series_seconds:g} s: throughput over time")
    series = _series_run(cfg)
    result = DemoResult(cfg, loops, steps, http, machine_facts(), series=series)
    result.elapsed_s = time.perf_counter() - started
    if report is not None:
        write_report(report, title="surge demo: the playbook's experiments, measured here",
                     subtitle=_machine_line(result.machine), sections=demo_sections(result),
                     meta={"machine": result.machine, "elapsed_s": result.elapsed_s})
        result.report = str(report)
    return result


def _series_run(cfg: DemoConfig) -> ClientRun | None:
    # A run by duration, long enough for a per-second series; None when surge fetch cannot run here.
    plan = plan_cores()
    try:
        with SurgeServer(core=plan.server) as srv, server_cpu(srv) as used:
            run = run_surge_fetch(srv.url + "/", None, duration=cfg.series_seconds,
                                  connections=cfg.connections, core=plan.client)
    except HarnessError:
        return None
    return run.with_server_cpu(used[0])


def _machine_line(m: dict[str, Any]) -> str:
    return (f"{m['nproc']} cores ({m['cpu_model']}), {m['kernel']}, {m['python']}, uvloop "
            f"{m['loops'].get('uvloop') or '—'}, rloop {m['loops'].get('rloop') or '—'}; {m['cores']}")


# ---------------------------------------------------------------------------------------------- claims


def _claim_dict(c: Claim) -> dict[str, Any]:
    return {"what": c.what, "claimed": c.claimed, "measured": c.measured, "note": c.note}


def _run_of(http: HttpBenchResult, prefix: str, loop: str) -> ClientRun | None:
    return next((r for r in http.runs if r.client.startswith(prefix) and r.loop == loop), None)


def claims(result: DemoResult) -> list[Claim]:
    """The playbook's figures beside this run's, row by row; a size that differs from the claim's is named."""
    rows: list[Claim] = []
    n = 10_000 if 10_000 in result.config.tasks else min(result.config.tasks)
    size = "" if n == 10_000 else f"{n:,} coroutines here, 10,000 in the claim"
    gathered = {lp: result.loops.get(f"gather_sleep {n:,}", lp) for lp in ("asyncio", "uvloop")}
    t_a = gathered["asyncio"].elapsed_s if gathered["asyncio"] else None
    t_u = gathered["uvloop"].elapsed_s if gathered["uvloop"] else None
    rows += [
        Claim("§6 gather of sleeping coroutines, asyncio (s)", PLAYBOOK_CLAIMS["tasks_10k_asyncio_s"],
              _r(t_a, 3), note=size),
        Claim("§6 gather of sleeping coroutines, uvloop (s)", PLAYBOOK_CLAIMS["tasks_10k_uvloop_s"],
              _r(t_u, 3), note=size),
        Claim("§6 uvloop speed-up (×)", PLAYBOOK_CLAIMS["tasks_10k_speedup"],
              _r(t_a / t_u if t_a and t_u else None, 2), note=size),
    ]
    n_req = result.http.requests
    pa, pu = _run_of(result.http, "playbook", "asyncio"), _run_of(result.http, "playbook", "uvloop")
    for loop, run, key in (("asyncio", pa, "asyncio"), ("uvloop", pu, "uvloop")):
        here = (f"{n_req:,} requests in {run.elapsed_s:.2f} s, {run.success_pct:.1f} % ok" if run
                else "not run")
        rows.append(Claim(f"§7 playbook script on {loop} (req/s)",
                          PLAYBOOK_CLAIMS[f"requests_100k_{key}_rps"], _r(run.rps if run else None, 0),
                          note=f"claim: 100,000 in {PLAYBOOK_CLAIMS[f'requests_100k_{key}_s']} s against a "
                               f"remote httpbin; here: {here} against {result.http.target_kind}"))
    rows.append(Claim("§7 uvloop speed-up of the playbook script (×)",
                      PLAYBOOK_CLAIMS["requests_100k_speedup"],
                      _r(pu.rps / pa.rps if pa and pu and pa.rps else None, 2)))
    su = _run_of(result.http, "surge fetch", "uvloop")
    if su is not None and pu is not None and pu.rps:
        rows.append(Claim("§7 surge fetch on uvloop vs the playbook script on uvloop (×)", None,
                          _r(su.rps / pu.rps, 2), note="no claim: surge's own figure"))
    steps = dict(zip(result.steps.labels, result.steps.runs, strict=True))

    def step_time(prefix: str) -> float | None:
        return next((r.elapsed_s for lb, r in steps.items() if lb.startswith(prefix)), None)

    s1, s2, s3 = step_time("Step 1"), step_time("Step 2"), step_time("Step 3")
    delay = f"{result.config.step_urls} URLs × {result.config.step_delay_ms} ms here; claim: 100 URLs × 1 s"
    rows += [
        Claim("§5 step 1, synchronous (s)", PLAYBOOK_CLAIMS["crawler_sync_s"], _r(s1, 2), note=delay),
        Claim("§5 step 2, basic asyncio (s)", PLAYBOOK_CLAIMS["crawler_basic_s"], _r(s2, 2), note=delay),
        Claim("§5 step 3, OptimizedCrawler (s)", PLAYBOOK_CLAIMS["crawler_optimized_s"], _r(s3, 2),
              note=delay),
        Claim("§5 speed-up step 1 → 2 (×)", 10.0, _r(s1 / s2 if s1 and s2 else None, 1)),
        Claim("§5 speed-up step 2 → 3 (×)", round(10.0 / 3.0, 1), _r(s2 / s3 if s2 and s3 else None, 1),
              note="OptimizedCrawler caps one host at 5 connections (limit_per_host=5)"),
        Claim("§5 speed-up step 1 → 3 (×)", 33.0, _r(s1 / s3 if s1 and s3 else None, 1)),
    ]
    return rows


def _r(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


# ---------------------------------------------------------------------------------------------- report


def _percentile_points(run: ClientRun) -> list[tuple[float, float]]:
    pts = []
    for key, ms in run.latency_ms.items():
        if key.startswith("p"):
            try:
                pts.append((float(key[1:]), ms))
            except ValueError:
                continue
    return sorted(pts)


def _short(client: str) -> str:
    return "playbook script" if client.startswith("playbook") else client


def _run_name(run: ClientRun) -> str:
    return _short(run.client) if run.loop == "native" else f"{_short(run.client)} ({run.loop})"


def demo_sections(result: DemoResult) -> list[Section]:
    """The report: claims vs measured, then each benchmark as a table and charts, then the notes."""
    lp, st, ht = result.loops, result.steps, result.http
    sections: list[Section] = [
        Paragraph("Every figure below was measured in this run on this machine, except those in the column "
                  "headed \"the playbook claims\", which are copied from the playbook and labelled as its "
                  f"claims. The demo took {result.elapsed_s:.0f} s.", title="About this report"),
        ClaimsTable("The playbook's claims beside this run", claims(result),
                    claimed_label="the playbook claims", measured_label="measured here",
                    note="Sizes differ where a row says so; the playbook's §7 and §5 ran against a remote "
                         "httpbin, this run against a server on this machine."),
    ]
    # §6 loops
    rows = [[label, *[(r.ops_per_s if (r := lp.get(label, loop)) else None) for loop in lp.loops],
             *[(r.ratio_to_asyncio if (r := lp.get(label, loop)) else None) for loop in lp.loops]]
            for label in lp.rows()]
    sections += [
        Table("Event loops (§6): operations per second",
              ["workload", *[f"{x} ops/s" for x in lp.loops], *[f"{x} ×asyncio" for x in lp.loops]], rows),
        BarChart("Event loops (§6): speed relative to asyncio", lp.rows(),
                 {loop: [(r.ratio_to_asyncio if (r := lp.get(label, loop)) else None) for label in lp.rows()]
                  for loop in lp.loops}, y_label="× asyncio"),
    ]
    # §5 steps
    speed = st.speedups()
    sections += [
        Table(f"Crawler steps (§5): {st.urls} URLs, {st.delay_ms} ms each",
              ["step", "loop", "ok", "time s", "req/s", "× step 1", "× previous"],
              [[label, r.loop, r.ok, round(r.elapsed_s, 3), round(r.rps, 1), _r(a, 1), _r(b, 1)]
               for label, r, (a, b) in zip(st.labels, st.runs, speed, strict=True)], note=" ".join(st.notes)),
        BarChart("Crawler steps (§5): time (s)", st.labels, {"time s": [r.elapsed_s for r in st.runs]},
                 y_label="seconds"),
    ]
    # §7 requests
    clients = list(dict.fromkeys(("playbook script" if r.client.startswith("playbook") else r.client)
                                 for r in ht.runs))
    loops = list(dict.fromkeys(r.loop for r in ht.runs))

    def rps(client: str, loop: str) -> float | None:
        return next((r.rps for r in ht.runs if _run_name(r).startswith(client) and r.loop == loop), None)

    sections += [
        Table(f"Many requests (§7): {ht.requests:,} requests against {ht.target_kind}",
              ["client", "loop", "requests", "time s", "req/s", "success %", "p50 ms", "p99 ms", "× fastest",
               "client CPU %", "server CPU %", "limited by"],
              [[_short(r.client), r.loop, r.requests, round(r.elapsed_s, 3), round(r.rps),
                round(r.success_pct, 2), r.latency_ms.get("p50"), r.latency_ms.get("p99"), round(r.ratio, 3),
                round(r.client_cpu_pct),
                None if r.server_cpu_pct is None else round(r.server_cpu_pct), r.limited_by]
               for r in ht.runs],
              note=" ".join(ht.notes + [f"skipped: {s}" for s in ht.skipped])),
        BarChart("Many requests (§7): req/s per client and loop", clients,
                 {loop: [rps(c, loop) for c in clients] for loop in loops}),
        PercentileChart("Latency distribution per client (ms)",
                        {_run_name(r): pts for r in ht.runs if (pts := _percentile_points(r))}),
    ]
    sr = result.series
    if sr is not None and sr.series.get("t") and sr.series.get("rps"):
        t = [0.0 if x is None else x for x in sr.series["t"]]  # seconds: never missing
        sections.append(LineChart(
            f"surge fetch ({sr.loop}) for {result.config.series_seconds:g} s: throughput over time",
            {"req/s": (t, sr.series["rps"])},
            note=f"{sr.requests:,} requests, {sr.rps:,.0f} req/s overall, {sr.success_pct:.1f} % ok, "
                 f"client CPU {sr.client_cpu_pct:.0f} %, server CPU {sr.server_cpu_pct or 0:.0f} % "
                 f"({limiter_note(sr.client_cpu_pct, sr.server_cpu_pct, plan_cores())})."))
        if len(sr.series.get("p99_ms", ())) == len(t):
            sections.append(LineChart("surge fetch: latency over time (ms)",
                                      {k: (t, sr.series[f"{k}_ms"]) for k in ("p50", "p99")
                                       if len(sr.series.get(f"{k}_ms", ())) == len(t)}, y_label="ms"))
    sections.append(Table("Machine", ["fact", "value"],
                          [[k, str(v)] for k, v in result.machine.items()]))
    return sections
