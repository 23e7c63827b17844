"""The two records the engine moves around: a WorkItem to request, and the Outcome it ends with.

Every WorkItem ends with exactly one Outcome; the Outcome is what sinks write, one row per request.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Outcome", "WorkItem", "encode_body", "encode_lines"]


@dataclass(slots=True)
class WorkItem:
    """One request to make.

    ``key`` is the item's stable identity (the input line number for files, the request index for ``-n``);
    the durable queue and the exact-once checks use it. ``depth`` and ``parent`` are the crawler's.
    ``invalid`` is set (to why) when the input line is not a request: ``url`` then holds the line as read,
    and the engine records the outcome class ``invalid_input`` without making a request.
    """

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    key: str = ""
    depth: int = 0
    parent: str | None = None
    invalid: str | None = None


# Field order of the outcome record; sinks (CSV columns, SQLite columns) follow it.
OUTCOME_FIELDS: tuple[str, ...] = (
    "key",
    "url",
    "final_url",
    "method",
    "status",
    "ok",
    "error",
    "attempts",
    "elapsed_ms",
    "ttfb_ms",
    "bytes",
    "content_type",
    "started_at",
)
OPTIONAL_FIELDS: tuple[str, ...] = ("headers", "body", "body_encoding", "depth", "parent", "links")
_REQUIRED = len(OUTCOME_FIELDS)


@dataclass(init=False)
class Outcome:
    """How one request ended: the record written to ``-o`` (one JSON object per request in .jsonl).

    ``status`` is None when no response arrived, and then ``error`` holds the outcome class
    (``surge.errors.ERROR_KINDS``). ``ok`` is true for a response below 400 with no error.
    ``elapsed_ms``/``ttfb_ms`` are those of the last attempt; ``started_at`` is the Unix time (seconds)
    of the first attempt. ``body`` (``--save-body``) is text when ``body_encoding`` is ``"utf-8"`` and
    base64 when it is ``"base64"``. ``depth``/``parent``/``links`` are filled by the crawler.

    Why a plain instance dict and not slots: the required fields are set in the record's field order and
    the optional ones stay class-level None until set, so the instance's ``__dict__`` *is* the record,
    and JSON-lines output encodes it as it is: half the cost of building a dict per record.
    """

    key: str
    url: str
    final_url: str
    method: str
    status: int | None
    ok: bool
    error: str | None
    attempts: int
    elapsed_ms: float
    ttfb_ms: float | None
    bytes: int
    content_type: str | None
    started_at: float
    headers: list[tuple[str, str]] | None = None
    body: str | None = None
    body_encoding: str | None = None
    depth: int | None = None
    parent: str | None = None
    links: list[str] | None = None

    # Hot path: once per request. Positional order kept from the record's first version (key last);
    # assignment order is the record's (key first).
    def __init__(self, url: str, final_url: str, method: str, status: int | None, ok: bool,  # noqa: PLR0917 - positional on the hot path
                 error: str | None, attempts: int, elapsed_ms: float, ttfb_ms: float | None, bytes: int,
                 content_type: str | None, started_at: float, key: str = "", *,
                 headers: list[tuple[str, str]] | None = None, body: str | None = None,
                 body_encoding: str | None = None, depth: int | None = None, parent: str | None = None,
                 links: list[str] | None = None) -> None:
        self.key = key
        self.url = url
        self.final_url = final_url
        self.method = method
        self.status = status
        self.ok = ok
        self.error = error
        self.attempts = attempts
        self.elapsed_ms = elapsed_ms
        self.ttfb_ms = ttfb_ms
        self.bytes = bytes
        self.content_type = content_type
        self.started_at = started_at
        if headers is not None:
            self.headers = headers
        if body is not None:
            self.body = body
            self.body_encoding = body_encoding
        if depth is not None:
            self.depth = depth
            self.parent = parent
        if links is not None:
            self.links = links

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict: the required fields always, optional ones only when set."""
        # Hot path (one call per request when writing output): one dict literal, no loops for the common case.
        d: dict[str, Any] = {
            "key": self.key,
            "url": self.url,
            "final_url": self.final_url,
            "method": self.method,
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "attempts": self.attempts,
            "elapsed_ms": self.elapsed_ms,
            "ttfb_ms": self.ttfb_ms,
            "bytes": self.bytes,
            "content_type": self.content_type,
            "started_at": self.started_at,
        }
        if self.headers is not None:
            d["headers"] = self.headers
        if self.body is not None:
            d["body"] = self.body
            d["body_encoding"] = self.body_encoding
        if self.depth is not None:
            d["depth"] = self.depth
            d["parent"] = self.parent
        if self.links is not None:
            d["links"] = self.links
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        """Rebuild an Outcome from :meth:`to_dict` output (the durable queue stores records that way)."""
        headers = d.get("headers")
        return cls(
            url=d["url"],
            final_url=d["final_url"],
            method=d["method"],
            status=d["status"],
            ok=d["ok"],
            error=d["error"],
            attempts=d["attempts"],
            elapsed_ms=d["elapsed_ms"],
            ttfb_ms=d["ttfb_ms"],
            bytes=d["bytes"],
            content_type=d["content_type"],
            started_at=d["started_at"],
            key=d.get("key", ""),
            headers=[(k, v) for k, v in headers] if headers is not None else None,
            body=d.get("body"),
            body_encoding=d.get("body_encoding"),
            depth=d.get("depth"),
            parent=d.get("parent"),
            links=d.get("links"),
        )


def encode_body(content: bytes) -> tuple[str, str]:
    """``(body, encoding)`` for an outcome: UTF-8 text when the bytes decode, base64 otherwise."""
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(content).decode("ascii"), "base64"


# Between two records of a batch encoded as one JSON array. Safe to split on: every record's first field is
# "key", and inside a JSON string a quote is always escaped, so this cannot occur within a value.
_BETWEEN = b'},{"key":'


def encode_lines(outcomes: Sequence[Outcome]) -> bytes:
    """The outcomes as JSON lines (each record ends in a newline), encoded as one batch.

    Hot path (every outcome written): one orjson call for the whole batch instead of one per record, then
    the array is cut into lines, which costs a quarter of encoding each record on its own.
    """
    if not outcomes:
        return b""
    # An Outcome's instance dict is its record (see Outcome), unless an optional field was set to None by
    # hand: to_dict() then, which leaves such fields out.
    data = orjson.dumps([o.__dict__ if len(o.__dict__) == _REQUIRED or None not in o.__dict__.values()
                         else o.to_dict() for o in outcomes])
    # split + join: a third of the cost of count + replace over the same bytes, and split counts for free.
    parts = data[1:-1].split(_BETWEEN)
    if len(parts) != len(outcomes):
        # A record that nests objects with a "key" of their own: encode one by one (never happens today).
        return b"".join([orjson.dumps(o.to_dict(), option=orjson.OPT_APPEND_NEWLINE) for o in outcomes])
    parts[-1] += b"\n"  # the last record's newline, without copying the whole batch again
    return b'}\n{"key":'.join(parts)
