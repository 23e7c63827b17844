"""robots.txt, obeyed: a Sender in front of the client that asks each origin's robots.txt first.

No request goes to an origin before its robots.txt is known; a URL it disallows fails with
:class:`~surge.errors.RobotsDisallowed` (outcome class ``robots``) without being sent. The engine does not
know about robots at all: to it this is a client whose fast path (``submit``) declines URLs it cannot vouch
for, which then take the ``request`` path, where the first request to an origin waits for the one robots.txt
fetch and the others wait with it.

What an answer means follows RFC 9309: 2xx is parsed (the first 500 KiB); 4xx (none there) allows all; 5xx
disallows all ("unreachable": the site may be down or shielding itself); up to 5 redirects are followed.
A network failure allows all: the pages' own requests then fail with the real error class, instead of every
page of a down host being reported as blocked by robots. A page requested with ``refuse_private`` (see
:mod:`surge.crawl.guard`) has its origin's robots.txt fetched the same way, and a robots.txt redirect from a
public address is not followed to a private one (it counts as unavailable).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urljoin

from protego import Protego

from surge.crawl.wrapper import ClientLayer
from surge.engine.hostpolicy import origin_of
from surge.errors import BlockedAddress, RequestError, RobotsDisallowed

__all__ = ["MAX_ROBOTS_BYTES", "RobotsGate"]

MAX_ROBOTS_BYTES = 500 * 1024  # parsed of a robots.txt (RFC 9309's minimum); the rest is ignored
_MAX_READ = 4 * MAX_ROBOTS_BYTES  # read at most: a larger answer is no robots.txt
_REDIRECTS = 5
_ALLOW_ALL: Any = True
_DISALLOW_ALL: Any = False


class RobotsGate(ClientLayer):
    """Wraps ``client`` (a :class:`surge.http.Client`): the same ``request``/``submit``, obeying robots.txt.

    ``user_agent`` is the product token matched against robots.txt groups (``surge`` matches
    ``User-agent: surge`` and falls back to ``*``). ``fetched`` counts robots.txt requests made,
    ``blocked`` requests refused. ``crawl_delay(url)`` is the delay its origin asks for, if any. At most
    ``max_origins`` robots.txt are kept (the oldest is forgotten first, and fetched again if needed).
    With ``peers`` (the :class:`surge.http.Client` underneath), a robots.txt redirect from a public address to
    a private one is not followed.
    """

    def __init__(self, client: Any, user_agent: str = "surge", *, max_origins: int = 10_000,
                 peers: Any = None) -> None:
        super().__init__(client)
        self._peers = peers
        self.user_agent = user_agent
        # origin -> Protego, _ALLOW_ALL or _DISALLOW_ALL. A broad crawl meets millions of origins: the oldest
        # known is forgotten past max_origins (fetched again if it comes back), so memory stays bounded.
        self._rules: dict[str, Any] = {}
        self.max_origins = max_origins
        self._fetching: dict[str, asyncio.Future[Any]] = {}
        self.fetched = 0
        self.blocked = 0
        self.on_rules: Any = None  # called as on_rules(origin, rules) when an origin's robots.txt is known

    # -- the Sender interface the engine uses -----------------------------------------------------------

    def submit(self, method: str, url: str, ticket: Any, keep_body: bool = True) -> bool:
        rules = self._rules.get(origin_of(url))
        if rules is None or not self._allows(rules, url):
            return False  # unknown origin, or refused: the request path fetches robots.txt or raises
        return bool(self._client.submit(method, url, ticket, keep_body))

    async def request(self, method: str, url: str, **kw: Any) -> Any:
        origin = origin_of(url)
        rules = self._rules.get(origin)
        if rules is None:
            rules = await self._rules_of(origin, bool(kw.get("refuse_private")))
        if not self._allows(rules, url):
            self.blocked += 1
            raise RobotsDisallowed(f"robots.txt of {origin} disallows {url}")
        return await self._client.request(method, url, **kw)


    # -- robots.txt -------------------------------------------------------------------------------------

    def allows(self, url: str) -> bool | None:
        """Whether robots.txt allows ``url``; None while its origin's robots.txt is not known yet."""
        rules = self._rules.get(origin_of(url))
        return None if rules is None else self._allows(rules, url)

    def crawl_delay(self, url: str) -> float | None:
        """The Crawl-delay (or Request-rate interval) ``url``'s origin asks of this user agent, if known."""
        rules = self._rules.get(origin_of(url))
        if not isinstance(rules, Protego):
            return None
        delay = rules.crawl_delay(self.user_agent)
        rate = rules.request_rate(self.user_agent)
        if rate is not None and rate.requests:
            interval = rate.seconds / rate.requests
            delay = interval if delay is None else max(delay, interval)
        return float(delay) if delay else None

    def _allows(self, rules: Any, url: str) -> bool:
        if rules is _ALLOW_ALL:
            return True
        if rules is _DISALLOW_ALL:
            return False
        return bool(rules.can_fetch(url, self.user_agent))

    async def _rules_of(self, origin: str, guard: bool) -> Any:
        # The first request to an origin fetches its robots.txt; the others wait on its future. If the one
        # fetching is cancelled (or its guard refused the address), its future is cancelled and a waiter that
        # was not cancelled itself fetches.
        while True:
            fut = self._fetching.get(origin)
            if fut is None:
                fut = asyncio.get_running_loop().create_future()
                self._fetching[origin] = fut
                try:
                    rules = await self._fetch(origin, guard)
                except BaseException:
                    del self._fetching[origin]
                    fut.cancel()
                    raise
                rules_of = self._rules
                rules_of[origin] = rules
                if len(rules_of) > self.max_origins:
                    del rules_of[next(iter(rules_of))]
                del self._fetching[origin]
                fut.set_result(rules)
                if self.on_rules is not None:
                    self.on_rules(origin, rules)
                return rules
            try:
                return await asyncio.shield(fut)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not fut.cancelled() or (task is not None and task.cancelling()):
                    raise  # this request itself is being cancelled
                # the fetch was cancelled, not this request: ask again

    async def _fetch(self, origin: str, guard: bool) -> Any:
        url = origin + "/robots.txt"
        self.fetched += 1
        for hop in range(_REDIRECTS + 1):
            try:
                if guard:
                    resp = await self._client.request("GET", url, follow_redirects=False, max_body=_MAX_READ,
                                                      refuse_private=True)
                else:
                    resp = await self._client.request("GET", url, follow_redirects=False, max_body=_MAX_READ)
            except BlockedAddress:
                if hop == 0:
                    self.fetched -= 1  # nothing was sent
                    raise  # the page may not reach this origin, nor its robots.txt: the page is "blocked"
                return _ALLOW_ALL  # redirected into a private network: unavailable
            except RequestError:
                # Not reachable, or over _MAX_READ: the pages' own requests tell what is wrong with the host.
                return _ALLOW_ALL
            status = resp.status
            location = resp.headers.get("location")
            if 300 <= status < 400 and location:
                if not guard and self._peers is not None:
                    guard = self._peers.peer_class(url) != "private"  # as the client guards its redirects
                url = urljoin(url, location)
                continue
            if 200 <= status < 300:
                return Protego.parse(resp.content[:MAX_ROBOTS_BYTES].decode("utf-8", "replace"))
            return _ALLOW_ALL if status < 500 else _DISALLOW_ALL
        return _ALLOW_ALL  # more than 5 redirects: RFC 9309 counts it as unavailable, like a 4xx
