"""WorkQueue semantics, memory and SQLite: lease/ack/pending, lazy input, re-lease after a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from surge.engine.input import ArgsSource, FileSource, RequestDefaults
from surge.engine.items import Outcome, WorkItem
from surge.engine.memqueue import MemoryQueue
from surge.engine.sqlitequeue import SQLiteQueue
from surge.engine.workqueue import Lease, WorkQueue
from surge.errors import StateError


def outcome_for(lease: Lease) -> Outcome:
    it = lease.item
    return Outcome(it.url, it.url, it.method, 200, True, None, 1, 1.0, 0.5, 10, "text/plain", 0.0, lease.key)


class CountingSource(ArgsSource):
    """Records how far the queue read, to prove read-ahead is bounded."""

    async def read(self, n: int) -> list[WorkItem]:
        self.asked = getattr(self, "asked", 0) + n
        return await super().read(n)

    def read_shared(self, n: int) -> tuple[WorkItem, int, int] | None:
        self.asked = getattr(self, "asked", 0) + n
        return super().read_shared(n)


async def test_memory_queue_reads_lazily_and_counts_pending() -> None:
    src = CountingSource(["http://h/"], count=1_000_000)
    q = MemoryQueue(src)
    assert isinstance(q, WorkQueue)
    leases = await q.lease(10)
    assert [lease.key for lease in leases] == [str(i) for i in range(1, 11)]
    assert src.asked == 10  # nothing read beyond what was leased
    assert await q.pending() == 10
    await q.ack([(lease, outcome_for(lease)) for lease in leases[:4]])
    assert await q.pending() == 6
    assert await q.add([WorkItem("http://h/added", key="x")]) == 1
    first = await q.lease(2)
    assert first[0].key == "x"  # added items go before unread input
    assert first[1].key == "11"


async def test_memory_queue_load_mode_shares_one_item_and_keys_each_lease() -> None:
    q = MemoryQueue(ArgsSource(["http://h/"], RequestDefaults("POST", [("X", "1")], b"b"), count=5))
    leases = await q.lease(3) + await q.lease(10)
    assert [lease.key for lease in leases] == ["1", "2", "3", "4", "5"]
    assert [lease.id for lease in leases] == [0, 1, 2, 3, 4]
    assert all(lease.item is leases[0].item for lease in leases)  # one item, no copies
    it = leases[0].item
    assert (it.url, it.method, it.headers, it.body) == ("http://h/", "POST", (("X", "1"),), b"b")
    assert await q.lease(10) == []
    # The same keys as the one-item-per-request read (the SQLite queue's) and the same checkpoint.
    src = ArgsSource(["http://h/"], count=5)
    assert [w.key for w in await src.read(10)] == ["1", "2", "3", "4", "5"]
    assert src.checkpoint() == {"n": 5}
    many = MemoryQueue(ArgsSource(["http://a/", "http://b/"], count=3))
    got = await many.lease(10)
    assert [(lease.key, lease.item.url) for lease in got] == [("1", "http://a/"), ("2", "http://b/"),
                                                              ("3", "http://a/")]


async def test_memory_queue_empty_when_exhausted() -> None:
    q = MemoryQueue(ArgsSource(["http://h/"], count=3))
    assert len(await q.lease(10)) == 3
    assert await q.lease(10) == []


async def test_sqlite_queue_lease_ack_and_relaunch_after_crash(tmp_path: Path) -> None:
    state = tmp_path / "st"
    q = SQLiteQueue(state, ArgsSource(["http://h/"], count=10), fingerprint="f")
    await q.open()
    assert not q.resumed
    leases = await q.lease(6)
    assert [lease.key for lease in leases] == ["1", "2", "3", "4", "5", "6"]
    await q.ack([(lease, outcome_for(lease)) for lease in leases[:3]])
    assert await q.pending() == 3
    # Simulate a crash: drop the queue without acking 4..6 (close only releases the lock).
    await q.close()

    q2 = SQLiteQueue(state, ArgsSource(["http://h/"], count=10), fingerprint="f")
    await q2.open()
    assert q2.resumed
    got = []
    while batch := await q2.lease(3):
        got += batch
        await q2.ack([(lease, outcome_for(lease)) for lease in batch])
    # Leased-but-not-acked items come back first; input continues after the checkpoint; nothing twice.
    assert [lease.key for lease in got] == ["4", "5", "6", "7", "8", "9", "10"]
    assert await q2.pending() == 0
    assert q2.exhausted
    rows = await q2.outcomes_after(0)
    assert sorted(int(o.key) for _, o in rows) == list(range(1, 11))
    await q2.close()


async def test_sqlite_queue_file_input_resumes_by_offset(tmp_path: Path) -> None:
    f = tmp_path / "urls.txt"
    f.write_text("".join(f"http://h/{i}\n" for i in range(1, 8)))
    q = SQLiteQueue(tmp_path / "st", FileSource(str(f)), fingerprint="f")
    await q.open()
    first = await q.lease(3)
    await q.ack([(lease, outcome_for(lease)) for lease in first])
    await q.close()
    q2 = SQLiteQueue(tmp_path / "st", FileSource(str(f)), fingerprint="f")
    await q2.open()
    rest = await q2.lease(100)
    assert [lease.item.url for lease in rest] == [f"http://h/{i}" for i in range(4, 8)]
    await q2.close()


async def test_sqlite_queue_added_items_are_durable(tmp_path: Path) -> None:
    q = SQLiteQueue(tmp_path / "st", None, fingerprint="f")
    await q.open()
    await q.add([WorkItem("http://h/a", key="a", headers=(("X", "1"),), body=b"b")])
    await q.close()
    q2 = SQLiteQueue(tmp_path / "st", None, fingerprint="f")
    await q2.open()
    (lease,) = await q2.lease(5)
    assert (lease.key, lease.item.headers, lease.item.body) == ("a", (("X", "1"),), b"b")
    await q2.close()


async def test_sqlite_queue_refuses_other_command_and_concurrent_use(tmp_path: Path) -> None:
    q = SQLiteQueue(tmp_path / "st", None, fingerprint="one", describe="surge fetch one")
    await q.open()
    with pytest.raises(StateError, match="in use by another"):
        await SQLiteQueue(tmp_path / "st", None, fingerprint="one").open()
    await q.close()
    with pytest.raises(StateError, match="belongs to another command"):
        await SQLiteQueue(tmp_path / "st", None, fingerprint="two").open()
    # The failed open released the lock: the right command can still use it.
    q3 = SQLiteQueue(tmp_path / "st", None, fingerprint="one")
    await q3.open()
    await q3.close()


async def test_sqlite_queue_export_mark_is_written_with_next_commit(tmp_path: Path) -> None:
    q = SQLiteQueue(tmp_path / "st", ArgsSource(["http://h/"], count=4), fingerprint="f")
    await q.open()
    assert await q.export_state() == (0, -1)
    leases = await q.lease(2)
    await q.ack([(lease, outcome_for(lease)) for lease in leases])
    q.note_exported(q.last_seq, 123)
    assert await q.export_state() == (0, -1)  # not yet: it rides on the next commit
    more = await q.lease(2)
    await q.ack([(lease, outcome_for(lease)) for lease in more])
    assert await q.export_state() == (1, 123)  # the first batch (seq counts committed batches)
    await q.close()


async def test_lease_cancelled_leaves_queue_usable(tmp_path: Path) -> None:
    import asyncio

    q = SQLiteQueue(tmp_path / "st", ArgsSource(["http://h/"], count=50), fingerprint="f")
    await q.open()
    task = asyncio.ensure_future(q.lease(10))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    got = await q.lease(100)
    # Whatever the cancelled lease loaded stays in the database: nothing is lost, nothing doubled.
    keys = [int(lease.key) for lease in got]
    assert keys == sorted(set(keys))
    await q.close()
    q2 = SQLiteQueue(tmp_path / "st", ArgsSource(["http://h/"], count=50), fingerprint="f")
    await q2.open()
    again = await q2.lease(100)
    assert sorted(int(lease.key) for lease in again) == list(range(1, 51))
    await q2.close()


async def test_sqlite_queue_resume_skips_items_done_out_of_order(tmp_path: Path) -> None:
    # Outcomes are stored by the batch; on resume the done items (in any order, in any batch) are skipped.
    state = tmp_path / "st"
    q = SQLiteQueue(state, ArgsSource(["http://h/"], count=2500), fingerprint="f")
    await q.open()
    leases = await q.lease(2500)
    by_key = {lease.key: lease for lease in leases}
    first = [by_key[k] for k in ("9", "2", "2000", "5")]
    second = [by_key[str(k)] for k in range(1500, 1000, -1)]
    await q.ack([(lease, outcome_for(lease)) for lease in first])
    await q.ack([(lease, outcome_for(lease)) for lease in second])
    assert q.last_seq == 2
    await q.close()  # the rest were leased, never acked: a crash

    q2 = SQLiteQueue(state, ArgsSource(["http://h/"], count=2500), fingerprint="f")
    await q2.open()
    assert await q2.pending() == 2500 - 504
    again = []
    while batch := await q2.lease(700):
        again += batch
    done = {"9", "2", "2000", "5"} | {str(k) for k in range(1001, 1501)}
    assert [lease.key for lease in again] == [str(k) for k in range(1, 2501) if str(k) not in done]
    rows = await q2.outcomes_after(0)
    assert [(s, o.key) for s, o in rows[:4]] == [(1, "9"), (1, "2"), (1, "2000"), (1, "5")]
    assert [s for s, _ in rows[4:]] == [2] * 500
    assert await q2.outcomes_after(1) == rows[4:]
    await q2.close()


async def test_sqlite_queue_keeps_an_invalid_line_invalid_across_a_crash(tmp_path: Path) -> None:
    f = tmp_path / "in.txt"
    f.write_text("http://h/1\nnot a url\nhttp://h/3\n")
    state = tmp_path / "st"
    q = SQLiteQueue(state, FileSource(str(f)), fingerprint="f")
    await q.open()
    assert [lease.item.invalid is not None for lease in await q.lease(3)] == [False, True, False]
    await q.close()  # nothing acked: a crash

    q2 = SQLiteQueue(state, FileSource(str(f)), fingerprint="f")
    await q2.open()
    again = await q2.lease(3)
    assert [(lease.key, lease.item.url) for lease in again] == [
        ("1", "http://h/1"), ("2", "not a url"), ("3", "http://h/3")]
    invalid = again[1].item.invalid
    assert invalid is not None and "in.txt:2" in invalid and again[0].item.invalid is None
    await q2.close()


async def test_sqlite_queue_opens_a_version_2_state_in_place(tmp_path: Path) -> None:
    # A state dir written before items.invalid existed resumes: the column is added, nothing is lost.
    import sqlite3

    state = tmp_path / "st"
    q = SQLiteQueue(state, ArgsSource(["http://h/"], count=4), fingerprint="f")
    await q.open()
    leases = await q.lease(4)
    await q.ack([(lease, outcome_for(lease)) for lease in leases[:2]])
    await q.close()
    db = sqlite3.connect(state / "state.db")
    with db:  # back to version 2's layout: items without the invalid column
        db.execute("ALTER TABLE items DROP COLUMN invalid")
        db.execute("UPDATE meta SET v = '2' WHERE k = 'schema'")
    db.close()

    q2 = SQLiteQueue(state, ArgsSource(["http://h/"], count=4), fingerprint="f")
    await q2.open()
    assert q2.resumed and [lease.key for lease in await q2.lease(4)] == ["3", "4"]
    await q2.close()
    db = sqlite3.connect(state / "state.db")
    assert db.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone() == ("3",)
    db.close()
