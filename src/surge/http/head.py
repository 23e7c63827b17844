"""Parsing a response head (status line and header fields) from the raw bytes, on demand.

llhttp has already validated the framing; this only splits what someone asks to see, so responses whose
headers are never looked at cost no per-header work. ``head_problem`` is the connection's check of the caps
on a head (size, fields, interim responses), for the rare heads that could break one.
"""

from __future__ import annotations

__all__ = ["content_encoding", "head_end", "head_problem", "header_value", "parse_head"]


def head_end(data: bytes) -> int:
    """Where the final response head in ``data`` ends (after its blank line, 1xx heads skipped), or -1."""
    pos = 0
    while True:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return -1
        code = data[pos + 9:pos + 12]
        if code[:1] != b"1" or code == b"101":
            return end + 4
        pos = end + 4


_HTTP_1 = (b"HTTP/1.", b"RTSP/1.")


def head_problem(data: bytes, max_bytes: int, max_fields: int, max_interim: int) -> str | None:
    """Why the response head that ``data`` starts with is refused, or None if it is not (so far).

    Refused: a head that does not start with ``HTTP/1.`` (or ``RTSP/1.``), more than ``max_interim`` interim
    (1xx) heads, more than ``max_fields`` fields in one head, or more than ``max_bytes`` up to the end of the
    final head (interim heads included). ``data`` may end early: what has not arrived is not judged. Not on
    the hot path: the connection calls this only for heads that could break a cap (long, split, after a 1xx).
    """
    pos = 0
    interim = 0
    while True:
        # llhttp also takes ICE/, HTTP/0.9 and HTTP/2.0 status lines, and blank lines before one; the head
        # scanners (and an HTTP/1.1 client) expect "HTTP/1.x" at the start of every head. RTSP/1.x has the
        # same layout and passes: the connection tells the two apart by one byte only (on_message_complete).
        start = data[pos:pos + 7]
        if start not in _HTTP_1 and len(start) == 7:
            return "not an HTTP/1.x response"
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return f"response head larger than {max_bytes} bytes" if len(data) > max_bytes else None
        if end + 4 > max_bytes:
            return f"response head larger than {max_bytes} bytes"
        # One CRLF ends the status line and each field but the last: the count is the number of fields.
        if data.count(b"\r\n", pos, end) > max_fields:
            return f"more than {max_fields} header fields"
        code = data[pos + 9:pos + 12]
        if code[:1] != b"1" or code == b"101":
            return None
        interim += 1
        if interim > max_interim:
            return f"more than {max_interim} interim (1xx) responses"
        pos = end + 4


def parse_head(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(status line, [(name, value), ...]) of the final response head in ``data`` (1xx heads skipped)."""
    pos = 0
    n = len(data)
    while True:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            end = n
        block = data[pos:end]
        status_line, _, rest = block.partition(b"\r\n")
        fields = status_line.split(None, 2)
        code = fields[1] if len(fields) > 1 else b""
        if code[:1] == b"1" and code != b"101" and end < n:
            pos = end + 4
            continue
        headers: list[tuple[bytes, bytes]] = []
        for line in rest.split(b"\r\n"):
            if not line:
                continue
            if line[:1] in (b" ", b"\t") and headers:
                # obsolete line folding: a continuation of the previous value
                name, value = headers[-1]
                headers[-1] = (name, value + b" " + line.strip())
                continue
            name, _, value = line.partition(b":")
            headers.append((name.strip(), value.strip()))
        return status_line, headers


def content_encoding(data: bytes) -> str | None:
    """The Content-Encoding of the response head in ``data``, or None (a fast scan first)."""
    end = -1 if data[9:10] == b"1" else data.find(b"\r\n\r\n")  # after a 1xx head: scan it all
    lowered = (data if end < 0 else data[:end]).lower()
    if b"\ncontent-encoding:" not in lowered:
        return None
    values = [v for k, v in parse_head(data)[1] if k.lower() == b"content-encoding"]
    return b", ".join(values).decode("latin-1") if values else None


def header_value(data: bytes, name: bytes) -> str | None:
    """The value of header ``name`` (lower-case bytes, e.g. ``b"content-type"``) in the final response head of
    ``data`` (which may run on into the body), repeated fields joined with ``", "``; None when absent.

    Hot path (the client's ``Response.content_type``, read for every outcome): one lower-cased copy and a few
    scans, only this field decoded. Rare shapes (1xx heads first, a repeated or folded field) take the full
    parse, so the answer always equals ``Headers.get``.
    """
    if data[9:10] == b"1":  # "HTTP/1.1 1xx": interim heads come first
        return _slow_value(data, name)
    low = data.lower()
    needle = _NEEDLES.get(name) or b"\r\n" + name + b":"
    i = low.find(needle)
    if i < 0:
        return None
    end = low.find(b"\r\n\r\n")
    if end < 0:
        return _slow_value(data, name)  # not a whole head
    if i > end:
        return None  # only in the body
    i += len(needle)
    j = low.find(b"\r\n", i)
    # A second field of that name, or a folded continuation line (space or tab): the full parse joins them.
    if low[j + 2] in _FOLD or low.find(needle, j, end) >= 0:
        return _slow_value(data, name)
    return data[i:j].strip().decode("latin-1")


_FOLD = (32, 9)
_NEEDLES = {b"content-type": b"\r\ncontent-type:"}


def _slow_value(data: bytes, name: bytes) -> str | None:
    values = [v for k, v in parse_head(data)[1] if k.lower() == name]
    return b", ".join(values).decode("latin-1") if values else None
