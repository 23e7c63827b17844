"""The durable WorkQueue (``--state DIR``): items, outcomes and the input checkpoint in one SQLite file.

An item is done only when its outcome is committed; a run killed at any moment resumes by leasing again
every item without an outcome. The output file is derived from the outcomes table (see ``export_state``).

Outcomes are stored by the batch the engine commits: one row holds the batch's item ids and its records as
JSON lines. A row per outcome cost two B-tree inserts per request, 1.9 us against 0.5 us per outcome in a
batch's row (benchmarks/bench_python_path.py), a fifth of a load test's time per request. On resume, the done
items are read back from those rows into a bitmap (1 bit per item).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from surge.engine.input import InputSource
from surge.engine.items import Outcome, WorkItem, encode_lines
from surge.engine.workqueue import Lease
from surge.errors import StateError, StorageError

__all__ = ["SQLiteQueue"]

T = TypeVar("T")
# Writes a committed batch to the output (outcomes, and the same records as JSON lines); returns the
# output's resume position.
Export = Callable[[list[Outcome], bytes], int]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, url TEXT NOT NULL, method TEXT NOT NULL,
    headers BLOB, body BLOB, depth INTEGER NOT NULL DEFAULT 0, parent TEXT, invalid TEXT);
CREATE TABLE IF NOT EXISTS outcomes (
    seq INTEGER PRIMARY KEY, ids BLOB NOT NULL, data BLOB NOT NULL);
"""
# seq: the batch's number. ids: its items' ids (native int64 array). data: its records, one JSON line each,
# in the same order. items.invalid: why the input line is not a request (WorkItem.invalid), else NULL.
_SCHEMA_VERSION = "3"
# Versions opened in place: 2 lacks items.invalid, which a nullable column adds.
_MIGRATE = {"2": "ALTER TABLE items ADD COLUMN invalid TEXT"}


def _ids(blob: bytes) -> array[int]:
    a = array("q")
    a.frombytes(blob)
    return a


