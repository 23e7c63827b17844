"""surge.http.Client inside the SSRF namespace (see ssrf_netns.py): prints one JSON object, check -> outcome.

An outcome is the response status or the name of the exception; test_ssrf.py holds what each must be, and
checks in the servers' request log that a refused request never reached the private server.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any
from urllib.parse import quote

from ssrf_netns import REDIRECTOR

from surge.errors import RequestError
from surge.http import Client, Resolver, deny_private
from surge.http.resolver import Address


def go(start: str, url: str) -> str:
    """A URL on ``start`` (a server with /go) that redirects to ``url``."""
    return f"{start}/go?u={quote(url, safe='')}"


class Table(Resolver):
    """Names from a fixed table (in-process DNS: what a hostile name server could answer)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        super().__init__()
        self.table = table

    async def lookup(self, host: str, port: int) -> list[Address]:
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip) for ip in self.table[host]]


async def outcome(client: Client, url: str, **kw: Any) -> int | str:
    try:
        return (await client.request("GET", url, **kw)).status
    except RequestError as exc:
        return type(exc).__name__


async def main() -> dict[str, Any]:
    private = "http://127.0.0.1:8080"
    got: dict[str, Any] = {}
    async with Client() as c:
        got["direct-loopback"] = await outcome(c, private + "/direct")
        got["direct-metadata"] = await outcome(c, "http://169.254.169.254:8080/direct")
        got["direct-name"] = await outcome(c, "http://internal.test:8080/warm")  # now kept alive
        got["pooled-name"] = await outcome(c, go(REDIRECTOR, "http://internal.test:8080/pooled"))
        got["public-to-public"] = await outcome(c, go(REDIRECTOR, "http://5.6.7.8/hop"))
        got["private-to-private"] = await outcome(c, go(private, "http://[::1]:8080/p2p"))
        got["private-public-private"] = await outcome(c, go(private, go(REDIRECTOR, private + "/back")))
        got["refuse-private"] = await outcome(c, private + "/refused", refuse_private=True)
        got["refuse-private-public"] = await outcome(c, "http://5.6.7.8/refuse", refuse_private=True)
        got["peer-class"] = [c.peer_class(REDIRECTOR + "/"), c.peer_class(private + "/"),
                             c.peer_class("http://10.9.9.9/")]
    table = {"rebind.test": ["127.0.0.1"], "v6.test": ["::1"], "mixed.test": ["127.0.0.1", "5.6.7.8"]}
    async with Client(resolver=Table(table)) as c:
        got["table-name"] = await outcome(c, go(REDIRECTOR, "http://rebind.test:8080/table"))
        got["table-v6"] = await outcome(c, go(REDIRECTOR, "http://v6.test:8080/table-v6"))
        got["table-mixed"] = await outcome(c, go(REDIRECTOR, "http://mixed.test/mixed"))
    async with Client(allow_private=True) as c:
        got["allow-private"] = await outcome(c, go(REDIRECTOR, private + "/allowed"))
    async with Client(address_policy=deny_private) as c:  # the stricter policy: every request
        got["deny-private-direct"] = await outcome(c, private + "/denied")
        got["deny-private-mapped"] = await outcome(c, "http://[::ffff:127.0.0.1]:8080/denied")
        got["deny-private-public"] = await outcome(c, "http://5.6.7.8/deny")
    return got


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
