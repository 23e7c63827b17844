"""The playbook's §5 Step 3: OptimizedCrawler (semaphore, aiohttp connector limits, retry with backoff).

Reproduced as written, with one fix so that it runs at all (see ``__init__``). Note what its settings mean
against one host: ``limit_per_host=5`` lets at most 5 requests be in flight, whatever ``max_concurrent`` says.
Run: ``python -m surge.bench.peers.optimized_crawler``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp

from surge.bench.peers import peer_main, run_on_loop

__all__ = ["OptimizedCrawler"]


class OptimizedCrawler:
    """Optimized web crawler (playbook: 최적화된 웹 크롤러)."""

    def __init__(self, max_concurrent: int = 10, timeout: float = 30, retry_count: int = 3,
                 rate_limit: float | None = None) -> None:
        # The playbook's only crash, fixed: __aenter__ reads self.max_concurrent, which its __init__ never
        # sets (AttributeError on first use). This line is the whole fix; nothing else is changed.
        self.max_concurrent = max_concurrent
        self.semaphore = asyncio.Semaphore(max_concurrent)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retry_count = retry_count
        self.rate_limit = rate_limit
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OptimizedCrawler:
        connector = aiohttp.TCPConnector(
            limit=self.max_concurrent,
            limit_per_host=5,
            ttl_dns_cache=300,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=self.timeout,
        )
        return self

    async def __aexit__(self, *args: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def fetch_with_retry(self, url: str) -> tuple[str, Any]:
        """Fetch with retries (playbook: 재시도 로직이 포함된 fetch)."""
        assert self.session is not None
        async with self.semaphore:
            for attempt in range(self.retry_count):
                try:
                    if self.rate_limit:
                        await asyncio.sleep(1.0 / self.rate_limit)
                    async with self.session.get(url) as response:
                        text = await response.text()
                        return (url, {
                            "status": response.status,
                            "size": len(text),
                            "success": True,
                        })
                except TimeoutError:  # the playbook says asyncio.TimeoutError: the same class since 3.11
                    if attempt == self.retry_count - 1:
                        return (url, {"success": False, "error": "Timeout"})
                    await asyncio.sleep(2 ** attempt)  # exponential backoff (지수 백오프)
                except Exception as e:  # the playbook retries on anything
                    if attempt == self.retry_count - 1:
                        return (url, {"success": False, "error": str(e)})
                    await asyncio.sleep(1)
        # Unreachable with retry_count >= 1; the playbook's function falls off the end here (returns None).
        return (url, None)

    async def crawl(self, urls: list[str]) -> list[tuple[str, Any]]:
        """Crawl a list of URLs (playbook: URL 목록 크롤링)."""
        tasks = [self.fetch_with_retry(url) for url in urls]
        results = await asyncio.gather(*tasks)
        return results


async def optimized_crawl_example(test_urls: list[str]) -> dict[str, Any]:
    """The playbook's usage example with its settings (max_concurrent=20, timeout=30, retry_count=3)."""
    async with OptimizedCrawler(
        max_concurrent=20,
        timeout=30,
        retry_count=3,
    ) as crawler:
        start = time.time()
        results = await crawler.crawl(test_urls)
        elapsed = time.time() - start
        success = sum(1 for _, r in results if r.get("success"))
        print("\noptimized crawler:")
        print(f" processed: {len(results)} URLs")
        print(f" succeeded: {success}")
        print(f" failed: {len(results) - success}")
        print(f" elapsed: {elapsed:.2f} s")
        print(f" per second: {len(results) / elapsed:.1f} requests/sec")
        return {"requests": len(results), "ok": success, "elapsed_s": elapsed}


def _run(args: argparse.Namespace) -> dict[str, Any]:
    out = run_on_loop(args.loop, optimized_crawl_example([args.url] * args.n))
    return {"client": "OptimizedCrawler (aiohttp)", "loop": args.loop, **out}


if __name__ == "__main__":
    peer_main(__doc__ or "", _run)
