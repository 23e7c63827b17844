"""Benchmark: ``surge crawl`` against Scrapy, the reference Python crawler, on the same synthetic site.

``surge serve --site-pages P --site-links L`` on the server core; on the client core, each in its own process,
each round runs back to back (rounds interleaved, so a noisy moment hits every client alike):

- ``surge crawl URL/site/ -d all --per-host 8 -o out.jsonl --json --no-progress`` (loop and -c at defaults);
- the same with ``--state DIR`` (a fresh directory each round);
- Scrapy (``python -m surge.bench.peers.scrapy_crawler --per-host 8``): robots.txt obeyed, the seed's host,
  no depth limit, breadth-first, on the asyncio reactor over uvloop.

Each client writes one JSON line a response; the rows with status 200 are counted in both files, so the
same thing is counted, and checked against ``surge.server.site.site_reachable(P, L)``, the exact number of
pages a polite same-host crawl reaches. pages/s = those pages / the client's own elapsed time. Ratios
surge/Scrapy are taken within a round; the table shows medians.

    .venv/bin/python benchmarks/bench_crawl.py [--pages 20000] [--links 10] [--rounds 3] [--json]
    # a tiny check: --pages 500 --rounds 1
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from w3lib.url import canonicalize_url

from surge.bench.targets import (
    CorePlan,
    HarnessError,
    SurgeServer,
    command_line,
    limiter_note,
    machine_facts,
    markdown_header,
    pinned,
    plan_cores,
    run_timed,
    server_cpu,
)
from surge.server.site import site_reachable

PY = sys.executable

# (key, label) of the clients, in table and run order.
CLIENTS = (
    ("surge", "surge crawl -o out.jsonl"),
    ("surge_state", "surge crawl -o out.jsonl --state DIR"),
    ("scrapy", "Scrapy (CrawlerProcess, LinkExtractor)"),
)
BASELINE = "scrapy"
SHORT = {"surge": "surge", "surge_state": "surge --state", "scrapy": "Scrapy"}
# The CrawlRun fields the clients' table shows, each the median over the rounds.
MEDIANS = ("pages_200", "requests_sent", "elapsed_s", "wall_s", "pages_per_s", "client_cpu_pct",
           "server_cpu_pct")


@dataclass(slots=True)
class CrawlRun:
    """One crawler's run: what it reached (counted in its output file), its time and the CPU of each side."""

    client: str
    loop: str
    pages_200: int
    rows: int
    requests_sent: int
    elapsed_s: float
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    urls: frozenset[str] = frozenset()

    @property
    def pages_per_s(self) -> float:
        return self.pages_200 / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def client_cpu_pct(self) -> float:
        # Over the process's whole life (start-up is CPU work too), as the harness's ClientRun does.
        return 100.0 * self.client_cpu_s / (self.wall_s or 1e-9)

    @property
    def server_cpu_pct(self) -> float:
        # Over the crawl the client timed: the server idles while the client starts.
        return 100.0 * self.server_cpu_s / (self.elapsed_s or self.wall_s or 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return {"client": self.client, "loop": self.loop, "pages_200": self.pages_200, "rows": self.rows,
                "requests_sent": self.requests_sent, "elapsed_s": self.elapsed_s, "wall_s": self.wall_s,
                "pages_per_s": self.pages_per_s, "client_cpu_s": self.client_cpu_s,
                "server_cpu_s": self.server_cpu_s, "client_cpu_pct": self.client_cpu_pct,
                "server_cpu_pct": self.server_cpu_pct, "summary": self.summary}


def read_output(path: Path) -> tuple[int, int, frozenset[str]]:
    """(rows, rows with status 200, their URLs canonicalized) of a JSON-lines output file.

    Canonical form (w3lib, no fragment) on both sides: surge records canonical URLs; Scrapy records the URL
    it requested, fragment included when the first link it followed to that page had one.
    """
    rows, urls = 0, set()
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rows += 1
            rec = json.loads(line)
            if rec.get("status") == 200:
                urls.add(canonicalize_url(rec["url"]))
    return rows, len(urls), frozenset(urls)


def shown(cmd: list[str]) -> str:
    """A command as a reader would type it: ``python`` for this interpreter."""
    return shlex.join(["python" if part == PY else part for part in cmd])


def run_surge_crawl(key: str, seed: str, out: Path, *, per_host: int, extra: list[str], core: int | None,
                    server: SurgeServer) -> tuple[CrawlRun, str]:
    cmd = [PY, "-m", "surge", "crawl", seed, "-d", "all", "--per-host", str(per_host), "-o", str(out),
           "--json", "--no-progress", *extra]
    with server_cpu(server) as used:
        res = run_timed(pinned(cmd, core), timeout=900)
    try:
        summary = json.loads(res.stdout)
    except json.JSONDecodeError:
        last = (res.stderr.strip().splitlines() or ["no summary on stdout"])[-1]
        raise HarnessError(f"surge crawl ({key}) exited {res.returncode}: {last[-200:]}") from None
    crawl = summary.get("crawl") or {}
    robots = crawl.get("robots") or {}
    # Records include URLs robots.txt refused (attempts 0, nothing sent); robots.txt itself has no record.
    sent = (int(summary["requests"]) - int(robots.get("blocked", 0)) + int(robots.get("fetched", 0))
            + int(summary.get("retries", 0)))
    rows, pages, urls = read_output(out)
    run = CrawlRun(client=key, loop=str(summary.get("loop", "")), pages_200=pages, rows=rows,
                   requests_sent=sent, elapsed_s=float(summary["elapsed_s"]), wall_s=res.wall_s,
                   client_cpu_s=res.cpu_s, server_cpu_s=used[0] or 0.0, urls=urls,
                   summary={"requests": summary["requests"], "rps": summary.get("rps"), "crawl": crawl,
                            "errors": summary.get("errors"), "concurrency": summary.get("concurrency")})
    return run, shown(pinned(cmd, core))


def run_scrapy(seed: str, out: Path, *, per_host: int, core: int | None,
               server: SurgeServer) -> tuple[CrawlRun, str]:
    cmd = [PY, "-m", "surge.bench.peers.scrapy_crawler", "--url", seed, "--per-host", str(per_host),
           "--out", str(out)]
    with server_cpu(server) as used:
        res = run_timed(pinned(cmd, core), timeout=1800)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"the Scrapy peer exited {res.returncode}: {last[-200:]}")
    d = json.loads(res.stdout.strip().splitlines()[-1])
    rows, pages, urls = read_output(out)
    run = CrawlRun(client=BASELINE, loop=str(d["loop"]), pages_200=pages, rows=rows,
                   requests_sent=int(d["requests"]), elapsed_s=float(d["elapsed_s"]), wall_s=res.wall_s,
                   client_cpu_s=res.cpu_s, server_cpu_s=used[0] or 0.0, urls=urls, summary=d)
    return run, shown(pinned(cmd, core))


