"""CSV sink: one row per outcome with a header row; the columns follow the outcome record's field order.

Optional fields (headers as JSON, body) get columns only when asked for, so every row has the same shape.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

from surge.engine.items import OUTCOME_FIELDS, Outcome
from surge.sinks._file import OutputFile

__all__ = ["CSVSink"]


class CSVSink:
    """Writes outcomes as CSV (RFC 4180 quoting); lists and dicts in optional fields are JSON-encoded."""

    def __init__(self, path: str, *, extra_fields: Sequence[str] = ()) -> None:
        self.path = path
        self.fields = OUTCOME_FIELDS + tuple(f for f in extra_fields if f not in OUTCOME_FIELDS)
        self._f: OutputFile | None = None
        self._buf = io.StringIO()
        self._w = csv.writer(self._buf, lineterminator="\n")

    def open(self, resume_at: int | None = None) -> None:
        """Start fresh with a header row, or continue after byte offset ``resume_at`` (header is there)."""
        self._f = OutputFile(self.path, resume_at)
        if resume_at is None or resume_at <= 0:
            self._w.writerow(self.fields)

    def write(self, batch: Sequence[Outcome]) -> None:
        """Buffer a batch of rows."""
        fields = self.fields
        writerow = self._w.writerow
        for o in batch:
            d = o.to_dict()
            row: list[Any] = []
            for f in fields:
                v = d.get(f)
                if isinstance(v, list | dict):
                    v = orjson.dumps(v).decode()
                elif v is None:
                    v = ""
                row.append(v)
            writerow(row)

    def flush(self) -> int:
        """Write buffered rows to the file; returns the byte offset to resume at (0 for stdout).

        Rows that fail to write are dropped from the buffer too (the file is cut back to before them): the
        caller has not recorded them as written, so they are written again by whoever resumes.
        """
        assert self._f is not None
        data = self._buf.getvalue()
        if data:
            self._buf.seek(0)
            self._buf.truncate()
            self._f.write(data.encode("utf-8"))
        return self._f.flush()

    def close(self) -> None:
        """Flush and close."""
        if self._f is not None:
            try:
                self.flush()
            finally:
                f, self._f = self._f, None
                f.close()
