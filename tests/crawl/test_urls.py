"""Crawler URL rules: canonical forms (the dedup key), what is refused, and how links resolve."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from surge.crawl.urls import MAX_URL_LENGTH, canonicalize, resolve

# Pieces that URLs, broken ones included, are made of: schemes, delimiters, escapes (good and bad), IPv6
# literals, ports (default, odd, out of range), non-ASCII text, controls and a lone surrogate.
PIECES = ["http", "https", "HTTP", "hTTps", "ftp", "javascript", "mailto",
          ":", "//", "/", "\\", "?", "#", "&", "=", "@", "[", "]", "%", "..", ".", ";", "+",
          "::1", "[::1]", "[0:0::1]", "[v1.x]", "%2f", "%7E", "%zz", "%e9",
          " ", "\t", "\n", "\x00", "é", "ü", "例え", "xn--", "-", "_", "~",
          ":80", ":443", ":080", ":0", ":99999", ":x", "user:pw@", "Example.COM", "a", "B", "1", "\ud800"]
url_text = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=25).map("".join)
url_shaped = st.builds("{}://{}{}{}".format, st.sampled_from(["http", "https", "HTTP", "Https", "ftp"]),
                       url_text, url_text, url_text)
any_text = st.one_of(st.text(), url_text, url_shaped)


@pytest.mark.parametrize("url, canonical", [
    ("HTTP://Example.COM:80/a/../b?b=2&a=1#f", "http://example.com/b?a=1&b=2"),
    ("https://Example.com:443", "https://example.com/"),
    ("http://example.com:080/x", "http://example.com/x"),  # a port is a number: 080 is the default 80
    ("http://example.com:8080/x", "http://example.com:8080/x"),
    ("https://example.com:80/x", "https://example.com:80/x"),  # 80 is not https's default
    ("http://example.com:443/x", "http://example.com:443/x"),
    ("http://example.com:/x", "http://example.com/x"),  # an empty port is no port
    ("http://Bücher.Example/", "http://xn--bcher-kva.example/"),
    ("http://例え.テスト/", "http://xn--r8jz45g.xn--zckzah/"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("http://[0:0::1]:80/x", "http://[::1]/x"),
    ("https://[2001:DB8::1]:443", "https://[2001:db8::1]/"),
    ("http://example.com", "http://example.com/"),
    ("http://example.com?b=1", "http://example.com/?b=1"),
    ("http://example.com/p#section", "http://example.com/p"),
    ("http://example.com/p?#", "http://example.com/p"),
    ("http://h/s?b=2&a=1&a=0", "http://h/s?a=0&a=1&b=2"),
    ("http://h/s?b=&a", "http://h/s?a=&b="),  # blank values are kept
    ("http://h/%7euser/a%2fb?q=caf%c3%a9", "http://h/~user/a%2Fb?q=caf%C3%A9"),
    ("http://h/résumé?q=é", "http://h/r%C3%A9sum%C3%A9?q=%C3%A9"),
    ("http://h/a b?c d=e f", "http://h/a%20b?c+d=e+f"),
    ("http://h/./a/./b/../c", "http://h/a/c"),
    ("http://User:Secret@Example.com/", "http://User:Secret@example.com/"),
    ("http://user@h:8080/", "http://user@h:8080/"),
    ("  http://h/x \n", "http://h/x"),
    ("http://h/a\tb", "http://h/ab"),
])
def test_canonical_form(url: str, canonical: str) -> None:
    assert canonicalize(url) == canonical
    assert canonicalize(canonical) == canonical


@pytest.mark.parametrize("url", [
    "ftp://h/f",
    "mailto:a@b.example",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "data:text/html,hi",
    "http:///x",
    "http://",
    "http:h/x",
    "http://user@/p",
    "http://h:99999/",
    "http://h:65536/",
    "http://h:x/",
    "http://h:0/",  # nothing listens on port 0
    "http://[::1/",
    "http://[fe80::1%25eth0]/",  # a zone only means something on the machine that wrote the link
    "http://exa mple.com/",
    "http://a%41.example/",
    "http://h/\ud800",
    "/relative/path",
    "//h/scheme-relative",
    "not a url",
    "",
])
def test_what_we_do_not_crawl_is_none(url: str) -> None:
    assert canonicalize(url) is None


def test_length_limit_is_on_the_canonical_form() -> None:
    start = "http://h/"
    longest = start + "a" * (MAX_URL_LENGTH - len(start))
    assert canonicalize(longest) == longest
    assert canonicalize(longest + "a") is None
    assert canonicalize(longest + "#" + "f" * 5000) == longest  # the fragment is gone before the count
    assert canonicalize("http://h:80/" + "a" * (MAX_URL_LENGTH - len(start))) == longest
    assert canonicalize(start + "é" * 400) is None  # 400 characters, 3600 once percent-encoded


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_canonicalize_never_raises_and_is_idempotent(url: str) -> None:
    canon = canonicalize(url)
    if canon is not None:
        assert canon.startswith(("http://", "https://"))
        assert len(canon) <= MAX_URL_LENGTH
        assert "#" not in canon
        assert canonicalize(canon) == canon


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["http", "HTTP", "https"]),
       st.sampled_from(["example.com", "Example.COM", "[::1]", "b.c"]),
       st.sampled_from(["", ":80", ":443", ":8080"]),
       st.lists(st.sampled_from(["a", "b", "..", ".", "%41", "é"])),
       st.lists(st.tuples(st.sampled_from(["a", "b", "c d"]), st.sampled_from(["", "1", "2", "%C3%A9"]))))
def test_spellings_of_one_url_meet(scheme: str, host: str, port: str, segments: list[str],
                                   query: list[tuple[str, str]]) -> None:
    # Reordering the query and adding a fragment must not change the key.
    path = "/" + "/".join(segments)
    forward = "&".join(f"{k}={v}" for k, v in query)
    backward = "&".join(f"{k}={v}" for k, v in reversed(query))
    one = canonicalize(f"{scheme}://{host}{port}{path}?{forward}")
    other = canonicalize(f"{scheme}://{host}{port}{path}?{backward}#frag")
    assert one is not None and one == other


@pytest.mark.parametrize("base, href, url", [
    ("http://127.0.0.1:8080/site/p/3", "../p/7", "http://127.0.0.1:8080/site/p/7"),
    ("http://127.0.0.1:8080/site/p/3", "./q", "http://127.0.0.1:8080/site/p/q"),
    ("http://127.0.0.1:8080/site/p/3", "4", "http://127.0.0.1:8080/site/p/4"),
    ("http://h/a/b", "/root", "http://h/root"),
    ("http://h/a/b", "../../../../up", "http://h/up"),
    ("http://h/a/b", "//Other.Example/x", "http://other.example/x"),
    ("https://h/a/b", "//cdn.example/x", "https://cdn.example/x"),
    ("http://h/list?page=1", "?page=2", "http://h/list?page=2"),
    ("http://h/list?page=1", "p2#frag", "http://h/p2"),
    ("http://h/a", "HTTPS://Other.Example:443/a?b=1&a=2", "https://other.example/a?a=2&b=1"),
    ("http://h/a", "http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("http://h/a/", "  \n x y \t", "http://h/a/x%20y"),  # whitespace around goes, inside it is escaped
    ("http://h/a/", "/p\n/q\tr\r", "http://h/p/qr"),  # tabs and newlines inside go, as in browsers
    # "\" is "/" before the query, as in browsers: this one is scheme-relative
    ("http://h/a/", "\\\\evil.example\\x?a\\b", "http://evil.example/x?a%5Cb="),
    ("http://h/a/", "résumé", "http://h/a/r%C3%A9sum%C3%A9"),
])
def test_resolve(base: str, href: str, url: str) -> None:
    assert resolve(base, href) == url


@pytest.mark.parametrize("href", [
    "", "   ", "\n", "#", "#top", " #top",
    "javascript:void(0)", "JavaScript:alert(1)", " javascript:x", "java\tscript:x", "java\nscript:x",
    "mailto:a@b.example", "MAILTO:a@b.example", "tel:+123", "sms:123", "data:text/html,hi", "ftp://h/f",
    "file:///etc/passwd", "about:blank", "http://h:99999/", "http://[::1", "//[::1",
])
def test_resolve_skips(href: str) -> None:
    assert resolve("http://h/a/b", href) is None


@settings(max_examples=300, deadline=None)
@given(any_text, any_text)
def test_resolve_never_raises_and_gives_canonical_urls(base: str, href: str) -> None:
    url = resolve(base, href)
    if url is not None:
        assert canonicalize(url) == url


@settings(max_examples=200, deadline=None)
@given(url_shaped)
def test_absolute_links_do_not_depend_on_the_page(href: str) -> None:
    assert resolve("http://a.example/x/y", href) == resolve("https://[::1]:8/?q", href) == canonicalize(href)


plain_segment = st.text(alphabet="abcXYZ019._~-", min_size=0, max_size=6) | st.sampled_from([".", "..", ""])


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["http://127.0.0.1:8080", "https://example.com", "http://h.example:81"]),
       st.lists(plain_segment, max_size=5), st.sampled_from(["", "?q=1", "?a=1&b=2"]),
       st.booleans(), st.lists(plain_segment, min_size=1, max_size=6))
def test_plain_paths_take_the_short_way_to_the_same_url(origin: str, base_path: list[str], query: str,
                                                        rooted: bool, href_path: list[str]) -> None:
    from surge.crawl import urls

    base = canonicalize(origin + "/" + "/".join(base_path) + query)
    href = ("/" if rooted else "") + "/".join(href_path)
    assume(base is not None and href and not href.startswith("//"))
    assert base is not None
    slow = canonicalize(urljoin(base, href))
    fast = urls._join_plain(base, href)
    assert fast is None or fast == slow  # None: it leaves the case to w3lib
    assert resolve(base, href) == slow


def test_the_usual_links_take_the_short_way() -> None:
    from surge.crawl import urls

    page = "http://127.0.0.1:8080/site/p/3?x=1"
    assert urls._join_plain(page, "../p/7") == "http://127.0.0.1:8080/site/p/7"
    assert urls._join_plain(page, "7") == "http://127.0.0.1:8080/site/p/7"
    assert urls._join_plain(page, "/docs/./a/../intro.html") == "http://127.0.0.1:8080/docs/intro.html"
    assert urls._join_plain(page, "../../..") == "http://127.0.0.1:8080/"
    assert urls._join_plain("HTTP://127.0.0.1:8080/site/", "p/1") is None  # not a canonical base


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["http", "https"]),
       st.sampled_from(["127.0.0.1", "example.com", "h-1.example", "a..b", "-x.com", "xn--nxasmq6b.com",
                        "EXAMPLE.com", "a.b.", "localhost"]),
       st.sampled_from(["", ":80", ":443", ":8080", ":081", ":0", ":1", ":9999", ":4430", ":8"]),
       st.lists(plain_segment, max_size=5))
def test_absolute_links_already_canonical_are_taken_as_they_are(scheme: str, host: str, port: str,
                                                                segments: list[str]) -> None:
    url = f"{scheme}://{host}{port}/" + "/".join(segments)
    assert resolve("http://base.example/x/y", url) == canonicalize(url)
