"""A scripted HTTP/1.1 server protocol for client tests: each request's answer comes from a function."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


@dataclass
class Script:
    """What a ScriptedServer does with the n-th request (1-based) on a connection: bytes to send, and
    whether to close afterwards. ``None`` as bytes = close without answering."""

    respond: Callable[[int, bytes, bytes], tuple[bytes | None, bool]]  # (n, head, body)
    connections: int = 0  # accepted so far
    open_now: int = 0
    max_open: int = 0
    requests: list[bytes] = field(default_factory=list)


class ScriptedProtocol(asyncio.Protocol):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.buf = b""
        self.n = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        s = self.script
        s.connections += 1
        s.open_now += 1
        s.max_open = max(s.max_open, s.open_now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.script.open_now -= 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if len(rest) < length:
                return
            body, self.buf = rest[:length], rest[length:]
            self.n += 1
            self.script.requests.append(head)
            out, close = self.script.respond(self.n, head, body)
            assert self.transport is not None
            if out is not None:
                self.transport.write(out)
            if close or out is None:
                self.transport.close()
                return


