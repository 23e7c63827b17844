"""URL rules of the crawler: a URL's canonical form (its dedup key) and what a link on a page points to.

Two spellings of one resource must meet in the frontier as one key, so case, default ports, dot segments,
percent-encoding and query order are normalised (by w3lib, as Scrapy does). Links come from pages nobody
vetted: anything the crawler cannot fetch (another scheme, no host, a bad port, a huge URL) is None, never
an exception.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urljoin

from w3lib.url import canonicalize_url

__all__ = ["MAX_URL_LENGTH", "canonicalize", "resolve"]

MAX_URL_LENGTH = 2083  # longer canonical URLs are refused (same limit as Scrapy's URLLENGTH_LIMIT)

# The start of a fetchable URL as canonicalize_url writes it: scheme and host lowercased, the host
# IDNA-encoded or a normalised IPv6 literal, the port a plain number, then a path that always starts with
# "/". A host of other characters (a space, "%", non-ASCII left by a failed IDNA encoding, an IPv6 zone)
# cannot be looked up, so it does not match.
_HTTP_START = re.compile(r"(https?)://(?:[^/@]*@)?(?:[a-z0-9_.\-]+|\[[0-9a-f:.]+\])(?::(\d+))?/")
_DEFAULT_PORTS = {"http": "80", "https": "443"}

# What the URL parser of a browser strips around a URL: C0 controls and space (ASCII whitespace included).
_C0_CONTROL_OR_SPACE = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def canonicalize(url: str) -> str | None:
    """The canonical form of an absolute http(s) URL, the crawler's dedup key.

    None if it is not one we crawl: another scheme, no host, a bad port, longer than MAX_URL_LENGTH.
    """
    # Hot path (every link found): one w3lib pass, one regex match, no second parse.
    try:
        canon = canonicalize_url(url, keep_blank_values=True)
    except Exception:
        # w3lib raises ValueError on a bad port or IPv6 literal and UnicodeError on a lone surrogate; whatever
        # a later version raises, one odd link must not stop a crawl, so any error means "not a URL we crawl".
        # The try holds only this call, so no bug of ours hides behind it.
        return None
    m = _HTTP_START.match(canon)
    if m is None:
        return None
    port = m[2]
    if port is not None:
        if port == _DEFAULT_PORTS[m[1]]:
            canon = canon[:m.start(2) - 1] + canon[m.end(2):]
        elif port == "0":
            return None  # nothing listens on port 0 (check_url refuses it too)
    if len(canon) > MAX_URL_LENGTH:
        return None
    return canon


# A relative reference canonicalization leaves as it is: letters, digits and "._~-" in "/"-separated segments.
# Most links on most pages look like this ("../p/7", "/docs/intro.html").
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._~/-]+")
# An absolute URL already in canonical form: lowercase host, a port without leading zero, plain segments none
# of which starts with "." (so no dot segments), a path ("/" at least).
_PLAIN_ABSOLUTE = re.compile(r"https?://[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::([1-9][0-9]{0,4}))?"
                             r"(?:/(?:[A-Za-z0-9_~-][A-Za-z0-9._~-]*)?)+")
_ORIGIN = re.compile(r"https?://[^/?#]+")


def resolve(base: str, href: str) -> str | None:
    """``href`` as found on a page at ``base`` (an absolute URL), made absolute and canonical.

    None to skip it: empty, only a fragment, another scheme (javascript:, mailto:, ...), or no URL we crawl.
    A plain relative path on a canonical ``base`` (what :func:`surge.crawl.links.extract_links` passes) is
    joined here directly: the same result as w3lib's, at a fifth of the cost.
    """
    if _PLAIN_PATH.fullmatch(href) and not href.startswith("//"):
        joined = _join_plain(base, href)
        if joined is not None:
            return joined
    elif (m := _PLAIN_ABSOLUTE.fullmatch(href)) is not None:
        port = m[1]
        if port is None or (port != ("80" if href[4] == ":" else "443") and int(port) < 65536):
            return href if len(href) <= MAX_URL_LENGTH else None
    # Browsers strip C0 controls and spaces around a URL and drop tabs and newlines inside it, so an
    # attribute split over lines, or "java\tscript:", means what a browser makes of it.
    href = href.strip(_C0_CONTROL_OR_SPACE)
    if "\t" in href or "\n" in href or "\r" in href:
        href = href.translate(_TAB_OR_NEWLINE)
    if not href or href[0] == "#":
        return None  # the page itself
    if "\\" in href:
        href = _backslashes_as_slashes(href)
    m = _SCHEME.match(href)
    if m is not None:
        scheme = m[0].lower()
        if scheme not in ("http:", "https:"):
            return None  # javascript:, mailto:, tel:, data:, ftp:, ...
        if href.startswith("//", m.end()):
            return canonicalize(href)  # absolute: nothing to join (urljoin would cost a fifth of the call)
    try:
        url = urljoin(base, href)
    except ValueError:
        return None  # a malformed IPv6 literal in base or href
    return canonicalize(url)


def _backslashes_as_slashes(href: str) -> str:
    # Browsers read "\" as "/" before the query in http(s) URLs (so "\\evil.com\x" is scheme-relative);
    # urljoin does not. canonicalize already reads absolute URLs that way (w3lib follows the URL Standard).
    cut = len(href)
    for delim in "?#":
        i = href.find(delim, 0, cut)
        if i >= 0:
            cut = i
    return href[:cut].replace("\\", "/") + href[cut:]


@lru_cache(maxsize=64)
def _is_canonical(base: str) -> bool:
    # Asked once a page (its links share the base), not once a link.
    return canonicalize(base) == base


def _join_plain(base: str, href: str) -> str | None:
    # RFC 3986 5.2: merge with the base's directory (or take an absolute path), remove dot segments. On a
    # canonical base with a plain path the result is canonical as it stands; anything else takes the slow way.
    m = _ORIGIN.match(base)
    if m is None:
        return None
    if not _is_canonical(base):
        return None
    origin = m[0]
    if href[0] == "/":
        path = href
    else:
        rest = base[m.end():]  # canonical: a path, maybe a query, no fragment
        query = rest.find("?")
        path = rest[:rest.rfind("/", 0, query if query >= 0 else len(rest)) + 1] + href
    if "//" in path:
        return None  # urljoin drops empty segments, RFC 3986 keeps them: leave the choice to the slow way
    out: list[str] = []
    segments = path.split("/")
    for seg in segments[1:-1]:
        if seg == "..":
            if out:
                out.pop()
        elif seg != ".":
            out.append(seg)
    last = segments[-1]
    if last == "..":
        if out:
            out.pop()
        last = ""
    elif last == ".":
        last = ""
    out.append(last)
    url = origin + "/" + "/".join(out)
    return url if len(url) <= MAX_URL_LENGTH else None
