"""The synthetic website under ``/site/``: a deterministic graph of HTML pages for crawl tests.

Pages, links and the exact number of pages a polite same-host crawl reaches follow from (pages, links, seed).
"""

from __future__ import annotations

import enum
from collections import deque
from functools import lru_cache
from html import escape

ROOT = "/site/"
PAGE_PREFIX = "/site/p/"
PRIVATE_PREFIX = "/site/private/"
EXTERNAL_HOST = "external.invalid"
_MASK = 2**64 - 1


class LinkKind(enum.Enum):
    """How a link is written, and whether a same-host crawl that obeys robots.txt follows it."""

    RELATIVE = "relative"        # "p/7", "7", "../p/7", "../", "./"
    ABSOLUTE = "absolute"        # "http://<host>/site/p/7" or "/site/p/7"
    FRAGMENT = "fragment"        # a relative link with "#s3"
    DUPLICATE = "duplicate"      # the previous link again, written the same way
    DISALLOWED = "disallowed"    # "/site/private/7": robots.txt disallows it
    ALIAS = "alias"              # the same server under another host name ("localhost" vs "127.0.0.1")
    EXTERNAL = "external"        # "http://external.invalid/...": never resolves


# Cumulative thresholds out of 100 for each kind (the first link of a page is never a duplicate).
_KINDS: tuple[tuple[int, LinkKind], ...] = (
    (40, LinkKind.RELATIVE), (55, LinkKind.ABSOLUTE), (65, LinkKind.FRAGMENT), (75, LinkKind.DUPLICATE),
    (85, LinkKind.DISALLOWED), (93, LinkKind.ALIAS), (100, LinkKind.EXTERNAL),
)
_FOLLOWED = frozenset({LinkKind.RELATIVE, LinkKind.ABSOLUTE, LinkKind.FRAGMENT})


def _mix(x: int) -> int:
    # splitmix64 finaliser: cheap, well-spread, identical on every platform and Python version.
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def page_links(page: int, pages: int, links: int, seed: int = 0) -> list[tuple[LinkKind, int, int]]:
    """The links on page ``page``: (kind, target page, variant bits); duplicates repeat the previous entry."""
    out: list[tuple[LinkKind, int, int]] = []
    base = _mix(seed & _MASK) ^ (page * 0x100000001B3)
    for j in range(links):
        h = _mix(base + j * 0x9E3779B1)
        roll = h % 100
        kind = next(k for limit, k in _KINDS if roll < limit)
        if kind is LinkKind.DUPLICATE:
            if out:
                out.append(out[-1])
                continue
            kind = LinkKind.RELATIVE
        out.append((kind, (h >> 8) % pages, (h >> 40) & 0xFF))
    return out


def page_path(page: int) -> str:
    """The path of page ``page``: ``/site/`` for page 0, ``/site/p/<n>`` otherwise."""
    return ROOT if page == 0 else f"{PAGE_PREFIX}{page}"


def _relative(page: int, target: int, variant: int) -> str:
    if page == 0:
        return "./" if target == 0 else f"p/{target}"
    if target == 0:
        return "../"
    return f"{target}" if variant & 1 else f"../p/{target}"


def href(page: int, kind: LinkKind, target: int, variant: int, *, authority: str, alias: str) -> str:
    """The href text of one link on ``page`` as served to a client that asked for ``authority``."""
    if kind is LinkKind.RELATIVE:
        return _relative(page, target, variant)
    if kind is LinkKind.FRAGMENT:
        return f"{_relative(page, target, variant)}#s{variant}"
    if kind is LinkKind.ABSOLUTE:
        return f"http://{authority}{page_path(target)}" if variant & 2 else page_path(target)
    if kind is LinkKind.DISALLOWED:
        return f"{PRIVATE_PREFIX}{target}"
    if kind is LinkKind.ALIAS:
        return f"http://{alias}{page_path(target)}"
    return f"http://{EXTERNAL_HOST}{page_path(target)}"


def render_page(page: int, pages: int, links: int, seed: int, *, authority: str, alias: str) -> bytes:
    """The HTML of page ``page``."""
    hrefs = (escape(href(page, kind, target, variant, authority=authority, alias=alias))
             for kind, target, variant in page_links(page, pages, links, seed))
    items = "".join(f'<li><a href="{h}">link {i}</a></li>\n' for i, h in enumerate(hrefs))
    return (
        f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>surge site page {page}</title></head>\n"
        f"<body><h1 id=\"top\">Page {page}</h1>\n<p>A page of the synthetic site (seed {seed}).</p>\n"
        f"<ul>\n{items}</ul></body></html>\n"
    ).encode()


def render_private(number: int) -> bytes:
    """A page behind the robots.txt Disallow: it exists, but polite crawlers never fetch it."""
    return (f"<!doctype html>\n<html><head><title>private {number}</title></head>"
            f"<body><p>robots.txt disallows this page.</p></body></html>\n").encode()


def robots_txt(authority: str) -> bytes:
    """robots.txt: disallows the private pages and the fault endpoints, points at the sitemap."""
    return (f"User-agent: *\nDisallow: {PRIVATE_PREFIX}\nDisallow: /fault/\n\n"
            f"Sitemap: http://{authority}/sitemap.xml\n").encode()


def sitemap_xml(pages: int, authority: str, limit: int = 50_000) -> bytes:
    """sitemap.xml listing every page (at most ``limit``, the protocol's per-file maximum)."""
    count = min(pages, limit)
    urls = "".join(f"<url><loc>http://{authority}{page_path(p)}</loc></url>\n" for p in range(count))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{urls}</urlset>\n').encode()


@lru_cache(maxsize=16)
def site_reachable(pages: int, links: int, seed: int = 0) -> int:
    """How many pages under /site/ a crawl from ``/site/`` reaches on the same host, obeying robots.txt.

    Counts ``/site/`` itself; private pages, other hosts and the alias host are not followed::

        >>> site_reachable(1, 10)
        1
    """
    if pages <= 0:
        return 0
    seen = bytearray(pages)
    seen[0] = 1
    count = 1
    todo = deque([0])
    while todo:
        page = todo.popleft()
        for kind, target, _ in page_links(page, pages, links, seed):
            if kind in _FOLLOWED and not seen[target]:
                seen[target] = 1
                count += 1
                todo.append(target)
    return count
