"""The engine against the embedded server: one outcome each, retries, Retry-After, timeouts, politeness."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from surge.aio import Backoff, RetryPolicy, set_testing
from surge.engine.engine import Engine, EngineOptions, EngineResult, RetryRules
from surge.engine.fetcher import Fetcher, fetch
from surge.engine.hostpolicy import HostPolicy
from surge.engine.input import IterSource
from surge.engine.items import Outcome, WorkItem
from surge.engine.memqueue import MemoryQueue
from surge.engine.sqlitequeue import SQLiteQueue
from surge.engine.workqueue import Lease
from surge.http import Client, Limits, Timeout
from surge.server import serve
from surge.server.app import TargetServer
from surge.server.limits import flaky_fails


class PeakSet(set[Any]):
    """The server's connection set, remembering the most connections open at once."""

    peak = 0

    def add(self, item: Any) -> None:
        super().add(item)
        self.peak = max(self.peak, len(self))


@asynccontextmanager
async def counting_server() -> AsyncIterator[tuple[str, PeakSet]]:
    server = TargetServer()
    conns = PeakSet()
    server.app.connections = conns
    url = await server.start()
    try:
        yield url, conns
    finally:
        await server.aclose()


async def run_engine(urls: list[str], *, per_host: int | None = None, client: Client | None = None,
                     **opts: Any) -> list[tuple[float, Outcome]]:
    loop = asyncio.get_running_loop()
    got: list[tuple[float, Outcome]] = []

    async def commit(batch: list[tuple[Lease, Outcome]]) -> None:
        t = loop.time()
        got.extend((t, o) for _, o in batch)

    opts.setdefault("flush_interval", 0.05)
    own = client is None
    client = client or Client()
    try:
        engine = Engine(MemoryQueue(IterSource(urls)), client, commit, policy=HostPolicy(per_host=per_host),
                        options=EngineOptions(**opts))
        await engine.run()
    finally:
        if own:
            await client.aclose()
    return got


@pytest.fixture
def no_backoff() -> Any:
    set_testing(True)
    yield
    set_testing(False)


async def test_every_item_gets_exactly_one_outcome_whatever_happens() -> None:
    async with serve() as url:
        paths = ["/", "/status/404", "/status/500", "/fault/reset", "/fault/bad-status",
                 "/fault/redirect-loop", "/fault/short-body", "/bytes/5000", "/redirect/2", "/gzip"]
        urls = [url + p for p in paths] * 5
        async with Client(max_redirects=3) as client:
            got = await run_engine(urls, client=client, concurrency=8, retry=RetryPolicy(attempts=1))
    outs = [o for _, o in got]
    assert sorted(int(o.key) for o in outs) == list(range(1, len(urls) + 1))
    by = {o.url.removeprefix(url): o for o in outs}
    assert by["/"].ok and by["/"].status == 200 and by["/"].bytes > 0 and by["/"].ttfb_ms is not None
    assert by["/status/404"].status == 404 and not by["/status/404"].ok and by["/status/404"].error is None
    assert by["/fault/reset"].error == "protocol" and by["/fault/reset"].status is None
    assert by["/fault/bad-status"].error == "protocol"
    assert by["/fault/redirect-loop"].error == "too_many_redirects"
    assert by["/redirect/2"].final_url.endswith("/redirect/0")


async def test_retries_follow_the_flaky_sequence(no_backoff: None) -> None:
    async with serve() as url:
        urls = [f"{url}/flaky?p=0.5&seed=7&key=k{i}" for i in range(40)]
        got = await run_engine(urls, concurrency=10, retry=RetryPolicy(attempts=4))
    assert len(got) == 40
    for _, o in got:
        i = int(o.key) - 1
        fails = [flaky_fails(0.5, 7, f"k{i}", n) for n in range(4)]
        expected = next((n + 1 for n, f in enumerate(fails) if not f), 4)
        assert o.attempts == expected
        assert o.status == (503 if all(fails) else 200)


async def test_retry_on_none_gives_one_attempt(no_backoff: None) -> None:
    async with serve() as url:
        got = await run_engine([f"{url}/status/503"] * 3, concurrency=3, retry_rules=RetryRules.parse("none"))
    assert [o.attempts for _, o in got] == [1, 1, 1]


