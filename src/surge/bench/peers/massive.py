"""The playbook's §7 MassiveRequestHandler: a semaphore of 1000 and batches of 1000 requests gathered in turn.

Reproduced as written; only the URL (a constant in the playbook) and the request count are parameters, and
the loop is chosen before it starts (see ``run_on_loop``). Run: ``python -m surge.bench.peers.massive``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import aiohttp

from surge.bench.peers import peer_main, run_on_loop

__all__ = ["MassiveRequestHandler"]


class MassiveRequestHandler:
    """Massive request handler (playbook: 대규모 요청 처리기)."""

    def __init__(self, max_concurrent: int = 1000, timeout: float = 30, use_uvloop: bool = False,
                 *, url: str = "https://httpbin.org/delay/0") -> None:
        self.max_concurrent = max_concurrent
        self.semaphore = asyncio.Semaphore(max_concurrent)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.use_uvloop = use_uvloop
        self.url = url  # a constant inside fetch_one in the playbook; a parameter here
        self.stats: dict[str, Any] = {
            "total": 0,
            "success": 0,
            "failed": 0,
            "timeout": 0,
            "start_time": None,
            "end_time": None,
        }

    async def fetch_one(self, session: aiohttp.ClientSession, url_id: int) -> dict[str, Any]:
        """One request (playbook: 단일 요청 처리)."""
        url = self.url
        async with self.semaphore:
            try:
                async with session.get(url) as response:
                    await response.text()
                    self.stats["success"] += 1
                    return {"id": url_id, "status": "success"}
            except TimeoutError:  # the playbook says asyncio.TimeoutError: the same class since 3.11
                self.stats["timeout"] += 1
                return {"id": url_id, "status": "timeout"}
            except Exception as e:  # the playbook counts anything else as failed
                self.stats["failed"] += 1
                return {"id": url_id, "status": "failed", "error": str(e)}

    async def process_batch(self, session: aiohttp.ClientSession, batch_urls: range) -> list[Any]:
        """One batch, gathered (playbook: 배치 단위 처리)."""
        tasks = [self.fetch_one(session, url_id) for url_id in batch_urls]
        results: list[Any] = await asyncio.gather(*tasks, return_exceptions=True)
        return results

    async def run(self, total_requests: int = 100000) -> list[Any]:
        """The main run (playbook: 메인 실행 함수)."""
        self.stats["total"] = total_requests
        self.stats["start_time"] = time.time()
        print(f"starting {total_requests:,} requests...")
        print(f" max concurrent requests: {self.max_concurrent}")
        print(f" uvloop: {'used' if self.use_uvloop else 'not used'}\n")
        # Connection pool settings (playbook: Connection pool 설정)
        connector = aiohttp.TCPConnector(
            limit=self.max_concurrent,
            limit_per_host=100,
            ttl_dns_cache=300,
        )
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=self.timeout,
        ) as session:
            # Batches for memory efficiency (playbook: 배치 단위로 처리)
            batch_size = 1000
            all_results = []
            for i in range(0, total_requests, batch_size):
                batch = range(i, min(i + batch_size, total_requests))
                results = await self.process_batch(session, batch)
                all_results.extend(results)
                # Progress (playbook: 진행 상황 출력)
                if (i + batch_size) % 10000 == 0:
                    elapsed = time.time() - self.stats["start_time"]
                    rate = (i + batch_size) / elapsed
                    print(f" progress: {i + batch_size:,}/{total_requests:,} ({rate:.0f} req/sec)")
        self.stats["end_time"] = time.time()
        return all_results

    def print_report(self) -> None:
        """The playbook's result report (결과 리포트 출력)."""
        elapsed = self.stats["end_time"] - self.stats["start_time"]
        rate = self.stats["total"] / elapsed
        print(f"\n{'=' * 60}")
        print("experiment report")
        print(f"{'=' * 60}")
        print(f"total requests: {self.stats['total']:,}")
        print(f"success: {self.stats['success']:,} "
              f"({self.stats['success'] / self.stats['total'] * 100:.1f}%)")
        print(f"failed: {self.stats['failed']:,}")
        print(f"timeout: {self.stats['timeout']:,}")
        print(f"\nelapsed: {elapsed:.2f} s")
        print(f"throughput: {rate:.0f} requests/sec")
        print(f"mean response time: {elapsed / self.stats['total'] * 1000:.2f}ms")
        print(f"{'=' * 60}\n")


def _run(args: argparse.Namespace) -> dict[str, Any]:
    async def main() -> MassiveRequestHandler:
        handler = MassiveRequestHandler(max_concurrent=1000, use_uvloop=args.loop == "uvloop", url=args.url)
        await handler.run(args.n)
        handler.print_report()
        return handler

    handler = run_on_loop(args.loop, main())
    s = handler.stats
    return {"client": "playbook MassiveRequestHandler (aiohttp)", "loop": args.loop, "requests": s["total"],
            "ok": s["success"], "failed": s["failed"], "timeout": s["timeout"],
            "elapsed_s": s["end_time"] - s["start_time"]}


if __name__ == "__main__":
    peer_main(__doc__ or "", _run)
