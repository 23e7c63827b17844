"""The crawler: URL rules, link extraction, frontier, robots, and the Crawler that runs them on the engine.

``surge.crawl.crawl(seeds)`` yields one outcome per URL reached; :class:`Crawler` is the object behind it (and
behind ``surge crawl``).
"""

from __future__ import annotations

from surge.crawl.crawler import Crawler, crawl
from surge.crawl.frontier import Frontier, Scope, trap_reason
from surge.crawl.guard import PrivateGuard
from surge.crawl.links import extract_links
from surge.crawl.robots import RobotsGate
from surge.crawl.urls import canonicalize, resolve

__all__ = ["Crawler", "Frontier", "PrivateGuard", "RobotsGate", "Scope", "canonicalize", "crawl",
           "extract_links", "resolve", "trap_reason"]