@pytest.mark.looptime
async def test_retry_after_pauses_one_host_while_others_proceed() -> None:
    async with serve() as slow, serve() as fast:
        loop = asyncio.get_running_loop()
        start = loop.time()
        urls = [f"{slow}/ratelimit?rps=5&key=x"] * 20 + [f"{fast}/delay/100"] * 20
        policy = RetryPolicy(attempts=20, backoff=Backoff(0.01, 0.01))
        got = await run_engine(urls, concurrency=10, retry=policy)
    slow_done = [t - start for t, o in got if o.url.startswith(slow)]
    fast_done = [t - start for t, o in got if o.url.startswith(fast)]
    assert all(o.status == 200 for _, o in got)  # every 429 was retried after its Retry-After
    assert max(o.attempts for _, o in got if o.url.startswith(slow)) > 1
    # 20 requests at 5/s with burst 5 take at least 3 s of (virtual) time ...
    assert max(slow_done) >= 3.0
    # ... while the other host's work never waited for them: 20 x 100 ms over the free workers.
    assert max(fast_done) < 1.5


@pytest.mark.looptime
@pytest.mark.parametrize("ask", ["99999999", "9" * 300, "Fri, 31 Dec 9999 23:59:59 GMT", "3600"])
async def test_an_absurd_retry_after_neither_stalls_its_host_nor_is_retried(ask: str) -> None:
    # A server asking for three years (or a day) between requests: its answer stands as the outcome, and the
    # host's other requests (retries of 503s included) wait at most max_retry_after, not for ever.
    async with serve() as url:
        loop = asyncio.get_running_loop()
        start = loop.time()
        urls = [f"{url}/status/429?retry_after={ask}"] + [f"{url}/status/200?i={i}" for i in range(20)] \
            + [f"{url}/status/503?retry_after=1&i={i}" for i in range(3)]
        got = await run_engine(urls, concurrency=4, max_retry_after=10.0,
                               retry=RetryPolicy(attempts=3, backoff=Backoff(0.01, 0.01)))
        took = loop.time() - start
    by = {o.url.removeprefix(url): o for _, o in got}
    assert len(got) == len(urls)
    absurd = by[f"/status/429?retry_after={ask}"]
    assert (absurd.status, absurd.attempts, absurd.error) == (429, 1, None)
    assert all(o.status == 200 for _, o in got if "/status/200" in o.url)
    assert all(o.status == 503 and o.attempts == 3 for _, o in got if "/status/503" in o.url)
    # The host paused once for the cap (10 s), and the 503s' 1 s asks were obeyed: far from three years.
    assert 10.0 <= took < 30.0


@pytest.mark.looptime
async def test_a_retry_after_within_the_cap_is_obeyed_and_retried() -> None:
    async with serve() as url:
        loop = asyncio.get_running_loop()
        start = loop.time()
        got = await run_engine([f"{url}/status/503?retry_after=8"], concurrency=1, max_retry_after=10.0,
                               retry=RetryPolicy(attempts=2))
        took = loop.time() - start
    [(_, o)] = got
    assert (o.status, o.attempts) == (503, 2)
    assert 8.0 <= took < 9.0


def test_retry_timers_do_not_spin_on_uvloop() -> None:
    # uvloop fires a timer up to 0.5 ms before the time asked (whole milliseconds). A worker woken before
    # its retry is due finds nothing to take; if the engine then re-armed the timer for the same instant it
    # would be woken again at once, round and round until the clock caught up (and for ever on a virtual
    # clock). One timer call per retry is the most there can be.
    import uvloop

    fired = 0

    class Counting(Engine):
        def _on_timer(self) -> None:
            nonlocal fired
            fired += 1
            super()._on_timer()

    async def main() -> list[Outcome]:
        got: list[Outcome] = []

        async def commit(batch: list[tuple[Lease, Outcome]]) -> None:
            got.extend(o for _, o in batch)

        async with serve() as url, Client() as client:
            retry = RetryPolicy(attempts=5, backoff=Backoff(0.003, 0.003))
            engine = Counting(MemoryQueue(IterSource([f"{url}/status/500?i={i}" for i in range(6)])), client,
                              commit, options=EngineOptions(concurrency=1, retry=retry))
            await engine.run()
        return got

    got = uvloop.run(main())
    assert [(o.status, o.attempts) for o in got] == [(500, 5)] * 6
    assert 1 <= fired <= 6 * 4  # one per retry at most; a spinning worker makes hundreds


