"""Every exception surge raises, in one place.

The engine maps each request failure to one outcome ``error`` class through the
``kind`` attribute, so a new failure mode means a new subclass here, not a new
``except`` in the engine::

    SurgeError
    ├── ConfigError                  bad user input: flag, URL, file (one-line message, exit 2)
    │   ├── InvalidURL
    │   └── LoopUnavailable          a named event loop is not installed
    ├── RequestError                 one request failed; ``kind`` is its outcome class
    │   ├── TimeoutError_
    │   │   ├── ConnectTimeout       kind "timeout_connect"
    │   │   ├── ReadTimeout          kind "timeout_read"   (no byte for ``read`` seconds)
    │   │   └── TotalTimeout         kind "timeout_total"
    │   ├── DNSError                 kind "dns"
    │   ├── ConnectError             kind "connect"        (refused, unreachable, reset before a response)
    │   ├── TLSError                 kind "tls"
    │   ├── ProtocolError            kind "protocol"       (malformed or truncated response)
    │   ├── BodyTooLarge             kind "body_too_large" (raw or decoded body over the cap)
    │   ├── TooManyRedirects         kind "too_many_redirects"
    │   ├── BlockedAddress           kind "blocked"        (the address policy refused it)
    │   └── RobotsDisallowed         kind "robots"
    ├── PoolClosed                   the client or pool was closed while a request waited
    ├── QueueClosed                  put/get on a closed aio queue
    ├── BatcherClosed                submit to a closed Batcher
    ├── StateError                   a WorkQueue's store is unusable (locked, corrupt, other schema)
    ├── StorageError                 a file surge writes failed: disk full, read-only, I/O error
    │                                (the output or the --state database; ``path``, ``reason``, ``advice``)
    └── OutputMismatch               a resumed output holds less than its recorded position (deleted,
                                     cut): the resume writes it again, whole, from the --state database

Two outcome classes are not exceptions of ours:

- ``cancelled``: ``asyncio.CancelledError`` always propagates untouched;
- ``invalid_input``: an input line that is not a request (a bad URL, a JSON line without a usable
  ``url``, bytes that are not UTF-8). The input source marks its item (``WorkItem.invalid``), and the
  engine records it without a request, so every input line still ends with exactly one outcome.
"""

from __future__ import annotations

import errno

__all__ = [
    "BatcherClosed",
    "BlockedAddress",
    "BodyTooLarge",
    "ConfigError",
    "ConnectError",
    "ConnectTimeout",
    "DNSError",
    "InvalidURL",
    "LoopUnavailable",
    "OutputMismatch",
    "PoolClosed",
    "ProtocolError",
    "QueueClosed",
    "ReadTimeout",
    "RequestError",
    "RobotsDisallowed",
    "StateError",
    "StorageError",
    "SurgeError",
    "TLSError",
    "TimeoutError_",
    "TooManyRedirects",
    "TotalTimeout",
]

# Outcome error classes, in the order reports list them.
ERROR_KINDS: tuple[str, ...] = (
    "timeout_connect",
    "timeout_read",
    "timeout_total",
    "dns",
    "connect",
    "tls",
    "protocol",
    "body_too_large",
    "too_many_redirects",
    "blocked",
    "robots",
    "cancelled",
    "invalid_input",
)


class SurgeError(Exception):
    """Base of every exception surge raises."""


class ConfigError(SurgeError):
    """Bad user input (flag, URL, file); the CLI prints it as one line and exits 2."""


class InvalidURL(ConfigError):
    """A URL surge cannot request (no scheme/host, unsupported scheme, bad port)."""


class LoopUnavailable(ConfigError):
    """An event loop was asked for by name but is not installed."""