def one_round(seed: str, tmp: Path, *, rnd: int, per_host: int, plan: CorePlan, server: SurgeServer,
              commands: dict[str, str]) -> dict[str, CrawlRun]:
    core = plan.client
    runs: dict[str, CrawlRun] = {}
    say(f"round {rnd + 1}: surge crawl")
    runs["surge"], commands["surge"] = run_surge_crawl(
        "surge", seed, tmp / f"surge-{rnd}.jsonl", per_host=per_host, extra=[], core=core, server=server)
    say(f"round {rnd + 1}: surge crawl --state")
    state = ["--state", str(tmp / f"state-{rnd}")]
    runs["surge_state"], commands["surge_state"] = run_surge_crawl(
        "surge_state", seed, tmp / f"surge-state-{rnd}.jsonl", per_host=per_host, extra=state, core=core,
        server=server)
    say(f"round {rnd + 1}: Scrapy")
    runs["scrapy"], commands["scrapy"] = run_scrapy(
        seed, tmp / f"scrapy-{rnd}.jsonl", per_host=per_host, core=core, server=server)
    for key, run in runs.items():
        say(f"  {key}: {run.pages_200} pages with 200 in {run.elapsed_s:.2f} s ({run.pages_per_s:,.0f}/s)")
    # Files of this round are read; the next round's would only fill the disk.
    for path in tmp.glob(f"*-{rnd}.jsonl"):
        path.unlink()
    return runs


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20_000, help="pages of the synthetic site")
    ap.add_argument("--links", type=int, default=10, help="links on each page")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are shown")
    ap.add_argument("--per-host", type=int, default=8, help="connections per host, for every client")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of Markdown")
    args = ap.parse_args(argv)
    if importlib.util.find_spec("scrapy") is None:
        print("bench_crawl: scrapy is not installed (pip install -e '.[bench]')", file=sys.stderr)
        return 2
    try:
        res = measure(args, sys.argv[1:] if argv is None else argv)
    except HarnessError as exc:
        print(f"bench_crawl: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print_markdown(res)
    return 0 if res["agree"] else 1


def measure(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    plan = plan_cores()
    expected = site_reachable(args.pages, args.links)
    site = ["--site-pages", str(args.pages), "--site-links", str(args.links)]
    rounds: list[dict[str, CrawlRun]] = []
    commands: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="surge-bench-crawl-") as tmp_name, \
            SurgeServer(core=plan.server, extra=site) as server:
        seed = f"{server.url}/site/"
        commands["server"] = shown(pinned([PY, "-m", "surge", "serve", "--port", "0", *site], plan.server))
        for rnd in range(args.rounds):
            rounds.append(one_round(seed, Path(tmp_name), rnd=rnd, per_host=args.per_host, plan=plan,
                                    server=server, commands=commands))

    per_round: list[dict[str, Any]] = []
    for runs in rounds:
        base = runs[BASELINE]
        per_round.append({
            "ratios": {key: runs[key].pages_per_s / base.pages_per_s if base.pages_per_s else 0.0
                       for key, _ in CLIENTS if key != BASELINE},
            "pages_200": {key: runs[key].pages_200 for key, _ in CLIENTS},
            "same_urls": len({runs[key].urls for key, _ in CLIENTS}) == 1,
        })
    agree = all(r["same_urls"] and set(r["pages_200"].values()) == {expected} for r in per_round)

    def median(key: str, attr: str) -> float:
        return statistics.median(float(getattr(r[key], attr)) for r in rounds)

    table = []
    for key, label in CLIENTS:
        row: dict[str, Any] = {attr: median(key, attr) for attr in MEDIANS}
        row.update(key=key, label=label, loop=rounds[0][key].loop,
                   limited_by=limiter_note(row["client_cpu_pct"], row["server_cpu_pct"], plan),
                   ratio=(None if key == BASELINE else
                          statistics.median(r["ratios"][key] for r in per_round)))
        table.append(row)
    versions = {dist: _version(dist) for dist in ("scrapy", "Twisted", "uvloop", "lxml")}
    return {"command": command_line(["benchmarks/bench_crawl.py", *argv]),
            "machine": machine_facts(), "cores": plan.describe(), "versions": versions, "pages": args.pages,
            "links": args.links, "per_host": args.per_host, "rounds": args.rounds, "expected": expected,
            "agree": agree, "table": table, "per_round": per_round, "commands": commands,
            "runs": [{k: v.to_dict() for k, v in r.items()} for r in rounds]}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def print_markdown(res: dict[str, Any]) -> None:
    v, n = res["versions"], res["rounds"]
    print(f"## surge crawl vs Scrapy: a {res['pages']:,}-page site, {res['links']} links a page, "
          f"median of {n} round(s)\n")
    details = (f"{res['cores']}; uvloop {v['uvloop']}; Scrapy {v['scrapy']} (Twisted {v['Twisted']}, "
               f"lxml {v['lxml']})")
    print(markdown_header(res["command"], res["machine"], details))
    print(f"Pages a same-host crawl obeying robots.txt reaches (`site_reachable({res['pages']}, "
          f"{res['links']})`): **{res['expected']:,}**. "
          + ("Every client, every round, got a 200 from exactly these pages (the same URLs)."
             if res["agree"] else "**MISMATCH: the clients did not all reach them; see the rounds below.**")
          + "\n")
    print("| client | loop | pages (200) | requests sent | elapsed s | wall s | pages/s | client CPU | "
          "server CPU | limited by | × Scrapy |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for row in res["table"]:
        ratio = "1" if row["ratio"] is None else f"{row['ratio']:.2f}"
        print(f"| {row['label']} | {row['loop']} | {row['pages_200']:,.0f} | {row['requests_sent']:,.0f} | "
              f"{row['elapsed_s']:.2f} | {row['wall_s']:.2f} | {row['pages_per_s']:,.0f} | "
              f"{row['client_cpu_pct']:.0f} % | {row['server_cpu_pct']:.0f} % | {row['limited_by']} | "
              f"{ratio} |")
    keys = [key for key, _ in CLIENTS if key != BASELINE]
    print("\n| round | " + " | ".join(f"{SHORT[k]} / Scrapy, pages/s" for k in keys)
          + " | pages (200): " + ", ".join(SHORT[k] for k, _ in CLIENTS) + " | same URLs |")
    print("| ---: | " + " | ".join("---:" for _ in keys) + " | ---: | --- |")
    for i, r in enumerate(res["per_round"], 1):
        pages = ", ".join(f"{r['pages_200'][k]:,}" for k, _ in CLIENTS)
        print(f"| {i} | " + " | ".join(f"{r['ratios'][k]:.2f}" for k in keys)
              + f" | {pages} | {'yes' if r['same_urls'] else 'NO'} |")
    med = " | ".join(f"**{statistics.median(r['ratios'][k] for r in res['per_round']):.2f}**" for k in keys)
    print(f"| median | {med} | | |")
    print(NOTES.format(per_host=res["per_host"]))
    print("Commands (`surge serve` on one core, each client on the other; a round runs them in order):\n")
    for cmd in res["commands"].values():
        print(f"    {cmd}")


NOTES = """
Columns: *pages (200)* counts the rows with status 200 in each client's JSON-lines output; *requests sent*
is what went on the wire, robots.txt included (surge: records − URLs robots.txt refused, which are recorded
but never sent, + robots.txt fetches + retries; Scrapy: its `downloader/request_count`); *elapsed* is the
crawl as each client timed it (surge: its summary; Scrapy: `CrawlerProcess.crawl()` to the reactor's stop,
spider open and feed close included, imports excluded); *wall* is the whole process; pages/s = pages (200)
÷ elapsed; client CPU is over the client's wall time, server CPU over its elapsed time, in % of one core.
Each column is its own median over the rounds; × Scrapy is the median of the ratios taken within a round.

What each client does: both fetch robots.txt once and obey it, stay on the seed's host, have no depth limit,
keep at most {per_host} requests in flight to the host, follow `<a>`/`<area>` hrefs of 2xx HTML pages only,
fetch each URL once (fragments dropped) and write one JSON line per response. surge: `-d all --per-host
{per_host}`, `-c auto`, its default loop; breadth-first (its frontier is FIFO by depth). Scrapy: a plain
Spider with `LinkExtractor` in `CrawlerProcess`, `ROBOTSTXT_OBEY`, `allowed_domains` = the seed's host,
`DEPTH_LIMIT=0`, `CONCURRENT_REQUESTS_PER_DOMAIN={per_host}`, `CONCURRENT_REQUESTS=64`, no delay, no
AutoThrottle, no cookies, no telnet or remote control, breadth-first (`DEPTH_PRIORITY=1`, FIFO queues, as
Scrapy's FAQ says), the asyncio reactor on `uvloop.Loop` (`ASYNCIO_EVENT_LOOP`), jsonlines feed.

Where they are not the same:
- Scrapy runs with `CONCURRENT_ITEMS=1` (its default, 100, starts 100 tasks for each response's output
  and made it slower in trials here; no item pipeline runs, so nothing else changes): a setting in its
  favour. Everything not listed above is Scrapy's default: retries (2, as surge), redirects, meta-refresh,
  Referer headers, compression headers, stats and the URL-length filter all run.
- Deduplication: surge canonicalizes every link (w3lib) and remembers a 64-bit hash, before admitting it;
  Scrapy makes a Request for every link on a page (the LinkExtractor drops repeats within the page only),
  passes it through its spider middlewares and drops the duplicates in the scheduler by a SHA-1
  fingerprint of the canonical URL. Off-site links are dropped later still, by a downloader middleware.
- robots.txt: surge records a refused URL (`error: "robots"`, nothing sent), so its output has more rows
  than 200-pages; Scrapy drops it without a record. Both fetch robots.txt once, with the Protego parser.
- Link extraction: surge also honours `<meta name="robots" content="nofollow">` and `rel="nofollow"`,
  Scrapy's LinkExtractor does not; the site uses neither, so the same pages are reached.
- Connections: surge keeps its {per_host} connections open. Scrapy's requests are keep-alive too, but its
  Twisted pool opens a new connection whenever no idle one is at hand; connection counts are not measured
  here.
- A new `surge serve` is not started per client: all clients crawl the same server process, which keeps
  no state between crawls.
"""


if __name__ == "__main__":
    sys.exit(main())