@pytest.mark.looptime
async def test_read_timeouts_are_outcomes_and_retried() -> None:
    async with serve() as url, Client(timeout=Timeout(connect=1.0, read=0.5)) as client:
        got = await run_engine([f"{url}/fault/silence"] * 3 + [f"{url}/"], client=client, concurrency=4,
                               retry=RetryPolicy(attempts=2, backoff=Backoff(0.01, 0.01)))
    errors = Counter((o.error, o.attempts) for _, o in got)
    assert errors == {("timeout_read", 2): 3, (None, 1): 1}


async def test_per_host_limit_holds_on_the_server_side() -> None:
    async with counting_server() as (url, conns), \
            Client(limits=Limits(total=100, per_host=3)) as client:
        got = await run_engine([f"{url}/delay/20"] * 30, per_host=3, client=client, concurrency=20)
    assert len(got) == 30
    assert conns.peak == 3  # never more, and the limit was actually used


async def test_unreachable_host_trips_the_breaker() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: connection refused
    loop = asyncio.get_running_loop()
    got: list[Outcome] = []

    async def commit(batch: list[tuple[Lease, Outcome]]) -> None:
        got.extend(o for _, o in batch)

    async with Client() as client:
        engine = Engine(MemoryQueue(IterSource([f"http://127.0.0.1:{port}/{i}" for i in range(50)])), client,
                        commit, policy=HostPolicy(breaker_threshold=5, breaker_cooldown=60.0),
                        options=EngineOptions(concurrency=1, retry=RetryPolicy(attempts=1)))
        t0 = loop.time()
        await engine.run()
        assert loop.time() - t0 < 30  # no 60 s cooldown waited: open-breaker items fail at once
    assert len(got) == 50 and all(o.error == "connect" for o in got)
    assert sum(o.attempts == 0 for o in got) >= 40


async def test_stop_lets_requests_in_flight_finish() -> None:
    async with serve() as url:
        stop = asyncio.Event()
        f = Fetcher(concurrency=5)
        seen: list[Outcome] = []
        async for o in f.stream([f"{url}/delay/50"] * 100, stop=stop):
            seen.append(o)
            stop.set()
    result = f.last_result
    assert result is not None and result.stopped and not result.forced and not result.complete
    assert len(seen) == result.done and 5 <= result.done < 100
    assert all(o.status == 200 for o in seen)  # stopped requests were finished, not cut off


async def test_cancel_records_cancelled_outcomes_without_state() -> None:
    async with serve() as url:
        seen: list[Outcome] = []
        f = Fetcher(concurrency=4)
        four = asyncio.Event()

        async def consume() -> None:
            async for o in f.stream([f"{url}/"] * 4 + [f"{url}/fault/silence"] * 4):
                seen.append(o)
                if len(seen) == 4:
                    four.set()

        task = asyncio.ensure_future(consume())
        await four.wait()  # the four quick ones are committed; the four silent ones hang in flight
        assert f.engine is not None and f.engine.in_flight == 4
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert f.last_result is not None and f.last_result.forced
        assert f.last_result.done == 8  # 4 ok + 4 cancelled, all committed
        assert f.engine.policy.in_flight == 0


async def test_surge_fetch_yields_outcomes() -> None:
    async with serve() as url:
        outs = [o async for o in fetch([f"{url}/status/201", f"{url}/bytes/3"], concurrency=2, save_body=True,
                                       save_headers=True)]
    by = {o.url.rsplit("/", 2)[-2]: o for o in outs}
    assert by["status"].status == 201
    body = by["bytes"].body
    assert body is not None and by["bytes"].body_encoding == "utf-8" and len(body) == 3
    assert by["bytes"].headers is not None


async def test_adaptive_concurrency_shrinks_under_429() -> None:
    async with serve() as url:
        f = Fetcher(concurrency="auto", max_concurrency=64, retries=0)
        await f.run([f"{url}/status/429"] * 300 + [f"{url}/"] * 10)
        assert f.engine is not None and f.engine.limit is not None
        stats = f.engine.limit.statistics()
        assert stats.min_seen < 32 and stats.dropped >= 300


