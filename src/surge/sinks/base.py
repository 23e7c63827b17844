"""The Sink interface every outcome writer follows, and ``open_sink`` which picks one by file extension.

Sinks are synchronous and batched: the engine calls them from one background thread, never per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from surge.engine.items import Outcome
from surge.errors import ConfigError

__all__ = ["Sink", "open_sink"]


class Sink(Protocol):
    """Writes outcomes, and can resume an earlier run's output at a recorded position.

    - ``open(resume_at)``: start fresh when ``resume_at`` is None (an existing file is replaced), else cut the
      output back to ``resume_at`` (a value an earlier ``flush()`` returned) and continue after it; an output
      that no longer reaches ``resume_at`` (deleted, cut) raises :class:`~surge.errors.OutputMismatch`;
    - ``write(batch)``: buffer rows; ``flush()``: make them durable against a crash of this process and
      return the position to resume at; ``close()``: flush and release.

    Disk full, a read-only file system or an I/O error raise :class:`~surge.errors.StorageError` naming the
    file, after undoing the batch that failed: the output ends after the last batch written whole.
    """

    path: str

    def open(self, resume_at: int | None = None) -> None: ...

    def write(self, batch: Sequence[Outcome]) -> None: ...

    def flush(self) -> int: ...

    def close(self) -> None: ...


def open_sink(path: str, *, extra_fields: Sequence[str] = ()) -> Sink:
    """A sink for ``path`` by extension: ``.jsonl``/``.ndjson``/``.json``, ``.csv``, ``.sqlite``/``.db``;
    ``-`` is JSON lines on stdout. ``extra_fields`` are optional record fields given columns in CSV/SQLite.
    Nothing is opened yet (call ``open``).
    """
    from surge.sinks.csvsink import CSVSink  # noqa: PLC0415 - avoid an import cycle with the package
    from surge.sinks.jsonl import JSONLSink  # noqa: PLC0415
    from surge.sinks.sqlitesink import SQLiteSink  # noqa: PLC0415

    low = path.lower()
    if path == "-" or low.endswith((".jsonl", ".ndjson", ".json")):
        return JSONLSink(path)
    if low.endswith(".csv"):
        return CSVSink(path, extra_fields=extra_fields)
    if low.endswith((".sqlite", ".sqlite3", ".db")):
        return SQLiteSink(path, extra_fields=extra_fields)
    raise ConfigError(f"-o {path}: unknown output format (use .jsonl, .csv, .sqlite or -)")