class SQLiteQueue:
    """A WorkQueue in ``DIR/state.db`` (WAL, synchronous=NORMAL), locked to one run at a time.

    Input is loaded progressively: each batch read from the source is inserted together with the source's
    checkpoint, in one transaction, so a resumed run neither re-adds nor skips input. ``ack`` inserts the
    outcome rows in one transaction; that commit is what makes items done. All database work runs on one
    background thread so the event loop never waits on the disk.

    ``fingerprint`` names the command the state belongs to; reopening with another raises StateError.
    A database that cannot be written (disk full, read-only, I/O error) raises StorageError naming it; the
    transaction it was in is rolled back, so what was committed before stays, and a rerun resumes from it.
    Use :meth:`open` (async) before anything else and :meth:`close` at the end.
    """

    def __init__(self, directory: str | os.PathLike[str], source: InputSource | None = None, *,
                 fingerprint: str = "", describe: str = "") -> None:
        self.directory = Path(directory)
        self._source = source
        self._fingerprint = fingerprint
        self._describe = describe or fingerprint
        self._ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix="surge-state")
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._lease_lock = asyncio.Lock()
        self._cursor = 0  # highest item id leased in this run
        self._max_id = 0
        self._seq = 0
        self._total = 0
        self._done = 0
        self._exhausted = False
        self._exported: tuple[int, int] | None = None  # (seq, position) to write with the next commit
        self._done_ids = bytearray()  # on resume: bit i set = item i was done by an earlier run
        self._failed = False  # the database could not be written: close() only releases it
        self.resumed = False
        self.last_seq = 0  # seq of the last outcome row committed by ack()

    # -- lifecycle --------------------------------------------------------------------------------------

    async def open(self) -> SQLiteQueue:
        """Lock the directory, create or check the database, restore the input checkpoint."""
        self._lock()
        try:
            cp = await self._io(self._open_sync)
        except BaseException:
            self._unlock()
            raise
        if cp is not None and self._source is not None:
            self._source.restore(cp)
        return self

    def _lock(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"cannot use state dir {self.directory}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateError(f"state dir {self.directory} is in use by another surge run") from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _open_sync(self) -> dict[str, int] | None:
        path = self.directory / "state.db"
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint the WAL every ~40 MB rather than every 4 MB: each checkpoint syncs, and a run
            # writes two rows per request.
            db.execute("PRAGMA wal_autocheckpoint=10000")
            version = None
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                row = db.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone()
                version = row[0] if row else None
            if version in _MIGRATE:
                db.execute("BEGIN")  # an error below leaves the file as it was (no COMMIT)
                db.execute(_MIGRATE[version])
                db.execute("UPDATE meta SET v = ? WHERE k = 'schema'", (_SCHEMA_VERSION,))
                db.execute("COMMIT")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            if StorageError.from_sqlite(exc, str(path)) is not None:
                raise  # mapped by _io
            raise StateError(f"state dir {self.directory}: unusable state database: {exc}") from None
        self._db = db
        meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
        if not meta:
            with self._txn():
                db.executemany("INSERT INTO meta (k, v) VALUES (?, ?)", [
                    ("schema", _SCHEMA_VERSION), ("fingerprint", self._fingerprint),
                    ("describe", self._describe), ("exhausted", "0"), ("exported_seq", "0"),
                    ("exported_pos", "-1"),
                ])
            return None
        if meta.get("schema") != _SCHEMA_VERSION:
            raise StateError(f"state dir {self.directory}: written by another surge version")
        if meta.get("fingerprint") != self._fingerprint:
            raise StateError(f"state dir {self.directory} belongs to another command "
                             f"({meta.get('describe', '?')}); use a new --state dir")
        self.resumed = True
        self._max_id = db.execute("SELECT coalesce(max(id), 0) FROM items").fetchone()[0]
        self._seq = self.last_seq = db.execute("SELECT coalesce(max(seq), 0) FROM outcomes").fetchone()[0]
        self._total = db.execute("SELECT count(*) FROM items").fetchone()[0]
        bits = bytearray((self._max_id >> 3) + 1)
        done = 0
        for (blob,) in db.execute("SELECT ids FROM outcomes"):
            for id_ in _ids(blob):
                bits[id_ >> 3] |= 1 << (id_ & 7)
                done += 1
        self._done_ids = bits
        self._done = done
        self._exhausted = meta.get("exhausted") == "1"
        cp = meta.get("checkpoint")
        return orjson.loads(cp) if cp else None

    async def close(self) -> None:
        """Write the pending export mark, close the database, release the lock."""
        try:
            if self._db is not None:
                await self._io(self._close_sync)
        finally:
            self._ex.shutdown(wait=True)
            self._unlock()

    def _close_sync(self) -> None:
        db = self._db
        assert db is not None
        try:
            # After a failed write, the export mark waits: a stale mark only means a resume re-exports more.
            if self._exported is not None and not self._failed:
                with self._txn():
                    self._write_exported()
        finally:
            self._db = None
            db.close()

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._ex, self._storing, fn, args)

    def _storing(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        # On the database thread: the one place where the database's disk errors become StorageError.
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            error = StorageError.from_sqlite(exc, str(self.directory / "state.db"))
            if error is None:
                raise
            self._failed = True
            raise error from exc

    @contextlib.contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        assert db is not None
        db.execute("BEGIN")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full) may leave the transaction open, or SQLite may have rolled it back.
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the error being raised is the one to report
                    db.execute("ROLLBACK")
            raise

    # -- WorkQueue --------------------------------------------------------------------------------------

    async def add(self, items: Iterable[WorkItem]) -> int:
        """Store items durably; they are leased after the backlog, before unread input."""
        batch = list(items)
        if batch:
            await self._io(self._insert_sync, batch, None)
        return len(batch)

    async def lease(self, n: int) -> list[Lease]:
        """Up to ``n`` items without an outcome: stored ones first (a resume's backlog), then new input."""
        async with self._lease_lock:
            # A fresh run has no stored backlog: skip the round trip to the database thread.
            leases = await self._io(self._select_sync, n) if self._cursor < self._max_id else []
            if len(leases) < n and self._source is not None and not self._exhausted:
                items = await self._source.read(n - len(leases))
                exhausted = len(items) < n - len(leases)
                cp = self._source.checkpoint()
                # Input read is input consumed: its rows must be stored even if this lease is cancelled
                # now (they are leased again from the database by the next lease or the next run).
                first = await asyncio.shield(self._io(self._insert_sync, items, (cp, exhausted)))
                self._exhausted = exhausted
                leases.extend(Lease(item, first + i) for i, item in enumerate(items))
                self._cursor = max(self._cursor, first + len(items) - 1)
            return leases

    def _select_sync(self, n: int) -> list[Lease]:
        assert self._db is not None
        bits = self._done_ids
        nbits = len(bits) << 3
        leases: list[Lease] = []
        while len(leases) < n and self._cursor < self._max_id:
            rows = self._db.execute(
                "SELECT id, key, url, method, headers, body, depth, parent, invalid FROM items WHERE id > ? "
                "ORDER BY id LIMIT ?", (self._cursor, max(n, 1000))).fetchall()
            if not rows:
                self._cursor = self._max_id
                break
            for id_, key, url, method, headers, body, depth, parent, invalid in rows:
                self._cursor = id_
                if id_ < nbits and bits[id_ >> 3] >> (id_ & 7) & 1:
                    continue  # done by an earlier run
                hdrs = tuple((k, v) for k, v in orjson.loads(headers)) if headers else ()
                leases.append(Lease(WorkItem(url, method, hdrs, body, key, depth, parent, invalid), id_))
                if len(leases) == n:
                    break
        return leases

    def _insert_sync(self, items: list[WorkItem], checkpoint: tuple[dict[str, int], bool] | None) -> int:
        with self._txn() as db:
            first = self._insert_rows(db, items)
            if checkpoint is not None:
                cp, exhausted = checkpoint
                db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('checkpoint', ?)", (orjson.dumps(cp),))
                if exhausted:
                    db.execute("UPDATE meta SET v = '1' WHERE k = 'exhausted'")
        self._max_id += len(items)
        self._total += len(items)
        return first

    def _insert_rows(self, db: sqlite3.Connection, items: list[WorkItem]) -> int:
        # Inside a transaction; the caller moves _max_id on once it commits.
        first = self._max_id + 1
        if any(it.headers or it.body is not None or it.depth or it.parent is not None
               or it.invalid is not None for it in items):
            db.executemany(
                "INSERT INTO items (id, key, url, method, headers, body, depth, parent, invalid) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                [(first + i, it.key, it.url, it.method, orjson.dumps(it.headers) if it.headers else None,
                  it.body, it.depth, it.parent, it.invalid) for i, it in enumerate(items)])
        else:
            # Plain URLs (the usual input): half the columns to bind, the rest take their defaults.
            db.executemany("INSERT INTO items (id, key, url, method) VALUES (?,?,?,?)",
                           [(first + i, it.key, it.url, it.method) for i, it in enumerate(items)])
        return first

    async def ack(self, done: Sequence[tuple[Lease, Outcome]], *, export: Export | None = None,
                  add: list[WorkItem] | None = None) -> None:
        """Commit the outcome rows in one transaction; from then on the items are done.

        ``add``: new items (a crawl's links) stored in the same transaction, so that a page is never done
        without the work it found.

        ``export(outcomes, lines)``, if given, runs on the database thread right after the commit (one hop
        for both) with the batch also encoded as JSON lines, the very bytes stored; what it returns is
        noted as the output position (see :meth:`note_exported`).
        """
        if done:
            await self._io(self._ack_sync, done, export, add)

    def _ack_sync(self, done: Sequence[tuple[Lease, Outcome]], export: Export | None = None,
                  add: list[WorkItem] | None = None) -> None:
        seq = self._seq + 1
        outcomes = [o for _, o in done]
        # Encoded once for the whole batch: the row stores these bytes, and JSON-lines output gets them too.
        lines = encode_lines(outcomes)
        ids = array("q", [lease.id for lease, _ in done]).tobytes()
        with self._txn() as db:
            db.execute("INSERT INTO outcomes (seq, ids, data) VALUES (?, ?, ?)", (seq, ids, lines))
            if add:
                self._insert_rows(db, add)
            if self._exported is not None:
                self._write_exported()
        if add:
            self._max_id += len(add)
            self._total += len(add)
        self._seq = self.last_seq = seq
        self._done += len(done)
        if export is not None:
            self._exported = (self.last_seq, export(outcomes, lines))

    async def pending(self) -> int:
        """Items stored and without an outcome (leased or not)."""
        return self._total - self._done

    # -- export bookkeeping (the output file is derived from the outcomes table) -------------------------

    @property
    def exhausted(self) -> bool:
        """True once the whole input has been loaded into the database."""
        return self._exhausted

    async def export_state(self) -> tuple[int, int]:
        """``(seq, position)``: outcomes up to ``seq`` are in the output, which ended at ``position``.

        ``position`` is the sink's resume token (a byte offset for files); -1 means nothing was exported yet.
        """
        def read() -> tuple[int, int]:
            assert self._db is not None
            meta = dict(self._db.execute(
                "SELECT k, v FROM meta WHERE k IN ('exported_seq', 'exported_pos')").fetchall())
            return int(meta["exported_seq"]), int(meta["exported_pos"])
        return await self._io(read)

    def note_exported(self, seq: int, position: int) -> None:
        """Remember that the output holds outcomes up to ``seq`` and ends at ``position``.

        Written with the next commit (or at close): a stale mark only means a resume re-exports a little.
        """
        self._exported = (seq, position)

    async def sync_exported(self) -> None:
        """Write the export mark now."""
        def write() -> None:
            if self._exported is not None:
                with self._txn():
                    self._write_exported()
        await self._io(write)

    def _write_exported(self) -> None:
        assert self._db is not None and self._exported is not None
        seq, pos = self._exported
        self._db.executemany("UPDATE meta SET v = ? WHERE k = ?",
                             [(str(seq), "exported_seq"), (str(pos), "exported_pos")])
        self._exported = None

    async def outcomes_after(self, seq: int, limit: int = 5) -> list[tuple[int, Outcome]]:
        """The outcomes of up to ``limit`` committed batches after batch ``seq``, in order, each with its
        batch's seq (for re-export on resume)."""
        def read() -> list[tuple[int, Outcome]]:
            assert self._db is not None
            rows = self._db.execute("SELECT seq, data FROM outcomes WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (seq, limit)).fetchall()
            return [(s, Outcome.from_dict(orjson.loads(line)))
                    for s, data in rows for line in data.splitlines()]
        return await self._io(read)

    async def stored_urls(self) -> list[str]:
        """The URL of every stored item, done or not (a resumed crawl's seen-set is rebuilt from them)."""
        def read() -> list[str]:
            assert self._db is not None
            return [url for (url,) in self._db.execute("SELECT url FROM items")]
        return await self._io(read)

    async def counts(self) -> tuple[int, int]:
        """``(stored, done)`` item counts."""
        return self._total, self._done
