"""New URLs on a known origin are prepared from a per-origin template: always the bytes a full parse gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from surge.errors import InvalidURL
from surge.http import Client
from surge.http.request import Prepared, parse_url

ORIGINS = ["http://127.0.0.1:8080", "https://Example.COM", "HTTP://h:80", "http://[::1]:9", "https://b.c:443",
           "http://user:pw@h.example", "http://h"]
TAILS = ["", "/", "/a/b", "?q=1", "/p?x=1&y=%20", "#frag", "/a#f?g", "/é x", "/a?", "?", "/a?#f", "/ sp",
         "/%zz", "/a\tb", "//x", "/;p=1?q#", "/[v]"]


def same(a: Prepared, b: Prepared) -> None:
    assert (a.method, a.head, a.body, a.chunked, a.idempotent, a.is_head, a.headers) == \
        (b.method, b.head, b.body, b.chunked, b.idempotent, b.is_head, b.headers)
    ta, tb = a.target, b.target
    assert (ta.scheme, ta.host, ta.port, ta.tls, ta.key, ta.target, ta.host_header, ta.url) == \
        (tb.scheme, tb.host, tb.port, tb.tls, tb.key, tb.target, tb.host_header, tb.url)


def check(client: Client, method: str, url: str) -> bool:
    """True when the template path took the URL; it must then agree with the full parse."""
    try:
        full = client._prepare(method, parse_url(url), None, None)
    except InvalidURL:
        full = None
    fast = client._from_origin(method, url)
    if fast is None:
        return False
    assert full is not None, url
    same(fast, full)
    return True


def test_known_shapes() -> None:
    client = Client(headers={"X-A": "1"})
    taken = 0
    for origin in ORIGINS:
        for tail in TAILS:
            for method in ("GET", "HEAD", "POST", "delete"):
                taken += check(client, method, origin + tail)
    assert taken > len(ORIGINS) * len(TAILS) * 2  # the common shapes do take the fast path


def test_same_origin_in_a_row_reuses_the_last_template() -> None:
    # A list comes host by host: _from_origin then matches the last origin part by one comparison. The
    # bytes must still be those of the full parse, including URLs that share the prefix but not the origin.
    client = Client()
    taken = 0
    for method in ("GET", "HEAD"):
        for origin in ORIGINS:
            for url in [origin + tail for tail in TAILS] + [origin + "0/x", origin + ":1/x", origin + "@h/x"]:
                taken += check(client, method, url)
    assert taken > len(ORIGINS) * len(TAILS)
    assert client._last_template[1] == "http://h@h"  # the last URL's origin part


@given(st.sampled_from(ORIGINS), st.text(alphabet="/?#&=%a-._~ é\t:@!", max_size=12))
def test_any_tail(origin: str, tail: str) -> None:
    check(Client(), "GET", origin + tail)


def test_not_taken_through_a_proxy_or_for_odd_urls() -> None:
    assert Client(proxy="http://127.0.0.1:3128")._from_origin("GET", "http://h/a") is None
    client = Client()
    for url in ["no-scheme/a", "ftp://h/a", "http:///a", "http://h:99999/a", "http://h:x/"]:
        assert client._from_origin("GET", url) is None, url
