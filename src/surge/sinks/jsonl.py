"""JSON-lines sink: one orjson-encoded outcome per line, to a file or stdout.

The default and fastest output; a resume truncates the file to the last recorded byte offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from surge.engine.items import Outcome, encode_lines
from surge.sinks._file import open_output

__all__ = ["JSONLSink"]


class JSONLSink:
    """Writes each outcome as one JSON object per line (``-`` = stdout).

    Example::

        sink = JSONLSink("out.jsonl"); sink.open(); sink.write(outcomes); pos = sink.flush(); sink.close()
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._f: IO[bytes] | None = None
        self._owned = False

    def open(self, resume_at: int | None = None) -> None:
        """Start fresh, or continue after byte offset ``resume_at``."""
        self._f, self._owned = open_output(self.path, resume_at)

    def write(self, batch: Sequence[Outcome]) -> None:
        """Encode and buffer a batch (one encoder call and one write for the whole batch)."""
        assert self._f is not None
        self._f.write(encode_lines(batch))

    def write_encoded(self, lines: Sequence[bytes]) -> None:
        """Buffer already-encoded lines (each ending in a newline)."""
        assert self._f is not None
        self._f.write(b"".join(lines))

    def flush(self) -> int:
        """Hand buffered bytes to the OS; returns the byte offset to resume at (0 for stdout)."""
        assert self._f is not None
        self._f.flush()
        return self._f.tell() if self._owned else 0

    def close(self) -> None:
        """Flush and close (stdout is flushed, not closed)."""
        if self._f is not None:
            self._f.flush()
            if self._owned:
                self._f.close()
            self._f = None
