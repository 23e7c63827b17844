"""Links and redirects on public pages may not lead into private networks: a Sender in front of the client.

A URL found on a page whose address was public is requested with ``refuse_private=True``: the client then
refuses to connect to an address that is not public (``BlockedAddress``, outcome ``blocked``, nothing sent),
judging the very addresses it connects to. The seeds, and URLs found on private pages, go as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from surge.crawl.wrapper import ClientLayer
from surge.engine.items import WorkItem

__all__ = ["PrivateGuard"]


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class PrivateGuard(ClientLayer):
    """Wraps ``client`` (what the engine calls: a :class:`surge.http.Client`, or a RobotsGate in front of it).

    ``peers`` is the :class:`surge.http.Client` underneath: its ``peer_class(url)`` says which class of
    address a page just fetched came from. The crawler calls :meth:`found` with the URLs a page yields and
    :meth:`done` once a URL has its outcome; in between, the URL is remembered (one dict entry: the queue
    holds the URL anyway). ``seeds``: the crawl's seed URLs.
    """

    def __init__(self, client: Any, peers: Any, seeds: Iterable[str]) -> None:
        super().__init__(client)
        self._peer_class = peers.peer_class
        self._from_public: dict[str, bool] = {}  # URL admitted, not done -> its page was public
        self._seed_hosts = frozenset(map(_host, seeds))

    def found(self, parent: str, items: list[WorkItem]) -> None:
        """``items`` were found on the page ``parent``, just fetched (a link, or a redirect's target)."""
        if items:
            # "mixed" or unknown counts as public: only a page known to come from a private address vouches.
            public = self._peer_class(parent) != "private"
            from_public = self._from_public
            for item in items:
                from_public[item.url] = public

    def done(self, url: str) -> None:
        """``url`` has its outcome: it is not requested again."""
        self._from_public.pop(url, None)

    def guarded(self, url: str) -> bool:
        """Whether ``url`` may reach public addresses only."""
        public = self._from_public.get(url)
        if public is not None:
            return public
        # A seed, or a URL an earlier run queued (--state), whose page's address is not known any more: on a
        # seed's host it goes as the seeds do (a local crawl resumes as it ran); elsewhere it is guarded.
        return _host(url) not in self._seed_hosts

    # -- the Sender interface the engine uses -----------------------------------------------------------

    def submit(self, method: str, url: str, ticket: Any, keep_body: bool = True) -> bool:
        # A guarded URL takes the request path, where a kept-alive connection's peer is checked.
        if self.guarded(url):
            return False
        return bool(self._client.submit(method, url, ticket, keep_body))

    async def request(self, method: str, url: str, **kw: Any) -> Any:
        if self.guarded(url):
            kw["refuse_private"] = True
        return await self._client.request(method, url, **kw)

