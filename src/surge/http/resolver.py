"""Host name resolution with a TTL cache, what class of address an IP is, and the policies that refuse some.

Lookups go through ``loop.getaddrinfo``; concurrent lookups of one host share a single query.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Callable

from surge.errors import BlockedAddress, DNSError

__all__ = ["PUBLIC", "Address", "AddressPolicy", "Resolver", "address_class", "apply_policy", "deny_private",
           "literal_address", "public_only"]

Address = tuple[int, str]  # (socket family, IP address text)
AddressPolicy = Callable[[str], bool]

PUBLIC = "public"
_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# Checked in order; an IPv4 address in none of them is public if Python's registry calls it global.
_V4_CLASSES = (
    (_V4("0.0.0.0/8"), "unspecified"),  # "this network": Linux connects 0.0.0.0 to the local host
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("100.64.0.0/10"), "shared"),  # carrier-grade NAT (RFC 6598)
    (_V4("169.254.0.0/16"), "link-local"),  # cloud metadata services live here
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("192.0.0.0/24"), "reserved"),  # IETF protocol assignments (Python counts only parts of it)
)
_V6_CLASSES = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fc00::/7"), "unique-local"),
    (_V6("ff00::/8"), "multicast"),
    (_V6("64:ff9b:1::/48"), "private"),  # NAT64 for local use (RFC 8215)
    (_V6("3fff::/20"), "reserved"),  # documentation (RFC 9637), newer than Python's registry
)
_V6_UNICAST = _V6("2000::/3")  # all global unicast space IANA has allocated
_NAT64 = _V6("64:ff9b::/96")
_COMPATIBLE = _V6("::/96")  # deprecated IPv4-compatible addresses, ::a.b.c.d


@functools.lru_cache(maxsize=4096)
def address_class(ip: str) -> str:
    """What kind of address ``ip`` (text) is: ``"public"``, or why it is not.

    ``loopback``, ``private`` (RFC 1918; local-use NAT64), ``shared`` (100.64.0.0/10), ``link-local``,
    ``unique-local`` (fc00::/7), ``unspecified`` (0.0.0.0/8, ::), ``multicast``, or ``reserved`` for
    anything else that is not global unicast (documentation and benchmarking ranges, 240.0.0.0/4, the
    broadcast address, IPv6 outside 2000::/3, Teredo). An IPv6 address that carries an IPv4 one (mapped
    ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::, compatible ::a.b.c.d) is that IPv4
    address's class, since it reaches that host. Text that is no IP address is ``reserved``: an unknown is
    never public.
    """
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "reserved"
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4_class(addr)
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return _v4_class(mapped)
    for net, name in _V6_CLASSES:
        if addr in net:
            return name
    if addr in _NAT64:
        return _v4_class(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if addr in _COMPATIBLE:
        inner = _v4_class(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
        return "reserved" if inner == PUBLIC else inner
    if addr.sixtofour is not None:
        inner = _v4_class(addr.sixtofour)
        if inner != PUBLIC:
            return inner
    if addr in _V6_UNICAST and addr.is_global:
        return PUBLIC
    return "reserved"


def _v4_class(addr: ipaddress.IPv4Address) -> str:
    for net, name in _V4_CLASSES:
        if addr in net:
            return name
    return PUBLIC if addr.is_global else "reserved"


def literal_address(host: str) -> str | None:
    """The IP address ``host`` denotes without a DNS query, or None for a name.

    Besides IP literals, the IPv4 spellings ``inet_aton`` accepts (``2130706433``, ``0x7f.1``,
    ``0177.0.0.1``): the C library's resolver takes them as addresses too, so such a "name" connects there.
    """
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    if not host or not host[0].isdigit():
        return None  # every inet_aton spelling starts with a digit; names mostly do not
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


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


def public_only(addrs: list[Address], host: str) -> list[Address]:
    """The public addresses among ``addrs`` (see :func:`address_class`); BlockedAddress if there are none."""
    allowed = [a for a in addrs if address_class(a[1]) == PUBLIC]
    if not allowed:
        refused = ", ".join(f"{ip} ({address_class(ip)})" for _, ip in addrs)
        raise BlockedAddress(f"{host} is not a public address ({refused}); a redirect or a link from a "
                             "public address may not lead there")
    return allowed


def deny_private(ip: str) -> bool:
    """An address policy that refuses every address that is not public (see :func:`address_class`)."""
    return address_class(ip) == PUBLIC
