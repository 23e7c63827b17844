"""Link extraction: the canonical URLs a fetched HTML page points to, ready for the frontier.

Only what a polite crawler may follow: ``<a>`` and ``<area>`` hrefs (resolved against ``<base href>`` as a
browser does), not ``rel="nofollow"`` links, nothing when the page's robots meta says nofollow. Pages are
untrusted: any bytes parse, and a link farm yields at most ``limit`` links.
"""

from __future__ import annotations

import html
import re
import zlib

from selectolax.lexbor import LexborHTMLParser

from surge.crawl.urls import resolve

__all__ = ["MAX_LINKS", "MAX_SITEMAP_URLS", "extract_links", "extract_sitemap", "is_sitemap"]

MAX_LINKS = 10_000  # links taken from one page at most (a link farm cannot flood the frontier)
MAX_SITEMAP_URLS = 50_000  # the sitemap protocol's limit for one file
MAX_SITEMAP_BYTES = 50 * 2**20  # and its size limit, uncompressed: a gzip bomb stops here

_ROBOTS_TOKENS = re.compile(r"[\s,]+")


def extract_links(html: str | bytes, page_url: str, *, limit: int = MAX_LINKS) -> tuple[list[str], bool]:
    """The distinct canonical links of an HTML page, in document order, and whether the page says nofollow."""
    # encoding=True: bytes are read in the charset a BOM or <meta charset> declares (UTF-8 otherwise), so a
    # legacy page's non-ASCII hrefs come out as the characters the author wrote; bad bytes become U+FFFD.
    tree = LexborHTMLParser(html, encoding=True)
    for meta in tree.css('meta[name="robots" i]'):
        tokens = _ROBOTS_TOKENS.split((meta.attrs.get("content") or "").lower())
        if "nofollow" in tokens or "none" in tokens:
            return [], True
    if limit <= 0:
        return [], False
    base = page_url
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        # An unusable <base href> (javascript:, a bad host) leaves the page's own URL as the base.
        base = resolve(page_url, base_node.attrs.get("href") or "") or page_url
    # Hot loop (every link of every page): a dict keeps the first occurrence of each URL, in order.
    links: dict[str, None] = {}
    for node in tree.css("a[href], area[href]"):
        attrs = node.attrs
        rel = attrs.get("rel")
        if rel is not None and "nofollow" in rel.lower().split():
            continue
        url = resolve(base, attrs.get("href") or "")
        if url is not None and url not in links:
            links[url] = None
            if len(links) >= limit:
                break
    return list(links), False


_LOC = re.compile(rb"<loc>\s*(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?\s*</loc>", re.S)
_SITEMAP_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:urlset|sitemapindex)[\s>]")


def _gunzip(body: bytes) -> bytes:
    # A .xml.gz sitemap served as a file (no Content-Encoding): at most MAX_SITEMAP_BYTES come out.
    try:
        return zlib.decompressobj(wbits=31).decompress(body, MAX_SITEMAP_BYTES)
    except zlib.error:
        return b""


def is_sitemap(body: bytes) -> bool:
    """Whether ``body`` (maybe gzipped) is a sitemap: an XML ``<urlset>`` or ``<sitemapindex>``."""
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body[:65536] if len(body) > 65536 else body)
    return _SITEMAP_ROOT.search(body[:4096]) is not None


def extract_sitemap(body: bytes, sitemap_url: str, *, limit: int = MAX_SITEMAP_URLS) -> list[str]:
    """The distinct canonical URLs a sitemap (or sitemap index) lists, in order, at most ``limit``.

    ``<loc>`` elements are read by a pattern, not an XML parser: a sitemap nobody vetted cannot expand
    entities or nest without end here, and a file cut short still yields what it has.
    """
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body)
    urls: dict[str, None] = {}
    for m in _LOC.finditer(body[:MAX_SITEMAP_BYTES]):
        loc = html.unescape(m[1].decode("utf-8", "replace"))
        url = resolve(sitemap_url, loc)
        if url is not None and url not in urls:
            urls[url] = None
            if len(urls) >= limit:
                break
    return list(urls)
