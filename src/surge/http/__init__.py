"""surge's HTTP/1.1 client: pooled keep-alive connections, caps, timeouts, TLS, redirects, proxies.

``Client`` is the entry point; see its docstring for an example.
"""

from __future__ import annotations

from surge.http.client import Client, Submitted
from surge.http.models import Headers, Limits, PoolStatistics, Response, Timeout
from surge.http.resolver import Resolver, address_class, deny_private

__all__ = ["Client", "Headers", "Limits", "PoolStatistics", "Resolver", "Response", "Submitted", "Timeout",
           "address_class", "deny_private"]
