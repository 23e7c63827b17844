"""Where a redirect leads and what the next request keeps: method, body, credentials.

Pure rules, as browsers apply them: 303 becomes GET; 301 and 302 turn POST into GET; 307 and 308 keep the
method and body; Authorization never crosses to another origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

__all__ = ["REDIRECT_STATUSES", "RedirectPlan", "plan_redirect"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie"})
_BODY_HEADERS = frozenset({"content-length", "content-type", "transfer-encoding", "content-encoding"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class RedirectPlan:
    """The next hop: method, absolute URL, the caller's headers to send, and whether the body goes too."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    keep_body: bool


def _origin(url: str) -> tuple[str, str, int]:
    p = urlsplit(url)
    scheme = p.scheme.lower()
    try:
        port = p.port
    except ValueError:
        port = None
    return (scheme, (p.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0))


def redirect_method(status: int, method: str) -> str:
    """The method of the request that follows a ``status`` redirect of a ``method`` request."""
    if status == 303 and method != "HEAD":
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def plan_redirect(
    method: str, url: str, status: int, location: str, headers: list[tuple[str, str]]
) -> RedirectPlan:
    """The next request after a ``status`` response with ``location`` to a ``method`` request for ``url``."""
    new_url = urljoin(url, location.strip())
    # A Location without a fragment inherits the request's (RFC 9110 10.2.2); we never send fragments anyway.
    new_url = new_url.split("#", 1)[0]
    new_method = redirect_method(status, method)
    keep_body = new_method == method and method not in ("GET", "HEAD")
    drop = set() if keep_body else set(_BODY_HEADERS)
    if _origin(new_url) != _origin(url):
        drop |= _CREDENTIALS
    kept = [(k, v) for k, v in headers if k.lower() not in drop and k.lower() != "host"]
    return RedirectPlan(new_method, new_url, kept, keep_body)
