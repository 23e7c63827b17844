"""The playbook's §5 Step 2: the basic asyncio crawler, one aiohttp session and a gather of every URL.

Reproduced as written; only the URL list is a parameter. Run: ``python -m surge.bench.peers.gather_crawler``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp

from surge.bench.peers import peer_main, run_on_loop

__all__ = ["crawl_async_basic", "fetch_async"]


async def fetch_async(session: aiohttp.ClientSession, url: str) -> int:
    """Asynchronous HTTP request (playbook: 비동기 HTTP 요청)."""
    async with session.get(url) as response:
        text = await response.text()
        return len(text)


async def crawl_async_basic(urls: list[str]) -> list[tuple[str, Any]]:
    """Basic asynchronous crawler (playbook: 기본 비동기 크롤러)."""
    async with aiohttp.ClientSession() as session:
        tasks = [fetch_async(session, url) for url in urls]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return list(zip(urls, results, strict=True))


def _run(args: argparse.Namespace) -> dict[str, Any]:
    test_urls = [args.url] * args.n
    start = time.time()
    results = run_on_loop(args.loop, crawl_async_basic(test_urls))
    async_time = time.time() - start
    print(f"basic asyncio: {len(results)} URLs, {async_time:.2f} s")
    ok = sum(1 for _, r in results if isinstance(r, int))
    return {"client": "basic gather (aiohttp)", "loop": args.loop, "requests": len(results), "ok": ok,
            "elapsed_s": async_time}


if __name__ == "__main__":
    peer_main(__doc__ or "", _run)
