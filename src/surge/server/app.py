"""Starting and stopping the target server inside a running event loop.

``serve()`` is what tests use (``async with serve() as url``); ``TargetServer`` is what the CLI runs.
"""

from __future__ import annotations

import asyncio
import socket
import ssl as _ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from surge.server.protocol import HttpServerProtocol
from surge.server.routes import TargetApp


def format_url(host: str, port: int, *, tls: bool = False) -> str:
    """The base URL of a server on ``host``:``port`` (IPv6 hosts in brackets)."""
    scheme = "https" if tls else "http"
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


class TargetServer:
    """A listening target server; ``url`` is its base URL once :meth:`start` returns."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, ssl: _ssl.SSLContext | None = None,
                 site_pages: int = 1000, site_links: int = 10, seed: int = 0,
                 sock: socket.socket | None = None, reuse_port: bool = False, backlog: int = 4096) -> None:
        self.host = host
        self.port = port
        self.url = ""
        self._ssl = ssl
        self._sock = sock
        self._reuse_port = reuse_port
        self._backlog = backlog
        self._server: asyncio.Server | None = None
        self.app = TargetApp(host=host, port=port, site_pages=site_pages, site_links=site_links, seed=seed)

    async def start(self) -> str:
        """Bind and listen; returns the base URL. Raises OSError when the address is unusable."""
        loop = asyncio.get_running_loop()
        app = self.app

        def factory() -> HttpServerProtocol:
            return HttpServerProtocol(app)

        if self._sock is not None:
            server = await loop.create_server(factory, sock=self._sock, ssl=self._ssl, backlog=self._backlog)
        else:
            server = await loop.create_server(factory, self.host, self.port, ssl=self._ssl,
                                              backlog=self._backlog, reuse_port=self._reuse_port or None)
        self._server = server
        sockname = server.sockets[0].getsockname()
        self.port = int(sockname[1])
        self.app.port = self.port
        if self._sock is not None:
            self.host = str(sockname[0])
        self.app.host = self.host
        self.url = format_url(self.host, self.port, tls=self._ssl is not None)
        return self.url

    async def aclose(self) -> None:
        """Stop listening and drop every open connection (their tasks are cancelled)."""
        server = self._server
        if server is None:
            return
        self._server = None
        server.close()
        for conn in list(self.app.connections):
            conn.abort()
        await server.wait_closed()
        # Let connection_lost callbacks run so route tasks are cancelled before the loop moves on.
        await asyncio.sleep(0)

    @property
    def connections(self) -> int:
        """Open connections now."""
        return len(self.app.connections)


@asynccontextmanager
async def serve(host: str = "127.0.0.1", port: int = 0, *, ssl: _ssl.SSLContext | None = None,
                site_pages: int = 1000, site_links: int = 10, seed: int = 0) -> AsyncIterator[str]:
    """Run the target server in the running loop for the ``async with`` block; yields its base URL.

    ::

        async with serve() as url:      # "http://127.0.0.1:<port>"
            ...                          # GET f"{url}/bytes/10"
    """
    server = TargetServer(host, port, ssl=ssl, site_pages=site_pages, site_links=site_links, seed=seed)
    url = await server.start()
    try:
        yield url
    finally:
        await server.aclose()
