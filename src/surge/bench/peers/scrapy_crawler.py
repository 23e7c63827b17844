"""Scrapy, the reference Python crawler, set up like ``surge crawl -d all --per-host N``: the peer of the
crawl benchmark. Run: ``python -m surge.bench.peers.scrapy_crawler --url URL --per-host 8 --out FILE.jsonl``.

A plain Spider with Scrapy's LinkExtractor (what CrawlSpider's rules run), in-process via CrawlerProcess:
robots.txt obeyed, the seed's host only, no depth limit, no delay, no AutoThrottle, no cookies, breadth-first
(surge's frontier is first in, first out by depth), on the asyncio reactor over uvloop (``--loop``). Each
response is one JSON line ``{url, status, depth}`` in ``--out``; links are read from 2xx HTML responses only,
as surge reads them. Stdout is one JSON line: ``{"pages": N, "elapsed_s": T, ...}``, T timed around the crawl
(the reactor's whole run), not interpreter start-up or imports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import HtmlResponse, Response
from scrapy.linkextractors import LinkExtractor

__all__ = ["SiteSpider", "scrapy_settings"]

# The loops Scrapy can run its asyncio reactor on, by the name surge's --loop uses.
LOOPS = {"uvloop": "uvloop.Loop", "asyncio": None}


class SiteSpider(scrapy.Spider):
    """Every page reachable from the seed on its host: one item a response, links followed from 2xx HTML."""

    name = "surge-bench"
    loop = "unknown"  # the module of the loop Scrapy's reactor ran on, seen from inside the crawl

    def __init__(self, seed: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        # Scrapy's offsite filter matches host names and ignores the port: one origin here all the same.
        self.allowed_domains = [urlsplit(seed).hostname or ""]
        self.links = LinkExtractor()

    async def start(self) -> AsyncIterator[Any]:
        yield self.seed_request()

    def start_requests(self) -> Iterator[Any]:
        # Scrapy < 2.13 calls this instead of start(); its documented way to support both.
        yield self.seed_request()

    def seed_request(self) -> scrapy.Request:
        # Not start_urls: those requests are dont_filter, so the seed would be fetched again when a page
        # links back to it. surge knows its seeds as seen.
        SiteSpider.loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        return scrapy.Request(self.seed, callback=self.parse)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        yield {"url": response.url, "status": response.status, "depth": response.meta.get("depth", 0)}
        # CrawlSpider's _requests_to_follow reads HtmlResponse only too; the 2xx test is surge's rule.
        if 200 <= response.status < 300 and isinstance(response, HtmlResponse):
            for link in self.links.extract_links(response):
                yield scrapy.Request(link.url, callback=self.parse)


def scrapy_settings(out: str, per_host: int, *, concurrency: int = 64, loop: str = "uvloop",
                    concurrent_items: int = 1) -> dict[str, Any]:
    """The crawl's settings; everything not named here is Scrapy's default (retries 2, redirects on)."""
    return {
        "ROBOTSTXT_OBEY": True,
        "DEPTH_LIMIT": 0,
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": per_host,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        # Scrapy >= 2.19 starts an HTTP control server and writes a job file unless told not to.
        "REMOTE_CONTROL_ENABLED": False,
        # Every response reaches the spider (and the feed), as every URL gets a record in surge.
        "HTTPERROR_ALLOW_ALL": True,
        # Scrapy's default, 100, starts that many tasks for every response's output whether it holds one item
        # or none; with no item pipeline there is nothing for them to overlap, and surge handles a page's
        # record and links in turn. 1 changes no result, only Scrapy's overhead (in its favour).
        "CONCURRENT_ITEMS": concurrent_items,
        # Breadth-first as Scrapy's FAQ sets it up: surge's frontier is FIFO by depth (default: LIFO).
        "DEPTH_PRIORITY": 1,
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "ASYNCIO_EVENT_LOOP": LOOPS[loop],
        "LOG_LEVEL": "WARNING",
        "FEEDS": {out: {"format": "jsonlines", "overwrite": True}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the seed URL")
    parser.add_argument("--per-host", type=int, default=8, help="CONCURRENT_REQUESTS_PER_DOMAIN")
    parser.add_argument("--concurrency", type=int, default=64, help="CONCURRENT_REQUESTS")
    parser.add_argument("--loop", default="uvloop", choices=tuple(LOOPS))
    parser.add_argument("--concurrent-items", type=int, default=1,
                        help="CONCURRENT_ITEMS (Scrapy's default: 100)")
    parser.add_argument("--out", required=True, help="JSON lines, one a response")
    args = parser.parse_args(argv)

    # Scrapy may print; stdout holds only the summary line (as for the other peers).
    with contextlib.redirect_stdout(sys.stderr):
        process = CrawlerProcess(scrapy_settings(args.out, args.per_host, concurrency=args.concurrency,
                                                  loop=args.loop, concurrent_items=args.concurrent_items))
        crawler = process.create_crawler(SiteSpider)
        t0 = time.perf_counter()
        process.crawl(crawler, seed=args.url)
        process.start()
        elapsed = time.perf_counter() - t0
    stats = crawler.stats.get_stats() if crawler.stats is not None else {}
    print(json.dumps({
        "client": f"Scrapy {scrapy.__version__}", "loop": SiteSpider.loop,
        "pages": stats.get("item_scraped_count", 0), "elapsed_s": elapsed,
        "requests": stats.get("downloader/request_count", 0),
        "robots_forbidden": stats.get("robotstxt/forbidden", 0),
        "duplicates": stats.get("dupefilter/filtered", 0), "offsite": stats.get("offsite/filtered", 0),
        "finish_reason": stats.get("finish_reason"),
    }))
    return 0 if stats.get("finish_reason") == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
