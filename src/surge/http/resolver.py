"""Host name resolution with a TTL cache, and the address policy that approves or refuses each address.

Lookups go through ``loop.getaddrinfo``; concurrent lookups of one host share a single query.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable

from surge.errors import BlockedAddress, DNSError

__all__ = ["Address", "AddressPolicy", "Resolver", "apply_policy", "deny_private"]

Address = tuple[int, str]  # (socket family, IP address text)
AddressPolicy = Callable[[str], bool]


def _literal(host: str) -> Address | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET, ip.compressed)


class Resolver:
    """Resolves host names to addresses and caches each answer for ``ttl`` seconds of loop time.

    Subclass and override ``lookup`` to resolve differently (a fixed table, a test delay).
    """

    def __init__(self, ttl: float = 60.0, *, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[tuple[str, int], tuple[float, list[Address]]] = {}
        self._pending: dict[tuple[str, int], asyncio.Task[list[Address]]] = {}
        self.lookups = 0  # queries actually sent (cache misses), for tests and statistics

    async def resolve(self, host: str, port: int) -> list[Address]:
        """The addresses of ``host`` (IP literals pass straight through); DNSError if it does not resolve."""
        literal = _literal(host)
        if literal is not None:
            return [literal]
        loop = asyncio.get_running_loop()
        key = (host, port)
        hit = self._cache.get(key)
        now = loop.time()
        if hit is not None and hit[0] > now:
            return hit[1]
        task = self._pending.get(key)
        if task is None:
            # A task, not an inline await: a cancelled caller must not cancel the query others share.
            self.lookups += 1
            task = loop.create_task(self.lookup(host, port))
            self._pending[key] = task
            task.add_done_callback(lambda t: self._store(key, t))
        return await asyncio.shield(task)

    def _store(self, key: tuple[str, int], task: asyncio.Task[list[Address]]) -> None:
        self._pending.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return
        if len(self._cache) >= self.max_entries:
            self._evict(task.get_loop().time())
        self._cache[key] = (task.get_loop().time() + self.ttl, task.result())

    async def lookup(self, host: str, port: int) -> list[Address]:
        """One uncached query: ``loop.getaddrinfo`` for TCP, answers deduplicated in the order given."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise DNSError(f"cannot resolve {host}: {exc}") from None
        except OSError as exc:
            raise DNSError(f"cannot resolve {host}: {exc}") from None
        seen: dict[Address, None] = {}
        for family, _type, _proto, _canon, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                seen[(family, str(sockaddr[0]))] = None
        if not seen:
            raise DNSError(f"cannot resolve {host}: no IPv4 or IPv6 address")
        return list(seen)

    def forget(self, host: str | None = None) -> None:
        """Drop cached answers for ``host``, or all of them."""
        if host is None:
            self._cache.clear()
        else:
            for key in [k for k in self._cache if k[0] == host]:
                del self._cache[key]

    def _evict(self, now: float) -> None:
        for key in [k for k, (exp, _) in self._cache.items() if exp <= now]:
            del self._cache[key]
        if len(self._cache) >= self.max_entries:
            self._cache.clear()


def apply_policy(addrs: list[Address], policy: AddressPolicy | None, host: str) -> list[Address]:
    """The addresses ``policy`` approves; BlockedAddress if it refuses them all."""
    if policy is None:
        return addrs
    allowed = [a for a in addrs if policy(a[1])]
    if not allowed:
        raise BlockedAddress(f"address policy refused every address of {host}: "
                             + ", ".join(a[1] for a in addrs))
    return allowed


def deny_private(ip: str) -> bool:
    """An address policy that refuses loopback, private, link-local, multicast and reserved addresses."""
    addr = ipaddress.ip_address(ip)
    return addr.is_global and not addr.is_multicast
