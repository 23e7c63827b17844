"""The part every crawl layer in front of the HTTP client shares: passing on what it does not change.

A layer (robots.txt, the private-address guard) overrides ``submit``/``request``; ``cancel``,
``statistics`` and ``aclose`` go to the client underneath unchanged.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClientLayer"]


class ClientLayer:
    """Wraps ``client`` (a :class:`surge.http.Client` or another layer) and passes every call on."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def submit(self, method: str, url: str, ticket: Any, keep_body: bool = True) -> bool:
        return bool(self._client.submit(method, url, ticket, keep_body))

    async def request(self, method: str, url: str, **kw: Any) -> Any:
        return await self._client.request(method, url, **kw)

    def cancel(self, ticket: Any) -> None:
        self._client.cancel(ticket)

    def statistics(self) -> Any:
        return self._client.statistics()

    async def aclose(self) -> None:
        await self._client.aclose()