async def test_live_progress_sees_the_requests_in_flight() -> None:
    # The progress line's "in flight" comes from the engine while it runs, and is 0 once it has finished.
    from surge.report.stats import Stats
    from surge.report.terminal import render_progress

    gate = asyncio.Event()
    entered = 0
    all_in = asyncio.Event()

    class Gated:
        def __init__(self, client: Client) -> None:
            self.client = client

        async def request(self, method: str, url: str, **kw: Any) -> Any:
            nonlocal entered
            entered += 1
            if entered == 5:
                all_in.set()
            await gate.wait()
            return await self.client.request(method, url, **kw)

    stats = Stats()
    async with serve() as url, Client() as client:
        fetcher = Fetcher(concurrency=5, client=Gated(client), stats=stats)
        task = asyncio.create_task(fetcher.run([f"{url}/"] * 8))
        await asyncio.wait_for(all_in.wait(), 10)
        assert stats.snapshot(series=False).in_flight == 5
        assert "in flight 5" in str(render_progress(stats.snapshot(series=False)))
        gate.set()
        result = await task
    assert result.done == 8
    assert stats.snapshot().in_flight == 0


class RequestCounting(Client):
    """Counts the requests awaited through request() (the rest went through submit())."""

    awaited = 0

    async def request(self, method: str, url: str, **kw: Any) -> Any:  # type: ignore[override]
        self.awaited += 1
        return await super().request(method, url, **kw)


async def test_workers_hand_plain_requests_to_their_lanes() -> None:
    # Once a connection is open, a worker's requests run from the client's callbacks (Client.submit) and
    # the worker coroutine itself only wakes for what the lane does not handle.
    async with serve() as url, RequestCounting() as client:
        got = await run_engine([f"{url}/"] * 2000, client=client, concurrency=10, per_host=10)
        assert sorted(int(o.key) for _, o in got) == list(range(1, 2001))
        assert all(o.status == 200 and o.attempts == 1 for _, o in got)
        assert client.awaited <= 20
        assert client.statistics().opened == 10


async def test_lanes_hand_back_retries_and_requests_with_bodies(no_backoff: None) -> None:
    # Statuses to retry go back to the worker's general path; an item with a body or headers is started by
    # the worker (request()), and the lane picks up again after it.
    from surge.engine.items import WorkItem

    async with serve() as url, RequestCounting() as client:
        items: list[Any] = []
        for i in range(300):
            if i % 10 == 3:
                items.append(WorkItem(f"{url}/echo", method="POST", body=b"x", key=f"k{i}"))
            elif i % 10 == 7:
                items.append(WorkItem(f"{url}/flaky?p=0.5&seed=3&key=f{i}", key=f"k{i}"))
            else:
                items.append(WorkItem(f"{url}/", headers=(("X-A", "1"),) if i % 10 == 5 else (), key=f"k{i}"))
        got = await run_engine(items, client=client, concurrency=6, retry=RetryPolicy(attempts=6))
    outs = {o.key: o for _, o in got}
    assert len(got) == 300 and len(outs) == 300
    assert all(o.status == 200 for o in outs.values())
    flaky = [outs[f"k{i}"] for i in range(7, 300, 10)]
    assert any(o.attempts > 1 for o in flaky)  # retried, through the worker
    assert 60 <= client.awaited < 300  # bodies and headers awaited; the plain ones mostly on lanes


async def test_adaptive_per_host_limit_shrinking_mid_run_loses_nothing(no_backoff: None) -> None:
    # 503s shrink the host's adaptive limit below what is in flight while the host is still queued to run;
    # this once crashed the run ("release() without a matching acquire()").
    async with serve() as url:
        urls = [f"{url}/status/503" if i % 7 == 3 else f"{url}/" for i in range(1500)]
        f = Fetcher(concurrency="auto", per_host=12, retries=1)
        outs = [o async for o in f.stream(urls)]
    assert sorted(int(o.key) for o in outs) == list(range(1, 1501))
    failing = len(range(3, 1500, 7))
    assert Counter(o.status for o in outs) == {200: 1500 - failing, 503: failing}
    assert f.last_result is not None and f.last_result.complete


