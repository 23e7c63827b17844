"""``Crawler`` and ``surge.crawl()``: the fetch engine whose outcomes feed their pages' links back as work.

A crawl is a :class:`~surge.engine.fetcher.Fetcher` run with an expansion: each committed batch of outcomes is
read for links (HTML pages that answered 2xx; a redirect's Location: the client does not follow redirects),
the frontier admits the new ones (scope, traps, depth, budget, each URL once), and they are stored together
with the batch that found them, so a crawl stopped or killed at any moment resumes without losing a page or
fetching one twice. The queue is first in, first out: pages are
fetched by depth, seeds first. robots.txt is obeyed by the client the engine gets (:class:`RobotsGate`), and a
link or redirect found on a public page may not lead to a private address (:class:`PrivateGuard`).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from surge.crawl.frontier import Frontier, Scope
from surge.crawl.guard import PrivateGuard
from surge.crawl.links import extract_links, extract_sitemap, is_sitemap
from surge.crawl.robots import RobotsGate
from surge.crawl.urls import canonicalize, resolve
from surge.engine.fetcher import Fetcher, FetchResult
from surge.engine.hostpolicy import origin_of
from surge.engine.items import Outcome, WorkItem
from surge.engine.workqueue import Lease
from surge.errors import ConfigError
from surge.http.models import media_type

__all__ = ["Crawler", "crawl"]

_HTML = ("text/html", "application/xhtml+xml")
_SITEMAP_TYPES = ("application/xml", "text/xml", "application/gzip", "application/x-gzip")


class Crawler:
    """Crawl from ``seeds``: every page reached gets exactly one outcome record, with ``depth``, ``parent``
    (the page its URL was first found on) and ``links`` (the distinct links found on it, canonical).

    ``depth``: links followed from a seed at most (None: no limit); ``max_pages``: URLs admitted in all;
    ``scope``: ``host`` (default), ``domain``, ``prefix`` or ``any`` (see
    :class:`~surge.crawl.frontier.Scope`),
    narrowed by ``include``/``exclude`` regular expressions; ``robots``: obey robots.txt (default; URLs it
    disallows get one record each, error ``robots``, nothing sent); ``sitemap``: also seed from each seed
    origin's ``/sitemap.xml`` (its URLs enter at depth 1). A URL found on a page whose address was public
    (a link, or a redirect's target) that resolves to a private address (loopback, RFC 1918, link-local...)
    gets one record, error ``blocked``, nothing sent, unless ``allow_private=True``. The other keyword
    arguments are :class:`~surge.engine.fetcher.Fetcher`'s (concurrency, per_host, output, state, ...).

    Example::

        crawler = Crawler(["http://127.0.0.1:8080/site/"], depth=2, output="pages.jsonl")
        result = await crawler.run()
        print(crawler.frontier.admitted, crawler.frontier.counts)
    """

    fields: Sequence[str] = ("depth", "parent", "links")

    def __init__(self, seeds: Iterable[str], *, depth: int | None = 3, max_pages: int | None = None,
                 scope: str = "host", include: Sequence[str] = (), exclude: Sequence[str] = (),
                 robots: bool = True, sitemap: bool = False, user_agent: str = "surge",
                 save_body: bool = False, save_headers: bool = False, **fetch_options: Any) -> None:
        seeds = list(seeds)
        if not seeds:
            raise ConfigError("give at least one seed URL")
        canonical = [c for c in map(canonicalize, seeds) if c is not None]  # Frontier.seeds refuses the rest
        self.frontier = Frontier(Scope(canonical, scope, include=include, exclude=exclude),
                                 depth=depth, max_pages=max_pages)
        if sitemap:
            # Each seed origin's sitemap.xml is a seed too; the URLs it lists enter one level deeper.
            seeds += [origin_of(c) + "/sitemap.xml" for c in canonical]
        self.sitemap = sitemap
        self.seed_items = self.frontier.seeds(seeds)
        self.seed_urls = canonical
        self.robots = robots
        self.user_agent = user_agent
        self.save_body = save_body
        self.save_headers = save_headers
        self.gate: RobotsGate | None = None
        self.guard: PrivateGuard | None = None
        self.pages = 0  # HTML pages read for links in this run
        self.delayed_hosts: dict[str, float] = {}  # origin -> the Crawl-delay its robots.txt asks (seconds)
        self.fetcher = Fetcher(save_body=save_body, save_headers=save_headers, expansion=self,
                               **fetch_options)
        if not save_body:
            # Links are read from HTML (and sitemaps) only: other bodies are not kept.
            self.fetcher.options.body_types = frozenset(_HTML + (_SITEMAP_TYPES if sitemap else ()))

    # -- running ----------------------------------------------------------------------------------------

    async def run(self, **kw: Any) -> FetchResult:
        """Crawl until the frontier is empty (or ``stop`` is set); outcomes go to the fetcher's output."""
        return await self.fetcher.run(self.seed_items, **kw)

    def stream(self, **kw: Any) -> AsyncIterator[Outcome]:
        """Like :meth:`run`, yielding each outcome once it is committed."""
        return self.fetcher.stream(self.seed_items, **kw)

    # -- the expansion the fetcher calls ----------------------------------------------------------------

    def wrap(self, client: Any) -> Any:
        # The guard needs a surge.http.Client underneath: its peer_class tells a page's address class.
        peers = client if not self.fetcher.allow_private and hasattr(client, "peer_class") else None
        if self.robots:
            self.gate = RobotsGate(client, self.user_agent, peers=peers)
            self.gate.on_rules = self._on_robots
            client = self.gate
        if peers is not None:
            self.guard = client = PrivateGuard(client, peers, self.seed_urls)
        return client

    def _on_robots(self, origin: str, rules: Any) -> None:
        # A Crawl-delay (or Request-rate) becomes the origin's own rate cap in the host policy.
        assert self.gate is not None
        delay = self.gate.crawl_delay(origin + "/")
        engine = self.fetcher.engine
        if delay and engine is not None:
            # A robots.txt asking for a day between requests would stall the crawl: the same cap as a
            # Retry-After (--max-retry-after) bounds it.
            delay = min(delay, engine.options.max_retry_after)
            engine.policy.set_host_rate(origin, 1.0 / delay)
            self.delayed_hosts[origin] = delay

    def restore(self, urls: Iterable[str]) -> None:
        self.frontier.restore(urls)

    def expand(self, batch: list[tuple[Lease, Outcome]]) -> list[WorkItem]:
        frontier = self.frontier
        guard = self.guard
        new: list[WorkItem] = []
        for lease, o in batch:
            item = lease.item
            o.depth = item.depth
            o.parent = item.parent
            d = o.__dict__
            if o.error in ("robots", "blocked"):
                o.attempts = 0  # refused before sending
            found: list[WorkItem] = []
            status = o.status or 0
            html = media_type(o.content_type) in _HTML
            if 200 <= status < 300 and o.body is not None and (html or self.sitemap):
                body: str | bytes = o.body if o.body_encoding == "utf-8" else base64.b64decode(o.body)
                if html:
                    links, nofollow = extract_links(body, o.url)
                    o.links = links
                    self.pages += 1
                    if not nofollow:
                        found = frontier.admit(links, depth=item.depth + 1, parent=o.url)
                elif self.sitemap:
                    raw = body.encode() if isinstance(body, str) else body
                    if is_sitemap(raw):
                        o.links = extract_sitemap(raw, o.url)
                        found = frontier.admit(o.links, depth=item.depth + 1, parent=o.url)
            elif 300 <= status < 400 and o.headers:
                # A redirect is a link: its target goes through scope, robots.txt, dedup and depth.
                location = next((v for k, v in o.headers if k.lower() == "location"), None)
                target = resolve(o.url, location) if location is not None else None
                o.links = [target] if target is not None else []
                found = frontier.admit(o.links, depth=item.depth + 1, parent=o.url)
            if found:
                new += found
                if guard is not None:
                    guard.found(o.url, found)
            if guard is not None:
                guard.done(item.url)
            if not self.save_body:
                d.pop("body", None)
                d.pop("body_encoding", None)
            if not self.save_headers:
                d.pop("headers", None)
        return new


def crawl(seeds: Iterable[str], **options: Any) -> AsyncIterator[Outcome]:
    """Crawl from ``seeds``, yielding one :class:`Outcome` per URL reached (``options``: :class:`Crawler`'s).

    Example::

        async for outcome in surge.crawl(["http://127.0.0.1:8080/site/"], depth=1):
            print(outcome.depth, outcome.status, outcome.url, len(outcome.links or ()))
    """
    return Crawler(seeds, **options).stream()
