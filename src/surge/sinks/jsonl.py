"""JSON-lines sink: one orjson-encoded outcome per line, to a file or stdout.

The default and fastest output; a resume truncates the file to the last recorded byte offset, and a batch
that fails to write (disk full) is cut off again, so the file never ends in a torn line.
"""

from __future__ import annotations

from collections.abc import Sequence

from surge.engine.items import Outcome, encode_lines
from surge.sinks._file import OutputFile

__all__ = ["JSONLSink"]


class JSONLSink:
    """Writes each outcome as one JSON object per line (``-`` = stdout).

    Example::

        sink = JSONLSink("out.jsonl"); sink.open(); sink.write(outcomes); pos = sink.flush(); sink.close()
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._f: OutputFile | None = None

    def open(self, resume_at: int | None = None) -> None:
        """Start fresh, or continue after byte offset ``resume_at``."""
        self._f = OutputFile(self.path, resume_at)

    def write(self, batch: Sequence[Outcome]) -> None:
        """Encode and write a batch (one encoder call and one write for the whole batch)."""
        assert self._f is not None
        self._f.write(encode_lines(batch))

    def write_encoded(self, lines: Sequence[bytes]) -> None:
        """Write already-encoded lines (each ending in a newline)."""
        assert self._f is not None
        self._f.write(b"".join(lines))

    def flush(self) -> int:
        """Returns the byte offset to resume at (0 for stdout, which is flushed)."""
        assert self._f is not None
        return self._f.flush()

    def close(self) -> None:
        """Close (stdout is flushed, not closed)."""
        if self._f is not None:
            f, self._f = self._f, None
            f.close()
