"""The playbook's §5 Step 1: the synchronous crawler with requests, one URL after another.

Reproduced as written; only the URL list is a parameter. Run: ``python -m surge.bench.peers.sync_crawler``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import requests

from surge.bench.peers import peer_main

__all__ = ["crawl_sync", "fetch_sync"]


def fetch_sync(url: str) -> int:
    """Synchronous HTTP request (playbook: 동기 방식 HTTP 요청)."""
    response = requests.get(url)
    return len(response.text)


def crawl_sync(urls: list[str]) -> list[tuple[str, Any]]:
    """Synchronous crawler (playbook: 동기 방식 크롤러)."""
    results: list[tuple[str, Any]] = []
    for url in urls:
        try:
            size = fetch_sync(url)
            results.append((url, size))
        except Exception as e:  # the playbook catches everything and records it
            results.append((url, f"Error: {e}"))
    return results


def _run(args: argparse.Namespace) -> dict[str, Any]:
    test_urls = [args.url] * args.n
    start = time.time()
    results = crawl_sync(test_urls)
    sync_time = time.time() - start
    print(f"sync: {len(results)} URLs, {sync_time:.2f} s")
    ok = sum(1 for _, r in results if isinstance(r, int))
    return {"client": "sync crawler (requests)", "loop": "none", "requests": len(results), "ok": ok,
            "elapsed_s": sync_time}


if __name__ == "__main__":
    peer_main(__doc__ or "", _run)
