"""Sinks: each format writes one row per outcome, returns a resume position, and resumes idempotently."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import orjson
import pytest

from surge.engine.items import Outcome
from surge.errors import ConfigError
from surge.sinks import CSVSink, JSONLSink, SQLiteSink, open_sink


def outcome(i: int, **kw: object) -> Outcome:
    o = Outcome(f"http://h/{i}", f"http://h/{i}", "GET", 200, True, None, 1, 1.5, 0.5, 10, "text/plain",
                1700000000.0, str(i))
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def test_open_sink_by_extension(tmp_path: Path) -> None:
    assert isinstance(open_sink(str(tmp_path / "a.jsonl")), JSONLSink)
    assert isinstance(open_sink("-"), JSONLSink)
    assert isinstance(open_sink(str(tmp_path / "a.csv")), CSVSink)
    assert isinstance(open_sink(str(tmp_path / "a.sqlite")), SQLiteSink)
    with pytest.raises(ConfigError, match="unknown output format"):
        open_sink(str(tmp_path / "a.txt"))


def test_unwritable_output_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write"):
        JSONLSink(str(tmp_path / "no" / "such" / "dir.jsonl")).open()


def test_jsonl_resume_truncates_to_position(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    s = JSONLSink(str(path))
    s.open()
    s.write([outcome(1), outcome(2)])
    pos = s.flush()
    s.write([outcome(3)])  # written after the recorded position: a resume must drop it
    s.close()
    assert pos == len(path.read_bytes().splitlines(keepends=True)[0]) * 2
    s2 = JSONLSink(str(path))
    s2.open(resume_at=pos)
    s2.write([outcome(3, body="é", body_encoding="utf-8", headers=[("a", "b")])])
    s2.close()
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [r["key"] for r in rows] == ["1", "2", "3"]
    assert rows[2]["body"] == "é" and rows[2]["headers"] == [["a", "b"]]
    assert "body" not in rows[0]  # optional fields only when set


def test_csv_header_once_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    s = CSVSink(str(path), extra_fields=["headers"])
    s.open()
    s.write([outcome(1, headers=[("a", "b")])])
    pos = s.flush()
    s.write([outcome(2)])
    s.close()
    s2 = CSVSink(str(path), extra_fields=["headers"])
    s2.open(resume_at=pos)
    s2.write([outcome(2), outcome(3)])
    s2.close()
    rows = list(csv.DictReader(path.open()))
    assert [r["key"] for r in rows] == ["1", "2", "3"]
    assert orjson.loads(rows[0]["headers"]) == [["a", "b"]]
    assert rows[0]["error"] == "" and rows[0]["status"] == "200"


def test_sqlite_sink_resume_replaces_rows_after_position(tmp_path: Path) -> None:
    path = tmp_path / "out.sqlite"
    s = SQLiteSink(str(path))
    s.open()
    s.write([outcome(1), outcome(2)])
    pos = s.flush()
    s.write([outcome(3)])
    s.flush()
    s.close()
    s2 = SQLiteSink(str(path))
    s2.open(resume_at=pos)
    s2.write([outcome(3, status=404, ok=False)])
    s2.close()
    db = sqlite3.connect(path)
    rows = db.execute("SELECT key, status, ok FROM outcomes ORDER BY seq").fetchall()
    assert rows == [("1", 200, 1), ("2", 200, 1), ("3", 404, 0)]
    # A fresh open replaces the file.
    s3 = SQLiteSink(str(path))
    s3.open()
    s3.close()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM outcomes").fetchone() == (0,)


def test_outcome_round_trip() -> None:
    o = outcome(5, headers=[("x", "y")], body="aGk=", body_encoding="base64", depth=2, parent="http://p/",
                links=["http://l/"])
    assert Outcome.from_dict(orjson.loads(orjson.dumps(o.to_dict()))) == o


def test_jsonl_batch_encoding_equals_one_record_at_a_time() -> None:
    from surge.engine.items import encode_lines

    tricky = '},{"key":"x"}\n{"key":'
    batch = [outcome(1), outcome(2, url=tricky, content_type=tricky, body=tricky, body_encoding="utf-8"),
             outcome(3, key=tricky, headers=[(tricky, "v")], links=[tricky]), outcome(4, key=""),
             outcome(7, depth=1, parent="http://p/")]
    expected = b"".join(orjson.dumps(o.to_dict(), option=orjson.OPT_APPEND_NEWLINE) for o in batch)
    assert encode_lines(batch) == expected
    assert [orjson.loads(line)["url"] for line in expected.splitlines()][1] == tricky
    assert encode_lines([]) == b""
    assert encode_lines(batch[:1]) == expected.splitlines(keepends=True)[0]
    # Nested objects with a "key" of their own would confuse the split: the encoder notices and falls back.
    nested = [outcome(5, links=[{"key": 1}, {"key": 2}]), outcome(6)]
    assert encode_lines(nested) == b"".join(orjson.dumps(o.to_dict(), option=orjson.OPT_APPEND_NEWLINE)
                                            for o in nested)
