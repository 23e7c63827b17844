"""``Fetcher`` and ``surge.fetch()``: the engine over a queue filled from input, writing to a sink.

This is where exactly-once lives: with resume state, outcomes are committed to the state database first and
the output file is derived from them, cut back to the last recorded position on resume and re-exported.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from surge.aio import Backoff, RetryPolicy
from surge.aio.loops import open_files_headroom
from surge.engine.engine import Engine, EngineOptions, EngineResult, RetryRules
from surge.engine.hostpolicy import HostPolicy
from surge.engine.input import InputSource, IterSource, RequestDefaults
from surge.engine.items import Outcome, WorkItem, encode_lines
from surge.engine.memqueue import MemoryQueue
from surge.engine.sqlitequeue import SQLiteQueue
from surge.engine.workqueue import Lease
from surge.errors import ConfigError, OutputMismatch
from surge.sinks.base import Sink, open_sink
from surge.sinks.jsonl import JSONLSink

__all__ = ["Expansion", "FetchResult", "Fetcher", "fetch"]

Source = InputSource | Iterable[str | WorkItem] | AsyncIterable[str | WorkItem]
# Files kept free of sockets by fit_open_files(): output and state (SQLite opens 3 each), input, resolver,
# report, the loop's own.
_FD_RESERVE = 32


class Expansion(Protocol):
    """What turns a fetch into a crawl (:class:`surge.crawl.Crawler` implements it).

    ``expand(batch)`` reads each committed outcome (its body and headers are there), may change the record
    (add links, drop what was not asked for) and returns the new WorkItems: they are stored with the batch.
    ``wrap(client)`` returns the client the engine uses (e.g. one that obeys robots.txt). ``restore(urls)``
    is given every URL a resumed state already holds. ``fields`` are the record fields it adds.
    """

    fields: Sequence[str]

    def expand(self, batch: list[tuple[Lease, Outcome]]) -> list[WorkItem]: ...

    def wrap(self, client: Any) -> Any: ...

    def restore(self, urls: Iterable[str]) -> None: ...


@dataclass(slots=True)
class FetchResult:
    """How a :meth:`Fetcher.run` ended.

    ``done``: outcomes committed in this run; ``stopped``: ended early (stop requested or ``duration``);
    ``forced``: requests in flight were cut off; ``complete``: every input item has its outcome (with
    resume state: across runs); ``remaining``: items known and not done (resume state only);
    ``resumed``: the run continued an earlier one; ``done_before``: outcomes its earlier runs committed;
    ``reexported``: of those, how many were written to the output only now (the stop came in between).
    """

    done: int = 0
    stopped: bool = False
    forced: bool = False
    complete: bool = False
    remaining: int = 0
    not_started: int = 0
    resumed: bool = False
    done_before: int = 0
    reexported: int = 0


class Fetcher:
    """Fetch many URLs (or one URL many times) with exactly one Outcome per request.

    Concurrency is ``concurrency`` workers, or ``"auto"``: an adaptive limit (AIMD) up to
    ``max_concurrency`` that shrinks on 429/503/timeouts. ``per_host`` caps connections per host,
    ``rate``/``host_rate`` cap requests per second overall/per host. ``retries`` extra tries for results
    matching ``retry_on`` (default 429, 500, 502, 503, 504 and connect/timeout errors; Retry-After honoured
    up to ``max_retry_after`` seconds: a server asking for longer is not retried, and its host pauses for
    ``max_retry_after`` at most).
    ``timeout`` is the total per request; ``connect_timeout``/``read_timeout`` the phases.
    ``output`` is a path (format by extension) or a :class:`~surge.sinks.Sink`; ``state`` a directory that
    makes the run durable and resumable (rerun with the same arguments to resume). A redirect from a public
    address to a private one (loopback, RFC 1918, link-local...) ends in error ``blocked`` unless
    ``allow_private``; the URLs given are never refused.

    Example::

        fetcher = Fetcher(concurrency=100, output="out.jsonl")
        result = await fetcher.run(["http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b"])

        async for outcome in Fetcher(concurrency=10).stream(urls):
            print(outcome.status, outcome.url)
    """

    def __init__(
        self,
        *,
        concurrency: int | Literal["auto"] = "auto",
        max_concurrency: int = 512,
        per_host: int | None = None,
        rate: float | None = None,
        host_rate: float | None = None,
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 30.0,
        retries: int = 2,
        retry_on: str | RetryRules | None = None,
        backoff: Backoff | None = None,
        max_redirects: int = 10,
        max_retry_after: float = 60.0,
        max_body: int | None = 64 * 2**20,
        save_body: bool = False,
        save_headers: bool = False,
        verify: bool | str = True,
        allow_private: bool = False,
        output: str | Sink | None = None,
        state: str | os.PathLike[str] | None = None,
        fingerprint: str = "",
        describe: str = "",
        duration: float | None = None,
        breaker_threshold: int = 20,
        breaker_cooldown: float = 30.0,
        client: Any = None,
        stats: Any = None,
        expansion: Expansion | None = None,
    ) -> None:
        if concurrency != "auto" and (not isinstance(concurrency, int) or concurrency < 1):
            raise ConfigError(f"concurrency must be a positive integer or 'auto', got {concurrency!r}")
        if retries < 0:
            raise ConfigError("retries must be >= 0")
        for name, value in (("rate", rate), ("host_rate", host_rate), ("timeout", timeout),
                            ("duration", duration)):
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if per_host is not None and per_host < 1:
            raise ConfigError(f"per-host must be >= 1, got {per_host}")
        if not max_retry_after >= 0:
            raise ConfigError(f"max_retry_after must be >= 0, got {max_retry_after}")
        adaptive = concurrency == "auto"
        self.defaults = RequestDefaults(method, headers, body)
        self.options = EngineOptions(
            concurrency=32 if adaptive else int(concurrency),
            adaptive=adaptive,
            max_concurrency=max_concurrency,
            rate=rate,
            retry=RetryPolicy(attempts=retries + 1, backoff=backoff or Backoff(0.2, 10.0),
                              max_retry_after=max_retry_after),
            max_retry_after=max_retry_after,
            retry_rules=retry_on if isinstance(retry_on, RetryRules)
            else RetryRules.parse(retry_on) if retry_on is not None else RetryRules(),
            save_body=save_body,
            save_headers=save_headers,
            duration=duration,
            record_cancelled=state is None,
            # Each lease from the state database is a transaction: fewer, larger ones cost less per item.
            lease_size=1000 if state is not None else 0,
        )
        # Optional record fields the output gives columns to (CSV, SQLite); JSON lines carry what is set.
        self.extra_fields: list[str] = (["headers"] if save_headers else []) + \
            (["body", "body_encoding"] if save_body else [])
        self.expansion = expansion
        if expansion is not None:
            # A crawl: outcomes add work, and the pages are read for it (what the record keeps is the
            # expansion's to decide: it drops the body and headers it was not asked to keep).
            self.options.grows = True
            self.options.save_body = self.options.save_headers = True
            self.extra_fields += [f for f in expansion.fields if f not in self.extra_fields]
        self.per_host = per_host
        self.host_rate = host_rate
        self.breaker_threshold = breaker_threshold
        self.breaker_cooldown = breaker_cooldown
        self.timeout = (connect_timeout, read_timeout, timeout)
        self.max_redirects = max_redirects
        self.max_body = max_body
        self.verify = verify
        self.allow_private = allow_private
        self.output = output
        self.state = state
        self.fingerprint = fingerprint
        self.describe = describe
        self._client = client
        self.stats = stats
        self.engine: Engine | None = None
        self.last_result: FetchResult | None = None
        self._io: ThreadPoolExecutor | None = None
        self._fitted = False

    # -- wiring -----------------------------------------------------------------------------------------

    def fit_open_files(self) -> str | None:
        """Lower the concurrency, and with it the connections, to what the open-files limit leaves room for.

        Each request in flight holds a socket: past the limit, connecting fails (EMFILE) and requests would
        end as ``connect`` errors. ``_FD_RESERVE`` files stay free for the output, the state and the rest.
        Returns a one-line note when it lowered anything, else None. Only for the client the fetcher makes
        (a client passed in is the caller's); once per fetcher: :meth:`run` calls it, the CLI first to say so.
        """
        if self._fitted or self._client is not None:
            return None
        self._fitted = True
        room = open_files_headroom()
        if room is None:
            return None
        limit, free = room
        budget = max(free - _FD_RESERVE, 1)
        opts = self.options
        asked = opts.max_concurrency if opts.adaptive else opts.concurrency
        if asked <= budget and (self.per_host is None or self.per_host <= budget):
            return None
        if opts.adaptive:
            opts.max_concurrency = min(opts.max_concurrency, budget)
        opts.concurrency = min(opts.concurrency, budget)
        if self.per_host is not None:
            self.per_host = min(self.per_host, budget)
        return (f"concurrency lowered from {asked} to {min(asked, budget)} to fit the open-files limit "
                f"({limit}, {free} free; raise it with ulimit -n)")

    def _source(self, source: Source) -> InputSource:
        if hasattr(source, "checkpoint") and hasattr(source, "read"):
            return source  # type: ignore[return-value]
        return IterSource(source, self.defaults)

    def _make_client(self) -> Any:
        from surge.http import Client, Limits, Timeout  # noqa: PLC0415 - the engine works with any Sender

        connect, read, total = self.timeout
        workers = self.options.max_concurrency if self.options.adaptive else self.options.concurrency
        per_host = self.per_host or workers
        # A crawl's items carry no headers (they keep the client's fast path): the run's go on the client.
        crawl = self.expansion is not None
        headers = dict(self.defaults.headers) if crawl and self.defaults.headers else None
        # A crawl follows redirects itself, as links (scope, robots.txt and dedup apply to their targets).
        return Client(timeout=Timeout(connect=connect, read=read, total=total),
                      limits=Limits(total=max(workers, per_host), per_host=per_host),
                      max_redirects=self.max_redirects, follow_redirects=not crawl, max_body=self.max_body,
                      verify=self.verify, headers=headers, allow_private=self.allow_private)

    def _sink(self) -> Sink | None:
        if self.output is None or not isinstance(self.output, str):
            return self.output
        return open_sink(self.output, extra_fields=self.extra_fields)

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        # Sinks run on one thread of their own: the loop never waits on the disk, and writes stay ordered.
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    # -- running ----------------------------------------------------------------------------------------

    async def run(self, source: Source, *, stop: asyncio.Event | None = None) -> FetchResult:
        """Fetch everything from ``source`` (URLs, WorkItems, or an InputSource); outcomes go to ``output``.

        Returns when the input is done, ``stop`` is set (requests in flight finish first) or ``duration``
        passes. Cancelling it cuts off requests in flight (see :class:`~surge.engine.engine.Engine`).
        """
        return await self._run(self._source(source), stop, None)

    async def stream(self, source: Source, *, stop: asyncio.Event | None = None) -> AsyncIterator[Outcome]:
        """Like :meth:`run`, yielding each Outcome once it is committed (in batches, at most ~0.2 s late).

        The run pauses when the consumer falls behind. Leaving the loop early cancels the run.
        """
        out: asyncio.Queue[list[Outcome] | None] = asyncio.Queue(maxsize=4)
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._run(self._source(source), stop, out))
        try:
            while not (task.done() and out.empty()):
                getter = loop.create_task(out.get())
                await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()  # the run ended; the loop condition drains what is left
                    continue
                batch = getter.result()
                if batch is None:
                    break
                for o in batch:
                    yield o
            await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _run(self, source: InputSource, stop: asyncio.Event | None,
                   out: asyncio.Queue[list[Outcome] | None] | None) -> FetchResult:
        result = FetchResult()
        self.last_result = None
        self._io = io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="surge-sink")
        sink = self._sink()
        squeue: SQLiteQueue | None = None
        client = self._client
        own_client = client is None
        try:
            if self.state is not None:
                squeue = SQLiteQueue(self.state, source, fingerprint=self.fingerprint, describe=self.describe)
                await squeue.open()
                result.resumed = squeue.resumed
                queue: Any = squeue
            else:
                queue = MemoryQueue(source)
            if sink is not None:
                if squeue is not None:
                    result.reexported = await self._resume_output(squeue, sink)
                else:
                    await self._in_thread(sink.open, None)
            if own_client:
                self.fit_open_files()  # after the state and the output took their files
                client = self._make_client()
            expansion = self.expansion
            if expansion is not None:
                client = expansion.wrap(client)
                if squeue is not None and squeue.resumed:
                    expansion.restore(await squeue.stored_urls())
            if squeue is not None and squeue.resumed:
                result.done_before = (await squeue.counts())[1]
            if self.stats is not None and source.total is not None:
                self.stats.set_total(source.total - result.done_before)

            export = _exporter(sink) if sink is not None else None
            jsonl = sink if isinstance(sink, JSONLSink) else None

            async def commit(batch: list[tuple[Lease, Outcome]]) -> None:
                # A crawl's new work commits with the outcomes it came from: a page is never done while
                # its links are lost.
                new = expansion.expand(batch) if expansion is not None else None
                if squeue is not None:
                    # Durable first: the outcome rows commit (the items are done), then the output follows,
                    # on the database thread in the same hop.
                    await squeue.ack(batch, export=export, add=new)
                    if out is not None:
                        await out.put([o for _, o in batch])
                    return
                outcomes = [o for _, o in batch]
                if jsonl is not None:
                    # Encoding is CPU work that holds the GIL wherever it runs; on the loop it costs only
                    # itself, while on the sink thread the two threads' fight for the GIL cost as much
                    # again (0.5 us per record). Only the write, which may block, goes to the thread.
                    await self._in_thread(_write_encoded_flush, jsonl, encode_lines(outcomes))
                elif sink is not None:
                    await self._in_thread(_write_flush, sink, outcomes)
                if new:
                    await queue.add(new)
                await queue.ack(batch)
                if out is not None:
                    await out.put(outcomes)

            policy = HostPolicy(per_host=self.per_host, adaptive=self.options.adaptive,
                                host_rate=self.host_rate, breaker_threshold=self.breaker_threshold,
                                breaker_cooldown=self.breaker_cooldown)
            self.engine = engine = Engine(queue, client, commit, policy=policy, options=self.options,
                                          stats=self.stats)
            er: EngineResult | None = None
            try:
                er = await engine.run(stop)
            finally:
                if er is None:
                    result.forced = True
                    result.done = engine._committed
                if self.stats is not None and own_client and hasattr(client, "statistics"):
                    cs = client.statistics()
                    self.stats.connections(cs.opened, cs.reused, cs.closed)
            result.done = er.done
            result.stopped = er.stopped
            result.not_started = er.not_started
            if squeue is not None:
                result.remaining = await squeue.pending()
                result.complete = squeue.exhausted and result.remaining == 0
            else:
                result.complete = er.exhausted and not er.stopped
            return result
        finally:
            if own_client and client is not None:
                await asyncio.shield(client.aclose())
            if sink is not None:
                await asyncio.shield(self._in_thread(sink.close))
            if squeue is not None:
                result.remaining = await squeue.pending()
                await asyncio.shield(squeue.close())
            if out is not None:
                with contextlib.suppress(asyncio.QueueFull):
                    out.put_nowait(None)  # a full queue is fine: the consumer also watches the run's task
            self.last_result = result
            io.shutdown(wait=False)

    async def _resume_output(self, squeue: SQLiteQueue, sink: Sink) -> int:
        # The output holds outcomes up to `seq` and ended at `pos` when last recorded. Anything after `pos`
        # may be a partial or unrecorded write: cut it off, then re-export each committed outcome after `seq`.
        seq, pos = await squeue.export_state()
        try:
            await self._in_thread(sink.open, pos if pos >= 0 else None)
        except OutputMismatch:
            # The output lost rows it had (deleted to free space, cut): write it again, whole, from the state.
            seq, pos = 0, -1
            await self._in_thread(sink.open, None)
        n = 0
        while True:
            rows = await squeue.outcomes_after(seq)
            if not rows:
                break
            pos = await self._in_thread(_write_flush, sink, [o for _, o in rows])
            seq = rows[-1][0]
            n += len(rows)
            squeue.note_exported(seq, pos)
        if n or pos < 0:
            squeue.note_exported(seq, await self._in_thread(sink.flush))
            await squeue.sync_exported()
        return n


def _write_encoded_flush(sink: JSONLSink, data: bytes) -> int:
    sink.write_encoded((data,))
    return sink.flush()


def _write_flush(sink: Sink, outcomes: list[Outcome]) -> int:
    sink.write(outcomes)
    return sink.flush()


def _exporter(sink: Sink) -> Callable[[list[Outcome], bytes], int]:
    """Writes a committed batch to ``sink``; JSON-lines output takes the bytes encoded for the state."""
    if isinstance(sink, JSONLSink):
        def export_lines(outcomes: list[Outcome], lines: bytes) -> int:
            sink.write_encoded((lines,))
            return sink.flush()
        return export_lines

    def export(outcomes: list[Outcome], lines: bytes) -> int:
        sink.write(outcomes)
        return sink.flush()
    return export


def fetch(urls: Source, **options: Any) -> AsyncIterator[Outcome]:
    """Fetch ``urls`` and yield one :class:`Outcome` per request; ``options`` are :class:`Fetcher`'s.

    Example::

        async for outcome in surge.fetch(["http://127.0.0.1:8080/"] * 3, concurrency=3):
            print(outcome.status, outcome.elapsed_ms)
    """
    return Fetcher(**options).stream(urls)
