"""SQLite sink: an ``outcomes`` table with one row per request, columns in the outcome record's order.

Rows carry a sequence number, so a resume deletes anything after the recorded position and re-inserts.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from surge.engine.items import OUTCOME_FIELDS, Outcome
from surge.errors import ConfigError

__all__ = ["SQLiteSink"]

_TYPES = {"status": "INTEGER", "ok": "INTEGER", "attempts": "INTEGER", "elapsed_ms": "REAL",
          "ttfb_ms": "REAL", "bytes": "INTEGER", "started_at": "REAL", "depth": "INTEGER"}


class SQLiteSink:
    """Writes outcomes into table ``outcomes`` of an SQLite file (WAL); lists/dicts are stored as JSON."""

    def __init__(self, path: str, *, extra_fields: Sequence[str] = ()) -> None:
        self.path = path
        self.fields = OUTCOME_FIELDS + tuple(f for f in extra_fields if f not in OUTCOME_FIELDS)
        self._db: sqlite3.Connection | None = None
        self._n = 0
        self._insert = (f"INSERT OR REPLACE INTO outcomes (seq, {', '.join(self.fields)}) "
                        f"VALUES ({', '.join('?' * (len(self.fields) + 1))})")

    def open(self, resume_at: int | None = None) -> None:
        """Start fresh (an existing file is replaced) or keep the first ``resume_at`` rows and continue."""
        try:
            if resume_at is None or resume_at < 0:
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(self.path + suffix):
                        os.unlink(self.path + suffix)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            cols = ", ".join(f"{f} {_TYPES.get(f, 'TEXT')}" for f in self.fields)
            db.execute(f"CREATE TABLE IF NOT EXISTS outcomes (seq INTEGER PRIMARY KEY, {cols})")
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot write {self.path}: {exc}") from None
        self._n = max(resume_at or 0, 0)
        db.execute("DELETE FROM outcomes WHERE seq > ?", (self._n,))
        db.execute("BEGIN")
        self._db = db

    def write(self, batch: Sequence[Outcome]) -> None:
        """Insert a batch inside the open transaction."""
        assert self._db is not None
        rows: list[list[Any]] = []
        n = self._n
        for o in batch:
            n += 1
            d = o.to_dict()
            row: list[Any] = [n]
            for f in self.fields:
                v = d.get(f)
                row.append(orjson.dumps(v).decode() if isinstance(v, list | dict) else v)
            rows.append(row)
        self._db.executemany(self._insert, rows)
        self._n = n

    def flush(self) -> int:
        """Commit; returns the number of rows, the position to resume at."""
        assert self._db is not None
        self._db.execute("COMMIT")
        self._db.execute("BEGIN")
        return self._n

    def close(self) -> None:
        """Commit and close."""
        if self._db is not None:
            self._db.execute("COMMIT")
            self._db.close()
            self._db = None
