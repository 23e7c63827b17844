"""A Connection fed hostile bytes directly, in segments of any size: the head caps hold however it is cut.

The end-to-end shapes (and the three request paths) are in test_paths_agree.py; here the segmentation is
chosen byte by byte, which a real socket does not allow, and a single segment may exceed the receive buffer
(uvloop reads up to 256 KiB at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from surge.errors import ProtocolError
from surge.http.connection import MAX_HEAD, MAX_HEADERS, MAX_INTERIM, Connection
from surge.http.head import head_problem


class FakeTransport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True

    close = abort

    def is_closing(self) -> bool:
        return self.aborted

    def write(self, data: bytes) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _connection(method: str = "GET") -> tuple[Connection, asyncio.Future[None], FakeTransport]:
    loop = asyncio.get_running_loop()
    conn = Connection(loop, ("http", "h", 80), lambda c: None)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    fut = conn.send(b"GET / HTTP/1.1\r\n\r\n", None, True, None, None, method == "HEAD", False, loop.time())
    return conn, fut, transport


def _feed(conn: Connection, data: bytes, size: int) -> None:
    for i in range(0, len(data), size):
        if conn.closed:
            break
        conn.data_received(data[i:i + size])


def _head_of(size: int, status: bytes = b"200 OK") -> bytes:
    """A head exactly ``size`` bytes long up to and including its blank line."""
    start = b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\nX-Pad: "
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


def _fields(n: int) -> bytes:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(n - 1))
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + fields + b"\r\n"


EARLY = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
SEGMENTS = [1, 7, 1000, 1 << 20]  # bytes a segment: one byte, odd sizes, all at once


def _outcome(fut: asyncio.Future[None]) -> str:
    if not fut.done():
        return "pending"
    exc = fut.exception()
    return "ok" if exc is None else f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("size", SEGMENTS)
async def test_head_cap_is_exact_however_the_head_is_cut(size: int) -> None:
    conn, fut, _ = _connection()
    _feed(conn, _head_of(MAX_HEAD) + b"ok", size)
    assert _outcome(fut) == "ok" and conn.reusable
    conn, fut, transport = _connection()
    _feed(conn, _head_of(MAX_HEAD + 1) + b"ok", size)
    assert _outcome(fut) == f"ProtocolError: response head larger than {MAX_HEAD} bytes"
    assert transport.aborted and not conn.reusable


@pytest.mark.parametrize("size", SEGMENTS)
async def test_interim_heads_count_toward_the_head_cap(size: int) -> None:
    interim = _head_of(MAX_HEAD // 4, b"103 Early Hints")
    conn, fut, _ = _connection()
    _feed(conn, interim * 3 + _head_of(MAX_HEAD // 4 - 10) + b"ok", size)
    assert _outcome(fut) == "ok"
    conn, fut, _ = _connection()
    _feed(conn, interim * 3 + _head_of(MAX_HEAD // 4 + 1) + b"ok", size)
    assert _outcome(fut) == f"ProtocolError: response head larger than {MAX_HEAD} bytes"


@pytest.mark.parametrize("size", SEGMENTS)
async def test_field_cap(size: int) -> None:
    conn, fut, _ = _connection()
    _feed(conn, _fields(MAX_HEADERS) + b"ok", size)
    assert _outcome(fut) == "ok"
    conn, fut, _ = _connection()
    _feed(conn, _fields(MAX_HEADERS + 1) + b"ok", size)
    assert _outcome(fut) == f"ProtocolError: more than {MAX_HEADERS} header fields"
    conn, fut, _ = _connection()
    _feed(conn, EARLY + _fields(MAX_HEADERS + 1) + b"ok", size)  # after an interim head too
    assert _outcome(fut) == f"ProtocolError: more than {MAX_HEADERS} header fields"


@pytest.mark.parametrize("size", SEGMENTS)
async def test_interim_cap_fires_without_waiting_for_the_final_head(size: int) -> None:
    conn, fut, _ = _connection()
    _feed(conn, EARLY * MAX_INTERIM + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", size)
    assert _outcome(fut) == "ok"
    conn, fut, _ = _connection()
    _feed(conn, EARLY * (MAX_INTERIM + 1), size)  # and nothing more: the cap, not the read timeout, ends it
    assert _outcome(fut) == f"ProtocolError: more than {MAX_INTERIM} interim (1xx) responses"


async def test_endless_chunk_framing_is_refused_but_tiny_chunks_are_not() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    conn, fut, _ = _connection()
    conn.data_received(head + b"1;")
    for _ in range(1000):  # 64 MB of one chunk extension, 64 KiB at a time, if nothing stops it
        conn.data_received(b"e" * 65536)
        if fut.done():
            break
    assert _outcome(fut).startswith("ProtocolError: chunked framing")
    conn, fut, _ = _connection()
    body = b"".join(b"1\r\n%c\r\n" % (97 + i % 26) for i in range(100_000)) + b"0\r\n\r\n"
    _feed(conn, head + body, 65536)
    assert _outcome(fut) == "ok" and conn.num_bytes == 100_000


async def test_head_response_with_a_body_is_not_reused() -> None:
    conn, fut, _ = _connection("HEAD")
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
    assert _outcome(fut) == "ok" and conn.reusable and conn.chunks == []
    conn, fut, _ = _connection("HEAD")
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert _outcome(fut) == "ok" and not conn.reusable and conn.chunks == []


async def test_a_bug_in_a_callback_is_not_reported_as_a_bad_response(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Connection) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(Connection, "on_message_complete", broken)  # before the parser binds its callbacks
    conn, _, _ = _connection()
    with pytest.raises(Exception) as info:
        conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert isinstance(info.value.__context__, KeyError)
    assert not isinstance(info.value, ProtocolError)


def _cuts(data: bytes) -> Iterator[bytes]:
    for i in range(len(data) + 1):
        yield data[:i]


def test_head_problem_never_judges_what_has_not_arrived() -> None:
    # Every prefix of an acceptable head is acceptable so far: a head split anywhere is not refused early.
    good = EARLY * MAX_INTERIM + _fields(MAX_HEADERS)
    for prefix in _cuts(good):
        assert head_problem(prefix, MAX_HEAD, MAX_HEADERS, MAX_INTERIM) is None, prefix[-20:]