async def test_input_that_is_not_a_request_gets_its_outcome_without_a_request() -> None:
    async with counting_server() as (url, conns):
        urls = [f"{url}/", "not a url", f"{url}/status/201", "ftp://h/x", f"{url}/"]
        got = await run_engine(urls, concurrency=4, retry=RetryPolicy(attempts=3))
        assert conns.peak <= 4
    outs = sorted((o for _, o in got), key=lambda o: int(o.key))
    assert [o.key for o in outs] == ["1", "2", "3", "4", "5"]
    assert [(o.status, o.error) for o in outs] == [
        (200, None), (None, "invalid_input"), (201, None), (None, "invalid_input"), (200, None)]
    bad = outs[1]
    assert (bad.url, bad.final_url, bad.ok) == ("not a url", "not a url", False)
    assert (bad.attempts, bad.bytes, bad.elapsed_ms) == (0, 0, 0.0)
    assert bad.started_at > 0
    async with counting_server() as (url, conns):
        got = await run_engine(["nope", "http:///nohost", f"{url}:99999/"], concurrency=4)
        assert conns.peak == 0  # nothing was sent anywhere
    assert sorted((o.key, o.error) for _, o in got) == [("1", "invalid_input"), ("2", "invalid_input"),
                                                        ("3", "invalid_input")]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_work_added_by_a_commit_is_done_before_the_run_ends(kind: str, tmp_path: Path) -> None:
    # A crawl adds the links it finds when it commits a page's outcome. With grows=True the engine may
    # not end on an empty queue while an outcome waits for its commit, nor before the queue, asked after
    # the last commit, is still empty. The last page committed adds three more: they must be fetched.
    async with serve() as url:
        seeds = IterSource([f"{url}/status/200?page={i}" for i in range(5)])
        queue: Any = MemoryQueue(seeds) if kind == "memory" else SQLiteQueue(tmp_path / "st", seeds)
        if kind == "sqlite":
            await queue.open()
        seen: list[Outcome] = []

        async def commit(batch: list[tuple[Lease, Outcome]]) -> None:
            for _, outcome in batch:
                seen.append(outcome)
                if len(seen) == 5:  # the last of the seeds: "links" found late
                    await queue.add([WorkItem(f"{url}/status/201?child={j}", key=f"c{j}", depth=1,
                                              parent=outcome.url) for j in range(3)])
            await queue.ack(batch)

        async with Client() as client:
            engine = Engine(queue, client, commit, policy=HostPolicy(per_host=2),
                            options=EngineOptions(concurrency=4, grows=True, flush_interval=30.0))
            result = await asyncio.wait_for(engine.run(), 10)
        if kind == "sqlite":
            assert await queue.pending() == 0
            await queue.close()
    assert sorted(o.key for o in seen) == ["1", "2", "3", "4", "5", "c0", "c1", "c2"]
    children = [o for o in seen if o.key.startswith("c")]
    assert {o.status for o in children} == {201} and {o.depth for o in children} == {1}
    assert result.done == 8 and result.exhausted


async def test_body_types_keep_only_the_bodies_asked_for() -> None:
    async with serve() as url:
        got = await run_engine([f"{url}/", f"{url}/site/", f"{url}/gzip"] * 2, concurrency=2, save_body=True,
                               body_types=frozenset({"text/html"}))
    kept = {(o.url.removeprefix(url), o.body is not None) for _, o in got}
    assert kept == {("/", False), ("/site/", True), ("/gzip", False)}
    assert all(o.body_encoding is None for _, o in got if o.body is None)


