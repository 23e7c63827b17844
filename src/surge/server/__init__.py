"""surge's embedded target server: httpbin-like endpoints, a synthetic website and misbehaving endpoints.

Used in-process by tests (``async with serve() as url``) and from the shell as ``surge serve``.
"""

from surge.server.app import TargetServer, format_url, serve
from surge.server.limits import flaky_fails
from surge.server.site import site_reachable

__all__ = ["TargetServer", "flaky_fails", "format_url", "serve", "site_reachable"]