class RequestError(SurgeError):
    """One request failed. ``kind`` is the outcome error class the engine records."""

    kind: str = "protocol"

    def __init__(self, message: str = "", *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class TimeoutError_(RequestError):  # trailing underscore: the builtin TimeoutError stays usable
    """Base of the three timeouts."""

    kind = "timeout_total"


class ConnectTimeout(TimeoutError_):
    """The connection (TCP + TLS) was not established in time."""

    kind = "timeout_connect"


class ReadTimeout(TimeoutError_):
    """No byte arrived for ``read`` seconds while waiting for the response."""

    kind = "timeout_read"


class TotalTimeout(TimeoutError_):
    """The whole request, redirects included, took longer than ``total`` seconds."""

    kind = "timeout_total"


class DNSError(RequestError):
    """The host name did not resolve."""

    kind = "dns"


class ConnectError(RequestError):
    """The connection was refused, unreachable, or lost before any response byte."""

    kind = "connect"


class TLSError(RequestError):
    """The TLS handshake failed (certificate, hostname, protocol)."""

    kind = "tls"


class ProtocolError(RequestError):
    """The response was malformed or cut short (bad status line, truncated body, reset mid-body)."""

    kind = "protocol"


class BodyTooLarge(RequestError):
    """The body (raw or decoded) exceeded the configured cap."""

    kind = "body_too_large"


class TooManyRedirects(RequestError):
    """More redirects than ``max_redirects``."""

    kind = "too_many_redirects"


class BlockedAddress(RequestError):
    """The address policy refused every resolved address of the host."""

    kind = "blocked"


class RobotsDisallowed(RequestError):
    """robots.txt disallows the URL for surge's user agent."""

    kind = "robots"


class PoolClosed(SurgeError):
    """The client or its pool was closed while a request was waiting for it."""


class QueueClosed(SurgeError):
    """A put or get on a closed queue."""


class BatcherClosed(SurgeError):
    """An item submitted to a Batcher that is closed."""


class StateError(SurgeError):
    """A WorkQueue's store cannot be used (locked by another run, corrupt, other schema)."""


class StorageError(SurgeError):
    """A file surge writes (the output, the ``--state`` database) failed: disk full, read-only, I/O error.

    ``path`` is the file, ``reason`` what went wrong ("no space left on device") and ``advice`` what to do
    before running again ("free space"). Only these causes are mapped (see :meth:`from_os` and
    :meth:`from_sqlite`); any other error of the disk or the database propagates as it is.
    """

    def __init__(self, reason: str, path: str, advice: str) -> None:
        super().__init__(f"{reason} writing {path}")
        self.reason = reason
        self.path = path
        self.advice = advice

    @classmethod
    def from_os(cls, exc: OSError, path: str) -> StorageError | None:
        """The StorageError for an OSError writing ``path``; None when it is not a mapped cause."""
        known = _OS_CAUSES.get(exc.errno or 0)
        return cls(known[0], path, known[1]) if known is not None else None

    @classmethod
    def from_sqlite(cls, exc: Exception, path: str) -> StorageError | None:
        """The StorageError for an ``sqlite3.Error`` on the database ``path``, or None when it is not one of
        the mapped causes ("database is locked", a corrupt file and bugs are not)."""
        code = getattr(exc, "sqlite_errorcode", None)
        known = _SQLITE_CAUSES.get(code & 0xFF) if isinstance(code, int) else None  # the primary code
        return cls(known[0], path, known[1]) if known is not None else None


class OutputMismatch(SurgeError):
    """A sink asked to resume at a position its output no longer reaches (the file was deleted or cut).

    Raised by ``Sink.open(resume_at)``; the fetcher then writes the output again from the ``--state``
    database, whole.
    """


_FULL = ("no space left on device", "free space")
_OS_CAUSES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: ("disk quota exceeded", "free space"),
    errno.EFBIG: ("file too large for its file system", "write it elsewhere"),
    errno.EROFS: ("read-only file system", "make it writable"),
    errno.EIO: ("I/O error", "check the disk"),
}
# SQLite's primary result codes: SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL.
_SQLITE_CAUSES: dict[int, tuple[str, str]] = {
    8: ("read-only database", "make it writable"),
    10: ("disk I/O error", "check the disk"),
    13: _FULL,
}