class BuggySender:
    """An HTTP client whose request() has a bug on URLs containing "bug" (a real Client underneath)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def request(self, method: str, url: str, **kw: Any) -> Any:
        if "bug" in url:
            raise KeyError("a bug, not a request failure")
        return await self.client.request(method, url, **kw)


class BuggyCallbacks(Client):
    """A Client whose submit() path reports a bug (not a surge error) to its submitter for "bug" URLs."""

    def submit(self, method: str, url: str, ticket: Any, keep_body: bool = True) -> bool:
        if "bug" not in url:
            return super().submit(method, url, ticket, keep_body)
        ticket.active = True
        asyncio.get_running_loop().call_soon(ticket.callback, ticket.ctx, None, ZeroDivisionError("bug"))
        return True


@pytest.mark.parametrize("path", ["awaited", "lanes"])
async def test_a_bug_stops_the_run_and_leaves_it_resumable(path: str, tmp_path: Path) -> None:
    # Only surge's own request errors become outcomes. Anything else raised while requesting is a bug: it
    # stops every worker and the feeder, is raised from run(), the outcomes finished before it are still
    # committed, and the state resumes to exactly one outcome per item.
    async with serve() as url:
        urls = [f"{url}/status/200?i={i}" for i in range(30)] + [f"{url}/status/200?bug"] \
            + [f"{url}/status/200?j={i}" for i in range(30)]
        committed: list[Outcome] = []

        async def run(client: Any) -> EngineResult:
            queue = await SQLiteQueue(tmp_path / "st", IterSource(urls)).open()

            async def commit(batch: list[tuple[Lease, Outcome]]) -> None:
                committed.extend(o for _, o in batch)
                await queue.ack(batch)

            try:
                opts = EngineOptions(concurrency=4, flush_interval=0.01, record_cancelled=False)
                engine = Engine(queue, client, commit, options=opts)
                return await asyncio.wait_for(engine.run(), 10)
            finally:
                await queue.close()

        expected = KeyError if path == "awaited" else ZeroDivisionError
        async with (BuggyCallbacks() if path == "lanes" else Client()) as client:
            sender = BuggySender(client) if path == "awaited" else client
            with pytest.raises(expected):
                await run(sender)
        assert not any("bug" in o.url for o in committed)  # never dressed up as an outcome
        assert all(o.status == 200 for o in committed) and len(committed) < len(urls)
        urls[30] = f"{url}/status/200?fixed"  # the same key (the line number), now without the bug
        async with Client() as client:
            result = await run(client)
    assert result.exhausted
    assert sorted(int(o.key) for o in committed) == list(range(1, len(urls) + 1))


class AwaitedOnly:
    """The same Client, seen without submit(): the engine takes its awaited path for every request."""

    def __init__(self, client: Client) -> None:
        self.request = client.request


_PATHS = ["/", "/status/404", "/status/500", "/status/429?retry_after=1", "/status/204", "/status/304",
          "/fault/reset", "/fault/bad-status", "/fault/redirect-loop", "/fault/short-body",
          "/fault/truncated-chunked", "/fault/big-headers?kb=100", "/fault/gzip-bomb?mb=2", "/fault/endless",
          "/bytes/5000", "/bytes/3000?chunked=1", "/redirect/2", "/gzip", "/deflate", "/brotli", "/zstd",
          "/site/", "/headers"]


def _comparable(o: Outcome) -> dict[str, Any]:
    # Everything but the clock's readings (and the Date header, a clock reading too).
    d = {k: v for k, v in o.__dict__.items() if k not in ("elapsed_ms", "ttfb_ms", "started_at")}
    if d.get("headers"):
        d["headers"] = [(k, v) for k, v in d["headers"] if k.lower() != "date"]
    return d


@pytest.mark.parametrize("save", [False, True])
async def test_lanes_and_the_awaited_path_record_the_same(save: bool, no_backoff: None) -> None:
    # The engine has two request paths: the lanes (the client's submit() callbacks) and the awaited
    # request(). For the same responses, normal and hostile, they must write the same records.
    async with serve() as url:
        urls = [url + p for p in _PATHS]
        records = []
        for wrap in (lambda c: c, AwaitedOnly):
            async with Client(max_redirects=3, max_body=1 << 20, timeout=Timeout(read=2.0, total=3.0)) as c:
                got = await run_engine(urls, client=wrap(c), concurrency=4, save_body=save, save_headers=save,
                                       retry=RetryPolicy(attempts=2))
            records.append({o.key: _comparable(o) for _, o in got})
    lanes, awaited = records
    assert sorted(lanes, key=int) == sorted(awaited, key=int) == [str(i) for i in range(1, len(urls) + 1)]
    for key in lanes:
        assert lanes[key] == awaited[key], _PATHS[int(key) - 1]
