"""SQLite sink: an ``outcomes`` table with one row per request, columns in the outcome record's order.

Rows carry a sequence number, so a resume deletes anything after the recorded position and re-inserts.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from surge.engine.items import OUTCOME_FIELDS, Outcome
from surge.errors import ConfigError, OutputMismatch, StorageError

__all__ = ["SQLiteSink"]

_TYPES = {"status": "INTEGER", "ok": "INTEGER", "attempts": "INTEGER", "elapsed_ms": "REAL",
          "ttfb_ms": "REAL", "bytes": "INTEGER", "started_at": "REAL", "depth": "INTEGER"}


class SQLiteSink:
    """Writes outcomes into table ``outcomes`` of an SQLite file (WAL); lists/dicts are stored as JSON.

    A batch that cannot be committed (disk full) is rolled back and raised as a
    :class:`~surge.errors.StorageError` naming the file; the rows committed before it stay.
    """

    def __init__(self, path: str, *, extra_fields: Sequence[str] = ()) -> None:
        self.path = path
        self.fields = OUTCOME_FIELDS + tuple(f for f in extra_fields if f not in OUTCOME_FIELDS)
        self._db: sqlite3.Connection | None = None
        self._n = 0
        self._committed = 0  # rows committed: the position flush() last returned
        self._insert = (f"INSERT OR REPLACE INTO outcomes (seq, {', '.join(self.fields)}) "
                        f"VALUES ({', '.join('?' * (len(self.fields) + 1))})")

    def open(self, resume_at: int | None = None) -> None:
        """Start fresh (an existing file is replaced) or keep the first ``resume_at`` rows and continue; fewer
        rows than that (the file was deleted or cut) raise OutputMismatch."""
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
        except sqlite3.Error as exc:
            raise self._storage_error(exc) or ConfigError(f"cannot write {self.path}: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot write {self.path}: {exc}") from None
        self._n = self._committed = max(resume_at or 0, 0)
        self._db = db
        with self._storing():
            kept = db.execute("SELECT count(*) FROM outcomes WHERE seq <= ?", (self._n,)).fetchone()[0]
            if kept < self._n:
                self.close()
                raise OutputMismatch(f"{self.path} holds {kept} rows, less than the {self._n} recorded")
            db.execute("DELETE FROM outcomes WHERE seq > ?", (self._n,))
            db.execute("BEGIN")

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
        with self._storing():
            self._db.executemany(self._insert, rows)
        self._n = n

    def flush(self) -> int:
        """Commit; returns the number of rows, the position to resume at."""
        assert self._db is not None
        with self._storing():
            self._db.execute("COMMIT")
            self._committed = self._n
            self._db.execute("BEGIN")
        return self._n

    def close(self) -> None:
        """Commit and close."""
        if self._db is not None:
            db = self._db
            try:
                with self._storing():
                    if db.in_transaction:
                        db.execute("COMMIT")
            finally:
                self._db = None
                db.close()

    def _storage_error(self, exc: sqlite3.Error) -> StorageError | None:
        return StorageError.from_sqlite(exc, self.path)

    @contextlib.contextmanager
    def _storing(self) -> Iterator[None]:
        # Disk full, read-only or an I/O error: roll the uncommitted rows back and say which file. The next
        # write starts a new transaction after the rows committed so far.
        try:
            yield
        except sqlite3.OperationalError as exc:
            error = self._storage_error(exc)
            if error is None:
                raise
            db = self._db
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    db.execute("BEGIN")
            self._n = self._committed
            raise error from exc
