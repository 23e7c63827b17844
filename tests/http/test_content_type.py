"""``Response.content_type``: read cheaply from the raw head, always what ``headers.get`` says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from http_scripted import Script

from surge.http import Client, Response
from surge.http.head import header_value
from surge.http.models import NOT_READ

HEADS = [
    # (raw head + start of body, expected)
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", "text/plain"),
    (b"HTTP/1.1 200 OK\r\ncontent-TYPE:   a/b; charset=x  \r\n\r\n", "a/b; charset=x"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", None),
    # A header-looking line in the body is not a header.
    (b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nx\r\nContent-Type: text/evil\r\n\r\n", None),
    (b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 30\r\n\r\nx\r\nContent-Type: c/d\r\n", "a/b"),
    # Repeated fields are joined, whatever their case, as Headers.get does.
    (b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nX: y\r\nCONTENT-TYPE: c/d\r\n\r\n", "a/b, c/d"),
    # An obsolete folded value continues on the next line.
    (b"HTTP/1.1 200 OK\r\nContent-Type: a/b;\r\n charset=x\r\nX: y\r\n\r\n", "a/b; charset=x"),
    # Interim 1xx heads come first; only the final head counts.
    (b"HTTP/1.1 103 Early Hints\r\nContent-Type: no/no\r\n\r\n"
     b"HTTP/1.1 200 OK\r\nContent-Type: yes/yes\r\n\r\n", "yes/yes"),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", None),
    (b"HTTP/1.1 200 OK\r\nContent-Type: last\r\n\r\n", "last"),
]


@pytest.mark.parametrize(("raw", "expected"), HEADS)
def test_header_value_matches_full_parse(raw: bytes, expected: str | None) -> None:
    assert header_value(raw, b"content-type") == expected
    # The same head split across several received segments.
    r = Response.__new__(Response)
    r._head = [raw[:7], raw[7:20], raw[20:]]
    r._headers = None
    r._content_type = NOT_READ
    assert r.content_type == expected
    assert r.headers.get("content-type") == expected


def test_constructed_response_uses_its_headers() -> None:
    assert Response(200, headers=[("Content-Type", "text/html")]).content_type == "text/html"
    assert Response(200).content_type is None


async def test_from_the_wire(scripted: Callable[[Script], asyncio.Future[str]]) -> None:
    answers = {
        1: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nok",
        2: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        3: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-type: a/b\r\nContent-Type: c/d\r\n\r\nok",
    }
    url = await scripted(Script(lambda n, head, body: (answers[n], False)))
    async with Client() as c:
        r1 = await c.request("GET", url + "/1", keep_body=False)
        r2 = await c.request("GET", url + "/2")
        r3 = await c.request("GET", url + "/3")
    assert r1.content_type == "text/plain; charset=utf-8"
    assert r1.content_type is r1.content_type  # read once, then cached
    assert r2.content_type is None
    assert r3.content_type == "a/b, c/d" == r3.headers.get("content-type")
    # Headers decoded first: the property reads them instead of the raw head.
    r3._content_type = NOT_READ
    assert r3.content_type == "a/b, c/d"


def test_a_repeated_head_is_answered_from_the_memo_and_a_different_one_is_not() -> None:
    a = b"HTTP/1.1 200 OK\r\nContent-Type: a/a\r\n\r\n"
    b = b"HTTP/1.1 200 OK\r\nContent-Type: b/b\r\n\r\n"
    answers = []
    for raw in (a, a, b, a, b"HTTP/1.1 200 OK\r\n\r\n"):
        r = Response.__new__(Response)
        r._head = [raw]
        r._headers = None
        r._content_type = NOT_READ
        answers.append(r.content_type)
    assert answers == ["a/a", "a/a", "b/b", "a/a", None]


@pytest.mark.parametrize("charset", ["idna", "punycode", "undefined", "base64", "no-such-codec", "x\xe9"])
def test_text_falls_back_to_utf8_for_any_charset_the_server_names(charset: str) -> None:
    # "idna" and "undefined" raise UnicodeError whatever the error handler; "base64" is not a text encoding.
    content_type = f"text/html; charset={charset}"
    r = Response(200, headers=[("Content-Type", content_type)], content=b"caf\xc3\xa9 \xff")
    assert r.text() == "café \ufffd"
