"""Streaming input: URL arguments, a file or stdin (plain URLs or JSON lines), turned into WorkItems lazily.

Nothing is read ahead of what the queue asks for, so a ten-million-line file never sits in memory;
each source can report a checkpoint and restart from it, which is how a durable run resumes without re-adding.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import re
from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

import orjson

from surge.engine.items import WorkItem
from surge.errors import ConfigError, InvalidURL
from surge.http.request import AUTHORITY_ENDS, origin_end

__all__ = [
    "MAX_INVALID_LINE",
    "MAX_LINE",
    "ArgsSource",
    "FileSource",
    "InputSource",
    "IterSource",
    "RequestDefaults",
    "check_url",
    "invalid_item",
    "parse_line",
]


class RequestDefaults:
    """What every input item gets unless its JSON line says otherwise (``-m``, ``-H``, ``-d``)."""

    __slots__ = ("body", "headers", "method")

    def __init__(self, method: str = "GET", headers: Sequence[tuple[str, str]] = (),
                 body: bytes | None = None) -> None:
        self.method = method.upper()
        self.headers = tuple(headers)
        self.body = body


def check_url(url: str) -> str:
    """Return ``url`` if surge can request it (http/https, a host, a valid port); else raise InvalidURL."""
    # Hot path (every input line): validity depends only on the scheme and authority, so a prefix seen
    # valid before answers without parsing: the last one (lists come host by host) by one comparison.
    global _last_valid
    if len(url) > MAX_URL:
        raise InvalidURL(f"invalid URL {url[:80]!r}...: longer than {MAX_URL} characters")
    last = _last_valid
    n = len(last)
    if url[:n] == last and url[n:n + 1] in AUTHORITY_ENDS:
        return url
    end = origin_end(url)
    prefix = ""
    if end >= 0:
        prefix = url[:end]
        if prefix in _VALID_PREFIXES:
            _last_valid = prefix
            return url
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidURL(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidURL(f"invalid URL {url!r}: scheme must be http or https")
    if not parts.hostname:
        raise InvalidURL(f"invalid URL {url!r}: no host")
    host = parts.netloc.rpartition("@")[2]
    if not (_IP_LITERAL if host.startswith("[") else _REG_NAME).fullmatch(host):
        # urlsplit lets through what no server can be: "a b", NUL, "%zz", "[::1]x"; a DNS query for them
        # would end in a misleading "dns" (or, worse, reach another host), so they are not requests.
        raise InvalidURL(f"invalid URL {url!r}: malformed host")
    if port == 0:
        raise InvalidURL(f"invalid URL {url!r}: port 0")
    if prefix:
        if len(_VALID_PREFIXES) >= 4096:
            _VALID_PREFIXES.clear()  # bounded: a list over millions of hosts only re-checks more often
        _VALID_PREFIXES.add(prefix)
    return url


# A request head over the client's 64 KiB cap could never be sent whole: such a URL is not a request.
MAX_URL = 64 * 1024
# The authority after any userinfo: a bracketed IPv6 literal, or a name (letters, digits, RFC 3986's
# unreserved and sub-delims, non-ASCII for IDNs), each with an optional port.
_IP_LITERAL = re.compile(r"\[[0-9A-Fa-f:.]+(?:%25[0-9A-Za-z._~-]+)?\](?::[0-9]*)?")
_REG_NAME = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=\-\u0080-\U0010ffff]+(?::[0-9]*)?")
_VALID_PREFIXES: set[str] = set()
_last_valid = "\0"  # the last prefix found valid ("\0": none yet, matches no URL)


def _headers_of(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        return tuple((str(k), str(v)) for k, v in value.items())
    if isinstance(value, list) and all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
        return tuple((str(k), str(v)) for k, v in value)
    raise ConfigError(f"{where}: headers must be an object or a list of [name, value] pairs")


def parse_line(line: str, key: str, defaults: RequestDefaults, where: str = "input") -> WorkItem | None:
    """One input line -> a WorkItem, or None for a blank or ``#`` comment line.

    A line is a URL, or a JSON object with ``url`` and optionally ``method``, ``headers`` (object or pairs),
    ``body`` (text), ``body_base64`` and ``key`` (overrides the line number as the item's identity).
    """
    s = line.strip()
    if not s or s[0] == "#":
        return None
    if s[0] != "{":
        try:
            return WorkItem(check_url(s), defaults.method, defaults.headers, defaults.body, key)
        except InvalidURL as exc:
            raise InvalidURL(f"{where}: {exc}") from None
    try:
        obj = orjson.loads(s)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("url"), str):
        raise ConfigError(f"{where}: a JSON line needs a \"url\" string")
    try:
        url = check_url(obj["url"])
    except InvalidURL as exc:
        raise InvalidURL(f"{where}: {exc}") from None
    method = obj.get("method")
    headers = defaults.headers + _headers_of(obj.get("headers"), where)
    body = defaults.body
    if isinstance(obj.get("body"), str):
        body = obj["body"].encode()
    elif isinstance(obj.get("body_base64"), str):
        try:
            body = base64.b64decode(obj["body_base64"], validate=True)
        except ValueError:
            raise ConfigError(f"{where}: body_base64 is not base64") from None
    item_key = obj.get("key")
    return WorkItem(
        url,
        method.upper() if isinstance(method, str) else defaults.method,
        headers,
        body,
        str(item_key) if item_key is not None else key,
    )


# How much of a line that is not a request its outcome keeps (as its url).
MAX_INVALID_LINE = 2048
# The longest input line read (a JSON line may carry a body): a longer one is not a request, and is skipped
# without being held in memory.
MAX_LINE = 8 << 20


def invalid_item(line: str, key: str, defaults: RequestDefaults, why: str) -> WorkItem:
    """The item of an input line that is not a request: its outcome records ``invalid_input``.

    ``url`` holds the line as read (cut to :data:`MAX_INVALID_LINE` characters); a JSON line's own ``key``
    is kept when the line parses that far, else ``key`` (the line number).
    """
    text = line.strip()
    if text.startswith("{"):
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and obj.get("key") is not None:
            key = str(obj["key"])
    return WorkItem(text[:MAX_INVALID_LINE], defaults.method, (), None, key, invalid=why)


class InputSource(Protocol):
    """A resumable stream of WorkItems.

    ``read(n)`` returns up to ``n`` items and ``[]`` only at the end. ``checkpoint()`` is a small JSON-able
    dict saying how far reading got; ``restore(cp)`` on a fresh source continues from there.
    ``total`` is the number of items when known up front (``-n``), else None.
    """

    total: int | None

    async def read(self, n: int) -> list[WorkItem]: ...

    def checkpoint(self) -> dict[str, int]: ...

    def restore(self, checkpoint: dict[str, int]) -> None: ...


class ArgsSource:
    """URLs given as arguments: each once, or cycled to ``count`` requests (``-n``), or forever (``-z``).

    The repetition is generated lazily: ``-n 10000000`` costs no memory. Keys are 1-based request indexes.
    """

    def __init__(self, urls: Sequence[str], defaults: RequestDefaults | None = None, *,
                 count: int | None = None, forever: bool = False) -> None:
        if not urls:
            raise ConfigError("no URL given")
        self._urls = [check_url(u) for u in urls]
        self._defaults = defaults or RequestDefaults()
        self._forever = forever
        self.total: int | None = None if forever else (count if count is not None else len(urls))
        self._next = 0
        d = self._defaults
        self._shared = WorkItem(self._urls[0], d.method, d.headers, d.body) if len(self._urls) == 1 else None

    def read_shared(self, n: int) -> tuple[WorkItem, int, int] | None:
        """Up to ``n`` requests of the one URL as ``(item, first, stop)``: one shared item (its key empty)
        standing for the requests keyed ``first+1 .. stop``; None when there are several URLs.

        Load mode's feed: the memory queue gives each lease its key, so no WorkItem is built per request.
        """
        item = self._shared
        if item is None:
            return None
        start = self._next
        stop = start + n if self.total is None else max(start, min(start + n, self.total))
        self._next = stop
        return item, start, stop

    async def read(self, n: int) -> list[WorkItem]:
        """Up to ``n`` items; [] when ``count`` requests were produced."""
        start = self._next
        stop = start + n if self.total is None else min(start + n, self.total)
        if stop <= start:
            return []
        d = self._defaults
        urls = self._urls
        m = len(urls)
        # Load-mode hot loop: one WorkItem per request, the URL string shared, no per-item copies.
        method, headers, body = d.method, d.headers, d.body
        if m == 1:
            url = urls[0]
            items = [WorkItem(url, method, headers, body, k) for k in map(str, range(start + 1, stop + 1))]
        else:
            items = [WorkItem(urls[i % m], method, headers, body, str(i + 1)) for i in range(start, stop)]
        self._next = stop
        return items

    def checkpoint(self) -> dict[str, int]:
        """How many items were produced."""
        return {"n": self._next}

    def restore(self, checkpoint: dict[str, int]) -> None:
        """Continue after ``checkpoint["n"]`` items."""
        self._next = int(checkpoint.get("n", 0))


class FileSource:
    """One item per line of a file, or of stdin when the path is ``-``; keys are 1-based line numbers.

    Lines are read only as the queue asks for them. The checkpoint holds the byte offset, so a file resumes
    by seeking; stdin resumes by skipping the lines already taken (the same input must be piped again).
    Reading stdin happens in a thread, so a slow producer does not stall the event loop. A line that is
    not a request (see :func:`invalid_item`) does not stop the run: it becomes an item marked invalid.
    """

    def __init__(self, path: str, defaults: RequestDefaults | None = None) -> None:
        self.path = path
        self.total: int | None = None
        self._defaults = defaults or RequestDefaults()
        self._stdin = path == "-"
        self._f: IO[bytes] | None = None
        self._line = 0
        self._offset = 0
        self._skip_lines = 0
        self._eof = False
        self.invalid = 0  # lines read that were not requests (each one an invalid_input outcome)
        self.first_invalid: str | None = None  # why the first of them was not
        if not self._stdin:
            self._open()  # fail now, before any request: unreadable input is a one-line error

    def _open(self) -> IO[bytes]:
        if self._f is None:
            if self._stdin:
                import sys  # noqa: PLC0415 - only stdin runs need it

                self._f = sys.stdin.buffer
            else:
                try:
                    self._f = open(self.path, "rb")  # noqa: SIM115 - closed by close()
                except OSError as exc:
                    raise ConfigError(f"cannot read {self.path}: {exc.strerror}") from None
        return self._f

    async def read(self, n: int) -> list[WorkItem]:
        """Up to ``n`` items; [] at end of input."""
        if self._eof:
            return []
        if self._stdin:
            return await asyncio.to_thread(self._read_sync, n)
        return self._read_sync(n)

    def _read_sync(self, n: int) -> list[WorkItem]:
        f = self._open()
        out: list[WorkItem] = []
        d = self._defaults
        path = self.path if not self._stdin else "stdin"
        while len(out) < n:
            raw = f.readline(MAX_LINE)
            if not raw:
                self._eof = True
                break
            self._line += 1
            size = len(raw)
            self._offset += size
            too_long = size == MAX_LINE and raw[-1] != 10  # no newline: the line goes on
            if too_long:
                self._offset += self._skip_rest_of_line(f)
            if self._line <= self._skip_lines:
                continue
            line = ""
            try:
                if too_long:
                    line = raw[:MAX_INVALID_LINE].decode("utf-8", "replace")
                    raise ConfigError(f"{path}:{self._line}: line longer than {MAX_LINE:,} bytes")
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    line = raw.decode("utf-8", "replace")
                    raise ConfigError(f"{path}:{self._line}: not UTF-8") from None
                url = line.strip()
                if url and url[0] not in "#{":
                    # Hot path: a plain URL line (parse_line's first case, without building its context).
                    try:
                        item: WorkItem | None = WorkItem(check_url(url), d.method, d.headers, d.body,
                                                         str(self._line))
                    except InvalidURL as exc:
                        raise InvalidURL(f"{path}:{self._line}: {exc}") from None
                else:
                    item = parse_line(line, str(self._line), d, f"{path}:{self._line}")
            except ConfigError as exc:
                # Not a request: it still gets its one outcome (invalid_input), and the run goes on.
                item = invalid_item(line, str(self._line), d, str(exc))
                self.invalid += 1
                if self.first_invalid is None:
                    self.first_invalid = str(exc)
            if item is not None:
                out.append(item)
        return out

    @staticmethod
    def _skip_rest_of_line(f: IO[bytes]) -> int:
        # A line over MAX_LINE is not read into memory: the rest of it is skipped by the chunk.
        skipped = 0
        while chunk := f.readline(1 << 16):
            skipped += len(chunk)
            if chunk.endswith(b"\n"):
                break
        return skipped

    def checkpoint(self) -> dict[str, int]:
        """Lines consumed and the byte offset after them."""
        return {"line": self._line, "offset": self._offset}

    def restore(self, checkpoint: dict[str, int]) -> None:
        """Continue after the checkpointed line: seek for files, skip lines for stdin."""
        line = int(checkpoint.get("line", 0))
        offset = int(checkpoint.get("offset", 0))
        if self._stdin:
            self._skip_lines = line
            return
        self._open().seek(offset)
        self._line = line
        self._offset = offset

    def close(self) -> None:
        """Close the file (never stdin)."""
        if self._f is not None and not self._stdin:
            self._f.close()
        self._f = None


class IterSource:
    """Library input: an iterable or async iterable of URL strings or WorkItems.

    Strings are checked and get 1-based index keys; WorkItems keep their key (or get the index if empty).
    """

    def __init__(self, items: Iterable[str | WorkItem] | AsyncIterable[str | WorkItem],
                 defaults: RequestDefaults | None = None) -> None:
        self.total: int | None = len(items) if isinstance(items, list | tuple) else None
        self._defaults = defaults or RequestDefaults()
        self._sync: Iterator[str | WorkItem] | None = None
        self._async: AsyncIterable[str | WorkItem] | None = None
        if isinstance(items, AsyncIterable):
            self._async = items
        else:
            self._sync = iter(items)
        self._ait: Any = None
        self._n = 0
        self._skip = 0
        self._done = False

    def _make(self, x: str | WorkItem) -> WorkItem:
        self._n += 1
        if isinstance(x, WorkItem):
            if not x.key:
                x.key = str(self._n)
            return x
        d = self._defaults
        try:
            return WorkItem(check_url(x), d.method, d.headers, d.body, str(self._n))
        except InvalidURL as exc:
            return invalid_item(x, str(self._n), d, str(exc))

    async def read(self, n: int) -> list[WorkItem]:
        """Up to ``n`` items; [] at the end."""
        if self._done:
            return []
        out: list[WorkItem] = []
        if self._sync is not None:
            for x in itertools.islice(self._sync, n):
                out.append(self._make(x))
        else:
            if self._ait is None:
                assert self._async is not None
                self._ait = aiter(self._async)
            while len(out) < n:
                try:
                    x = await anext(self._ait)
                except StopAsyncIteration:
                    break
                out.append(self._make(x))
        if len(out) < n:
            self._done = True
        if self._skip:
            drop = min(self._skip, len(out))
            self._skip -= drop
            out = out[drop:]
            if not out and not self._done:
                return await self.read(n)
        return out

    def checkpoint(self) -> dict[str, int]:
        """Items consumed."""
        return {"n": self._n}

    def restore(self, checkpoint: dict[str, int]) -> None:
        """Skip the items a previous run already took (the iterable must produce the same sequence)."""
        self._skip = int(checkpoint.get("n", 0))
