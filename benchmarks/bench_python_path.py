"""Benchmark: the CPU surge spends in Python per request, without the kernel, plus two output costs alone.

1. ``surge fetch``'s path (Fetcher, engine, lanes, Client, Connection, llhttp, statistics, JSON-lines output)
   over a fake transport: every request head written is answered on the next loop turn with a fixed
   nginx-like response, so the figure is Python and uvloop work only. CPU time per request (process time),
   min and median of --repeat runs of N requests on uvloop.
2. ``encode_lines`` per record, and SQLite storage per outcome: one row per outcome (two B-tree inserts)
   against one row per committed batch (what ``--state`` stores).

    .venv/bin/python benchmarks/bench_python_path.py [-n 100000] [--repeat 7] [--per-host 100] [--json]

``--per-host 100`` with 100 workers keeps the host at its per-host limit (list mode's usual state);
``--per-host 0`` runs with no per-host cap, like ``surge fetch -n``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from array import array
from typing import Any, ClassVar

import uvloop

from surge.bench.targets import command_line, machine_facts, markdown_header, plan_cores
from surge.cli.fetch import _tune_gc
from surge.engine.fetcher import Fetcher
from surge.engine.input import ArgsSource, RequestDefaults
from surge.engine.items import Outcome, encode_lines
from surge.http import Client
from surge.http.connection import Connection
from surge.report.stats import Stats

RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 17:00:00 GMT\r\n"
            b"Content-Type: text/html\r\nContent-Length: 100\r\n"
            b"Last-Modified: Wed, 25 Nov 2026 16:00:00 GMT\r\nConnection: keep-alive\r\n"
            b"ETag: \"abc-64\"\r\nAccept-Ranges: bytes\r\n\r\n" + b"x" * 100)


class AnsweringTransport:
    """Answers every write with RESPONSE on the next loop turn (all answers of a turn in one callback)."""

    pending: ClassVar[list[Connection]] = []

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: Connection) -> None:
        self.loop = loop
        self.conn = conn
        self.closing = False

    def write(self, data: bytes) -> None:
        if not AnsweringTransport.pending:
            self.loop.call_soon(AnsweringTransport.answer)
        AnsweringTransport.pending.append(self.conn)

    @staticmethod
    def answer() -> None:
        conns, AnsweringTransport.pending = AnsweringTransport.pending, []
        for conn in conns:
            conn.data_received(RESPONSE)

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class FakeNetClient(Client):
    """surge's Client with connections on AnsweringTransport instead of sockets."""

    async def _connect(self, target: Any, guard: bool = False) -> Connection:
        loop = asyncio.get_running_loop()
        conn = Connection(loop, target.key, self._connection_lost)
        conn.connection_made(AnsweringTransport(loop, conn))  # type: ignore[arg-type]
        return conn


async def fetch_once(n: int, per_host: int | None, output: str) -> float:
    """CPU seconds per request of one ``surge fetch -n N -c 100 -o output`` over the fake transport."""
    client = FakeNetClient()
    fetcher = Fetcher(client=client, concurrency=100, per_host=per_host, output=output, stats=Stats())
    _tune_gc()
    source = ArgsSource(["http://127.0.0.1:8080/"], RequestDefaults("GET", [], None), count=n, forever=False)
    c0 = time.process_time()
    result = await fetcher.run(source)
    spent = time.process_time() - c0
    await client.aclose()
    if result.done != n:
        raise SystemExit(f"only {result.done} of {n} outcomes")
    return spent / n


def encode_cost(records: int = 1024, repeat: int = 200) -> float:
    u = "http://127.0.0.1:8080/"
    batch = [Outcome(u, u, "GET", 200, True, None, 1, 1.234 + i / 1000, 1.2, 100, "text/html",
                     1764089000.123456 + i, str(i)) for i in range(records)]
    t0 = time.process_time()
    for _ in range(repeat):
        encode_lines(batch)
    return (time.process_time() - t0) / repeat / records


def sqlite_costs(batches: int = 100, size: int = 1024) -> tuple[float, float]:
    """Seconds per outcome stored: a row each (seq, item_id UNIQUE, data) vs a row per batch (ids, lines)."""
    line = encode_lines([Outcome("http://127.0.0.1:8080/", "http://127.0.0.1:8080/", "GET", 200, True, None,
                                 1, 1.234, 1.2, 100, "text/html", 1764089000.123456, "1")])
    out = []
    for per_batch in (False, True):
        with tempfile.TemporaryDirectory() as d:
            db = sqlite3.connect(os.path.join(d, "s.db"), isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if per_batch:
                db.execute("CREATE TABLE outcomes (seq INTEGER PRIMARY KEY, ids BLOB NOT NULL, "
                           "data BLOB NOT NULL)")
            else:
                db.execute("CREATE TABLE outcomes (seq INTEGER PRIMARY KEY, item_id INTEGER NOT NULL UNIQUE, "
                           "data BLOB NOT NULL)")
            t0 = time.process_time()
            for b in range(batches):
                first = b * size + 1
                db.execute("BEGIN")
                if per_batch:
                    db.execute("INSERT INTO outcomes VALUES (?, ?, ?)",
                               (b + 1, array("q", range(first, first + size)).tobytes(), line * size))
                else:
                    db.executemany("INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?)",
                                   [(i, i, line) for i in range(first, first + size)])
                db.execute("COMMIT")
            out.append((time.process_time() - t0) / (batches * size))
            db.close()
    return out[0], out[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--per-host", type=int, default=100, help="0: no per-host cap")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    client_core = plan_cores().client
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})  # one core, as the other benchmarks' clients
    with tempfile.TemporaryDirectory() as d:
        runs = sorted(uvloop.run(fetch_once(args.n, args.per_host or None, os.path.join(d, "out.jsonl")))
                      for _ in range(args.repeat))
    encode = encode_cost()
    row_each, row_batch = sqlite_costs()
    res = {"machine": machine_facts(), "command": command_line(), "requests": args.n,
           "per_host": args.per_host, "us_per_request": [r * 1e6 for r in runs],
           "encode_us_per_record": encode * 1e6, "sqlite_us_per_outcome": {"row_each": row_each * 1e6,
                                                                          "row_per_batch": row_batch * 1e6}}
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    details = f"uvloop; core {client_core}; fake transport, no kernel"
    print(markdown_header(res["command"], res["machine"], details))
    print("| measure | µs |\n| --- | ---: |")
    print(f"| Python per request, surge fetch -n {args.n:,} -c 100 -o out.jsonl, min of {args.repeat} "
          f"| {runs[0] * 1e6:.2f} |")
    print(f"| the same, median | {statistics.median(runs) * 1e6:.2f} |")
    print(f"| encode_lines, per record (batches of 1,024) | {encode * 1e6:.2f} |")
    print(f"| SQLite, an outcome stored as a row of its own | {row_each * 1e6:.2f} |")
    print(f"| SQLite, an outcome stored in its batch's row | {row_batch * 1e6:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
