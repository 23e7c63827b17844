"""The synthetic site: determinism, link mix, robots.txt, sitemap; site_reachable against a real crawl."""

from __future__ import annotations

import html
import re
from collections import Counter, deque
from itertools import pairwise
from urllib.parse import urldefrag, urljoin, urlsplit

import orjson
import pytest
from protego import Protego
from server_raw import RawConnection, fetch

from surge.server import serve, site_reachable
from surge.server.site import LinkKind, page_links

_HREF = re.compile(r'href="([^"]*)"')


def test_graph_is_deterministic() -> None:
    assert [page_links(p, 500, 10, 3) for p in range(50)] == [page_links(p, 500, 10, 3) for p in range(50)]
    assert [page_links(p, 500, 10, 3) for p in range(50)] != [page_links(p, 500, 10, 4) for p in range(50)]
    assert site_reachable(500, 10, 3) == site_reachable(500, 10, 3)


def test_every_link_kind_appears() -> None:
    kinds = Counter(kind for p in range(200) for kind, _, _ in page_links(p, 200, 10, 0))
    assert set(kinds) == {LinkKind.RELATIVE, LinkKind.ABSOLUTE, LinkKind.FRAGMENT, LinkKind.DISALLOWED,
                          LinkKind.ALIAS, LinkKind.EXTERNAL}
    hrefs = [link for p in range(200) for link in page_links(p, 200, 10, 0)]
    duplicates = sum(1 for p in range(200) for a, b in pairwise(page_links(p, 200, 10, 0)) if a == b)
    assert duplicates > 0 and len(hrefs) == 2000


def test_reachable_edge_cases() -> None:
    assert site_reachable(0, 10) == 0
    assert site_reachable(1, 10) == 1
    assert site_reachable(100, 0) == 1


async def _crawl(url: str) -> tuple[set[str], Counter[str]]:
    """A polite same-host BFS over HTTP from /site/, the way a crawler would do it."""
    conn = await RawConnection.open(url)
    robots = Protego.parse((await conn.request("GET", "/robots.txt")).body.decode())
    origin = urlsplit(url).netloc
    start = f"{url}/site/"
    seen = {start}
    todo = deque([start])
    kinds: Counter[str] = Counter()
    while todo:
        page = todo.popleft()
        resp = await conn.request("GET", urlsplit(page).path)
        assert resp.status == 200, page
        for raw in _HREF.findall(resp.body.decode()):
            href = html.unescape(raw)
            target, fragment = urldefrag(urljoin(page, href))
            parts = urlsplit(target)
            if fragment:
                kinds["fragment"] += 1
            if parts.netloc != origin:
                kinds["alias" if parts.hostname == "localhost" else "other"] += 1
                continue
            if not robots.can_fetch(target, "surge"):
                kinds["disallowed"] += 1
                continue
            assert parts.path.startswith("/site/")
            if target not in seen:
                seen.add(target)
                todo.append(target)
    await conn.aclose()
    return seen, kinds


@pytest.mark.parametrize(("pages", "links", "seed"), [(40, 2, 0), (60, 3, 7), (200, 4, 1), (150, 10, 5)])
async def test_site_reachable_matches_a_real_crawl(pages: int, links: int, seed: int) -> None:
    async with serve(site_pages=pages, site_links=links, seed=seed) as url:
        seen, kinds = await _crawl(url)
        stats = orjson.loads((await fetch(url, "/site/stats")).body)
    assert len(seen) == site_reachable(pages, links, seed) == stats["reachable"]
    assert stats == {"pages": pages, "links": links, "seed": seed, "reachable": len(seen)}
    if links >= 10:
        assert kinds["fragment"] and kinds["alias"] and kinds["other"] and kinds["disallowed"]


async def test_some_small_sites_are_not_fully_reachable() -> None:
    assert site_reachable(40, 2, 0) < 40  # so a crawl count is a real check, not just "pages"


async def test_pages_robots_and_sitemap() -> None:
    async with serve(site_pages=20, site_links=5) as url:
        robots = (await fetch(url, "/robots.txt")).body.decode()
        sitemap = (await fetch(url, "/sitemap.xml")).body.decode()
        private = await fetch(url, "/site/private/3")
        missing = [await fetch(url, p) for p in ("/site/p/20", "/site/p/0", "/site/p/x", "/site/other")]
        page = await fetch(url, "/site/p/19")
    assert "Disallow: /site/private/" in robots
    assert f"Sitemap: {url}/sitemap.xml" in robots
    assert sitemap.count("<loc>") == 20 and f"<loc>{url}/site/p/19</loc>" in sitemap
    assert private.status == 200
    assert [m.status for m in missing] == [404, 404, 404, 404]
    assert page.status == 200 and page.header("Content-Type") == "text/html; charset=utf-8"
    assert page.body.count(b"<a href=") == 5


async def test_alias_host_points_back_at_this_server() -> None:
    async with serve(site_pages=300, site_links=10) as url:
        port = urlsplit(url).port
        body = b"".join([(await fetch(url, f"/site/p/{p}")).body for p in range(1, 30)]).decode()
    assert f"http://localhost:{port}/site/" in body
    assert "http://external.invalid/site/" in body
