"""The crawler against the embedded server's synthetic site: what it reaches, once each, politely, durably."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from surge.crawl import Crawler
from surge.engine.items import Outcome
from surge.server.app import TargetServer
from surge.server.responses import response
from surge.server.site import PAGE_PREFIX, PRIVATE_PREFIX, LinkKind, page_links, site_reachable

PAGES, LINKS = 300, 8


@asynccontextmanager
async def site(pages: int = PAGES, links: int = LINKS, seed: int = 1,
               robots: Callable[..., bytes] | None = None) -> AsyncIterator[str]:
    server = TargetServer(site_pages=pages, site_links=links, seed=seed)
    if robots is not None:
        server.app._routes["robots.txt"] = robots
    url = await server.start()
    try:
        yield url
    finally:
        await server.aclose()


async def crawl_all(seeds: list[str], **options: Any) -> list[Outcome]:
    options.setdefault("concurrency", 8)
    return [o async for o in Crawler(seeds, **options).stream()]


def private_targets(pages: int, links: int, seed: int) -> set[int]:
    """The distinct private pages linked from the pages a polite same-host crawl reaches."""
    seen, todo, private = {0}, [0], set()
    while todo:
        page = todo.pop()
        for kind, target, _ in page_links(page, pages, links, seed):
            if kind is LinkKind.DISALLOWED:
                private.add(target)
            elif kind in (LinkKind.RELATIVE, LinkKind.ABSOLUTE, LinkKind.FRAGMENT) and target not in seen:
                seen.add(target)
                todo.append(target)
    return private


async def test_reaches_exactly_the_polite_same_host_site_once_each() -> None:
    async with site() as url:
        got = await crawl_all([f"{url}/site/"], depth=None)
    fetched = [o for o in got if o.error is None]
    assert all(o.status == 200 for o in fetched)
    assert len(fetched) == site_reachable(PAGES, LINKS, 1)
    # robots.txt disallows /site/private/: each one linked gets its record, and is never requested.
    blocked = [o for o in got if o.error == "robots"]
    assert {int(o.url.rsplit("/", 1)[1]) for o in blocked} == private_targets(PAGES, LINKS, 1)
    assert all(o.attempts == 0 and o.status is None for o in blocked)
    assert not [o for o in got if o.error not in (None, "robots")]
    # One record per URL, keys unique; depth and parent tell how each page was first reached.
    assert len({o.url for o in got}) == len(got) == len({o.key for o in got})
    by_url = {o.url: o for o in got}
    assert by_url[f"{url}/site/"].depth == 0
    for o in got:
        if o.url != f"{url}/site/":
            parent = by_url[o.parent]
            assert parent.depth == o.depth - 1 and o.url in parent.links


async def test_depth_limit_and_page_budget() -> None:
    async with site() as url:
        root = f"{url}/site/"
        one = await crawl_all([root], depth=1)
        budget = await crawl_all([root], depth=None, max_pages=25)
    # Depth 1: the seed and the same-host pages it links to (private ones are recorded as robots).
    first = {t for k, t, _ in page_links(0, PAGES, LINKS, 1)
             if k in (LinkKind.RELATIVE, LinkKind.ABSOLUTE, LinkKind.FRAGMENT) and t != 0}
    pages = {o.url for o in one if o.error is None}
    assert pages == {root} | {f"{url}{PAGE_PREFIX}{t}" for t in first}
    assert max(o.depth or 0 for o in one) == 1
    assert len(budget) == 25


async def test_links_off_site_are_not_followed_and_scope_any_follows_the_alias() -> None:
    async with site(pages=40, links=6) as url:
        host_only = await crawl_all([f"{url}/site/"], depth=None)
        alias = url.replace("127.0.0.1", "localhost")
        wide = await crawl_all([f"{url}/site/"], depth=None, scope="any",
                               exclude=[r"external\.invalid"])
    assert all(o.url.startswith(url) for o in host_only)
    assert any(o.url.startswith(alias) for o in wide)
    assert not any("external.invalid" in o.url for o in wide)


async def test_robots_answers_follow_rfc_9309() -> None:
    def unavailable(request: Any, conn: Any, rest: str) -> bytes:
        return response(503, b"busy\n")

    def missing(request: Any, conn: Any, rest: str) -> bytes:
        return response(404, b"no\n")

    async with site(pages=20, links=4, robots=unavailable) as url:
        down = await crawl_all([f"{url}/site/"], depth=None)
    async with site(pages=20, links=4, robots=missing) as url:
        open_ = await crawl_all([f"{url}/site/"], depth=None)
    # 5xx: the whole origin counts as disallowed; 4xx: as allowed, private pages included.
    assert [(o.error, o.status) for o in down] == [("robots", None)]
    assert any(PRIVATE_PREFIX in o.url and o.status == 200 for o in open_)
    assert not any(o.error for o in open_)


async def test_redirects_are_links_through_the_frontier() -> None:
    async with site() as url:
        seeds = [f"{url}/redirect-to?url=/site/", f"{url}/redirect-to?url=/site/private/1",
                 f"{url}/redirect-to?url=http://external.invalid/", f"{url}/fault/redirect-loop"]
        got = await crawl_all(seeds, depth=1)
    by = {o.url.removeprefix(url): o for o in got}
    # The redirect is recorded with its target as its one link; the target is crawled one level deeper.
    hop = by["/redirect-to?url=%2Fsite%2F"]
    assert hop.status == 302 and hop.links == [f"{url}/site/"] and hop.final_url == hop.url
    assert by["/site/"].status == 200 and by["/site/"].depth == 1 and by["/site/"].parent == hop.url
    # robots.txt applies to a redirect's target; a target off the site is not followed.
    assert by["/site/private/1"].error == "robots"
    assert not any(o.url.startswith("http://external.invalid") for o in got)
    # robots.txt disallows /fault/: the loop is never requested. Links of depth 2 are not followed.
    assert by["/fault/redirect-loop"].error == "robots"
    assert max(o.depth or 0 for o in got) == 1


async def test_a_redirect_chain_is_followed_and_a_loop_ends_at_the_first_url_seen_twice() -> None:
    async with site() as url:
        chain = await crawl_all([f"{url}/redirect/3"], depth=None)
        loop_ = await crawl_all([f"{url}/fault/redirect-loop"], depth=None, robots=False)
    assert [(o.url.removeprefix(url), o.status, o.depth) for o in chain] == [
        ("/redirect/3", 302, 0), ("/redirect/2", 302, 1), ("/redirect/1", 302, 2), ("/redirect/0", 200, 3)]
    assert [(o.status, o.links) for o in loop_] == [(302, [f"{url}/fault/redirect-loop"])]


async def test_stop_then_resume_crawls_each_page_exactly_once(tmp_path: Path) -> None:
    async with site() as url:
        seeds = [f"{url}/site/"]
        whole = await crawl_all(seeds, depth=None)
        out, state = tmp_path / "pages.jsonl", tmp_path / "state"
        stop = asyncio.Event()
        first = Crawler(seeds, depth=None, concurrency=8, output=str(out), state=str(state))
        n = 0
        async for _ in first.stream(stop=stop):
            n += 1
            if n == 40:
                stop.set()
        assert first.fetcher.last_result is not None and not first.fetcher.last_result.complete
        second = Crawler(seeds, depth=None, concurrency=8, output=str(out), state=str(state))
        result = await second.run()
    assert result.resumed and result.complete
    import orjson

    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert Counter(r["url"] for r in rows).most_common(1)[0][1] == 1
    assert Counter(r["key"] for r in rows).most_common(1)[0][1] == 1
    assert {r["url"] for r in rows} == {o.url for o in whole}


@pytest.mark.parametrize("bad, message", [
    ([], "at least one seed"),
    (["ftp://h/"], "not an http(s) URL"),
])
def test_bad_seeds_are_config_errors(bad: list[str], message: str) -> None:
    from surge.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        Crawler(bad)


async def test_adaptive_concurrency_counts_every_request_it_lets_through(tmp_path: Path) -> None:
    # -c auto: leases a lane could not start (robots.txt not known yet, no idle connection) come back to
    # their worker; one that finds the adaptive limit full must wait for a slot, not go out uncounted.
    async with site(pages=3000, links=8) as url:
        crawler = Crawler([f"{url}/site/"], depth=None, max_pages=1500, state=str(tmp_path / "st"),
                          output=str(tmp_path / "o.jsonl"))
        result = await crawler.run()
    assert result.complete and crawler.frontier.admitted == 1500
    engine = crawler.fetcher.engine
    assert engine is not None and engine.limit is not None and engine.limit.in_flight == 0


@pytest.mark.looptime
async def test_crawl_delay_spaces_the_requests_to_its_origin() -> None:
    def slow(request: Any, conn: Any, rest: str) -> bytes:
        return response(200, b"User-agent: *\nCrawl-delay: 2\n")

    loop = asyncio.get_running_loop()
    async with site(pages=30, links=4, robots=slow) as url:
        crawler = Crawler([f"{url}/site/"], depth=None, concurrency=8)
        start = loop.time()
        got = [o async for o in crawler.stream()]
        took = loop.time() - start
    assert crawler.delayed_hosts == {url: 2.0}
    assert len(got) > 5
    # One request every 2 s (virtual time) once robots.txt is read: the seed (taken before) and the first
    # request under the new cap go out at once, each later one 2 s after the one before.
    assert took >= 2.0 * (len(got) - 2)


@pytest.mark.looptime
async def test_cancelling_the_robots_fetch_leaves_the_other_waiters_to_fetch_it() -> None:
    from surge.crawl.robots import RobotsGate
    from surge.http import Client, Timeout

    server = TargetServer(site_pages=10, site_links=2)
    server.app._routes["robots.txt"] = lambda request, conn, rest: server.app._routes["fault"](
        request, conn, "silence")  # robots.txt never answers
    url = await server.start()
    try:
        async with Client(timeout=Timeout(connect=1.0, read=5.0)) as client:
            gate = RobotsGate(client)
            first = asyncio.create_task(gate.request("GET", f"{url}/site/"))
            second = asyncio.create_task(gate.request("GET", f"{url}/site/p/1"))
            await asyncio.sleep(1.0)  # virtual time: the first fetches robots.txt, the second waits on it
            assert gate.fetched == 1 and not second.done()
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            resp = await second  # it fetched robots.txt itself: no answer in 5 s, so everything is allowed
            assert resp.status == 200 and gate.fetched == 2 and gate._fetching == {}
    finally:
        await server.aclose()


async def test_sitemap_seeds_every_page_it_lists() -> None:
    async with site(pages=200, links=1, seed=5) as url:  # one link a page: most pages unreachable by links
        by_links = await crawl_all([f"{url}/site/"], depth=None)
        with_map = await crawl_all([f"{url}/site/"], depth=None, sitemap=True)
    pages = {o.url for o in with_map if o.status == 200 and "/site/" in o.url}
    assert len(pages) == 200 > len([o for o in by_links if o.status == 200])
    smap = next(o for o in with_map if o.url == f"{url}/sitemap.xml")
    assert smap.depth == 0 and smap.links is not None and len(smap.links) == 200
    assert smap.body is None  # read for its links, not kept


async def test_robots_rules_are_kept_for_a_bounded_number_of_origins() -> None:
    from surge.crawl.robots import RobotsGate
    from surge.http import Client

    async with site(pages=5, links=1) as a, site(pages=5, links=1) as b, site(pages=5, links=1) as c, \
            Client() as client:
        gate = RobotsGate(client, max_origins=2)
        for origin in (a, b, c):  # three ports: three origins
            assert (await gate.request("GET", f"{origin}/site/")).status == 200
        assert gate.fetched == 3 and gate.allows(f"{a}/site/") is None  # the oldest is forgotten
        assert gate.allows(f"{c}/site/private/1") is False
        await gate.request("GET", f"{a}/site/")
        assert gate.fetched == 4
