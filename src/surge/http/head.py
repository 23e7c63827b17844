"""Parsing a response head (status line and header fields) from the raw bytes, on demand.

llhttp has already validated the framing; this only splits what someone asks to see, so responses whose
headers are never looked at cost no per-header work.
"""

from __future__ import annotations

__all__ = ["content_encoding", "parse_head"]


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
