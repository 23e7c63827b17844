"""What the crawler follows: scope, trap rules, depth, a page budget and deduplication, as one decision.

Pure logic: links in (canonical URLs, from :func:`surge.crawl.links.extract_links`), WorkItems out. Every URL
is decided once: the first time it is seen it is admitted or refused, and either way it is never looked at
again (the seen-set holds ``hash()`` of the canonical URL: 8 bytes of key a URL instead of the URL itself;
two URLs of one crawl sharing a 64-bit hash is a one in 10^7 event at a million URLs). Resuming rebuilds the
set from the URLs stored in the state.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from surge.crawl.urls import canonicalize
from surge.engine.hostpolicy import origin_of
from surge.engine.items import WorkItem
from surge.errors import ConfigError

__all__ = ["SCOPES", "Frontier", "Scope", "trap_reason"]

SCOPES = ("host", "domain", "prefix", "any")
MAX_PATH_SEGMENTS = 32
MAX_SEGMENT_REPEATS = 3


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class Scope:
    """Which URLs a crawl may follow, from its seeds.

    - ``host``: the seeds' origins (scheme, host and port), as a browser's same-origin rule but with http and
      https of one host counted as one;
    - ``domain``: the seeds' host names and their subdomains (a leading ``www.`` of a seed is dropped first:
      seed ``www.example.com`` allows ``example.com`` and ``docs.example.com``), any port;
    - ``prefix``: URLs that start with a seed's directory (``http://h/docs/a.html`` allows ``http://h/docs/...``);
    - ``any``: everything (bound the crawl with ``depth`` or ``max_pages``).

    ``include``/``exclude`` are regular expressions searched in the whole URL: with ``include``, a URL must
    match one of them; a URL matching an ``exclude`` is refused. Seeds are always in scope.
    """

    def __init__(self, seeds: Sequence[str], mode: str = "host", *, include: Sequence[str] = (),
                 exclude: Sequence[str] = ()) -> None:
        if mode not in SCOPES:
            raise ConfigError(f"scope must be one of {', '.join(SCOPES)}, got {mode!r}")
        self.mode = mode
        try:
            self._include = [re.compile(p) for p in include]
            self._exclude = [re.compile(p) for p in exclude]
        except re.error as exc:
            raise ConfigError(f"invalid regular expression {exc.pattern!r}: {exc}") from None
        self._authorities = {origin_of(s).split("://", 1)[-1] for s in seeds}
        self._domains = {h[4:] if h.startswith("www.") else h for h in map(_host, seeds)}
        self._prefixes = tuple({s[:s.rindex("/") + 1] for s in seeds})

    def allows(self, url: str) -> bool:
        """Whether ``url`` (canonical) is in scope."""
        mode = self.mode
        if mode == "host":
            if origin_of(url).split("://", 1)[-1] not in self._authorities:
                return False
        elif mode == "domain":
            host = _host(url)
            if not any(host == d or host.endswith("." + d) for d in self._domains):
                return False
        elif mode == "prefix" and not url.startswith(self._prefixes):
            return False
        if self._include and not any(p.search(url) for p in self._include):
            return False
        return not any(p.search(url) for p in self._exclude)


def trap_reason(url: str) -> str | None:
    """Why ``url`` looks like a crawler trap (an endless space of generated URLs), or None.

    Two shapes, as in long-running crawlers' defaults: paths nested deeper than ``MAX_PATH_SEGMENTS``, and a
    path segment that repeats ``MAX_SEGMENT_REPEATS`` times (``/a/b/a/b/a/b``: relative links that resolve
    one level deeper on every page, or calendars linking forward for ever show up as one of the two).
    """
    segments = [s for s in urlsplit(url).path.split("/") if s]
    if len(segments) > MAX_PATH_SEGMENTS:
        return "path_depth"
    if len(segments) >= MAX_SEGMENT_REPEATS:
        counts = Counter(segments)
        if counts.most_common(1)[0][1] >= MAX_SEGMENT_REPEATS:
            return "repeated_segment"
    return None


class Frontier:
    """Admits links into the crawl: each canonical URL once, in scope, not a trap, within depth and budget.

    ``depth``: the most links followed from a seed (seeds are depth 0; None = no limit). ``max_pages``: the
    most URLs admitted in all (seeds included; None = no limit). ``counts`` tells why links were refused:
    ``duplicate``, ``out_of_scope``, ``trap``, ``too_deep``, ``over_budget``; ``admitted`` counts the rest.
    """

    def __init__(self, scope: Scope, *, depth: int | None = 3, max_pages: int | None = None) -> None:
        if depth is not None and depth < 0:
            raise ConfigError(f"depth must be >= 0, got {depth}")
        if max_pages is not None and max_pages < 1:
            raise ConfigError(f"max-pages must be >= 1, got {max_pages}")
        self.scope = scope
        self.depth = depth
        self.max_pages = max_pages
        self._seen: set[int] = set()
        self.admitted = 0
        self.counts: Counter[str] = Counter()

    def seeds(self, urls: Iterable[str]) -> list[WorkItem]:
        """The seeds as depth-0 WorkItems, canonical and deduplicated; raises if one is no http(s) URL."""
        items: list[WorkItem] = []
        for url in urls:
            canon = canonicalize(url)
            if canon is None:
                raise ConfigError(f"seed {url!r} is not an http(s) URL surge can crawl")
            if self._see(canon):
                items.append(self._item(canon, 0, None))
        return items

    def restore(self, urls: Iterable[str]) -> None:
        """Mark URLs an earlier run admitted (resume): they are neither admitted nor counted again."""
        n = 0
        for url in urls:
            self._seen.add(hash(url))
            n += 1
        self.admitted = max(self.admitted, n)

    def admit(self, links: Iterable[str], *, depth: int, parent: str) -> list[WorkItem]:
        """The WorkItems for the new links among ``links``, found at ``depth - 1`` on the page ``parent``."""
        out: list[WorkItem] = []
        counts = self.counts
        too_deep = self.depth is not None and depth > self.depth
        allows = self.scope.allows
        for url in links:
            if not self._see(url):
                counts["duplicate"] += 1
            elif too_deep:
                counts["too_deep"] += 1
            elif not allows(url):
                counts["out_of_scope"] += 1
            elif trap_reason(url) is not None:
                counts["trap"] += 1
            elif self.max_pages is not None and self.admitted >= self.max_pages:
                counts["over_budget"] += 1
            else:
                out.append(self._item(url, depth, parent))
        return out

    def _see(self, url: str) -> bool:
        h = hash(url)
        if h in self._seen:
            return False
        self._seen.add(h)
        return True

    def _item(self, url: str, depth: int, parent: str | None) -> WorkItem:
        self.admitted += 1
        return WorkItem(url, key=str(self.admitted), depth=depth, parent=parent)
