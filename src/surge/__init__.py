"""surge: massive network I/O from Python, at the machine's limit, with exactly one outcome per request."""

from __future__ import annotations

from surge.errors import (
    BlockedAddress,
    BodyTooLarge,
    ConfigError,
    ConnectError,
    ConnectTimeout,
    DNSError,
    InvalidURL,
    ProtocolError,
    ReadTimeout,
    RequestError,
    SurgeError,
    TLSError,
    TooManyRedirects,
    TotalTimeout,
)

__version__ = "0.1.0"

__all__ = [
    "BlockedAddress",
    "BodyTooLarge",
    "ConfigError",
    "ConnectError",
    "ConnectTimeout",
    "DNSError",
    "InvalidURL",
    "ProtocolError",
    "ReadTimeout",
    "RequestError",
    "SurgeError",
    "TLSError",
    "TooManyRedirects",
    "TotalTimeout",
    "__version__",
]
