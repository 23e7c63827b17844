"""Disk full mid-run, for the output and for the --state directory, on a small tmpfs: one line naming the
file, exit 74, nothing acked that a resume cannot write, and the rerun after freeing space gives each input
one record. The sinks cut a batch that failed half-way back off, so an output never ends in a torn record."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_procs import SURGE, done_in_state, output_keys, serve, small_fs, url_file

from surge.engine.items import Outcome
from surge.errors import StorageError
from surge.sinks import CSVSink, JSONLSink, SQLiteSink

pytestmark = pytest.mark.slow
N = 8000
RESUME = "free space and run the same command again to resume"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve() as url:
        yield url


def surge_fetch(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SURGE, "fetch", "--no-progress", *map(str, args)], check=False,
                          capture_output=True, text=True, timeout=60)


def one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    # The summary of what was done comes first (as after Ctrl-C); the run ends in exactly one error line.
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("surge: error:")]
    assert len(errors) == 1, r.stderr
    assert r.stderr.rstrip("\n").splitlines()[-1] == errors[0]
    return errors[0]


def check_state_and_output_agree(state: Path, out: Path) -> None:
    # Every record in the output is done in the state; every done one the state says it exported is in the
    # output; the done ones that are not (the batch whose write failed) come after the export mark, which
    # is what a resume writes again. Reading every line also proves none is torn.
    done, mark, _ = done_in_state(state)
    have = output_keys(out)
    assert max(have.values(), default=1) == 1
    assert set(have) <= set(done)
    assert {k for k, seq in done.items() if seq <= mark} <= set(have)


@pytest.mark.parametrize("full, name, size", [
    ("output", "out.jsonl", "512k"),
    ("output", "out.csv", "512k"),
    ("output", "out.sqlite", "512k"),
    ("state", "out.jsonl", "1m"),
])
def test_disk_full_is_one_line_and_the_rerun_after_freeing_space_completes_once(
        server: str, tmp_path: Path, full: str, name: str, size: str) -> None:
    urls = url_file(tmp_path / "urls.txt", server, N)
    with small_fs(tmp_path / "small", size) as fs:
        out = (fs.path if full == "output" else tmp_path) / name
        state = (fs.path if full == "state" else tmp_path) / "state"
        cmd = ("-i", urls, "-o", out, "--state", state)
        r = surge_fetch(*cmd)
        assert r.returncode == 74, r.stderr
        where = out if full == "output" else state / "state.db"
        assert one_error_line(r) == f"surge: error: no space left on device writing {where}; {RESUME}"
        fs.resize("32m")
        check_state_and_output_agree(state, out)
        assert 0 < len(output_keys(out)) < N  # it stopped mid-run
        r = surge_fetch(*cmd)
        assert r.returncode == 0, r.stderr
        keys = output_keys(out)
        assert set(keys) == {str(i) for i in range(1, N + 1)} and max(keys.values()) == 1


def test_freeing_space_by_deleting_the_output_rewrites_it_whole(server: str, tmp_path: Path) -> None:
    # The state holds every outcome it acked: an output deleted to free space is written again from it.
    urls = url_file(tmp_path / "urls.txt", server, N)
    with small_fs(tmp_path / "small", "512k") as fs:
        out, state = fs.path / "out.jsonl", tmp_path / "state"
        assert surge_fetch("-i", urls, "-o", out, "--state", state).returncode == 74
        before = len(done_in_state(state)[0])
        out.unlink()
        fs.resize("32m")
        r = surge_fetch("-i", urls, "-o", out, "--state", state)
        assert r.returncode == 0, r.stderr
        said = f"{before} requests were done before, {before} of them written to the output only now"
        assert said in r.stderr
        keys = output_keys(out)
        assert set(keys) == {str(i) for i in range(1, N + 1)} and max(keys.values()) == 1


def test_without_state_the_output_ends_in_whole_records_and_the_rerun_starts_over(server: str,
                                                                                  tmp_path: Path) -> None:
    urls = url_file(tmp_path / "urls.txt", server, N)
    with small_fs(tmp_path / "small", "512k") as fs:
        out = fs.path / "out.jsonl"
        r = surge_fetch("-i", urls, "-o", out)
        assert r.returncode == 74
        assert one_error_line(r) == (f"surge: error: no space left on device writing {out}; free space and "
                                     "run the command again (without --state it starts over)")
        data = out.read_bytes()
        assert data.endswith(b"\n")
        keys = output_keys(out)  # every line parses: none is torn
        assert 0 < len(keys) < N and max(keys.values()) == 1
        fs.resize("32m")
        assert surge_fetch("-i", urls, "-o", out).returncode == 0
        keys = output_keys(out)
        assert set(keys) == {str(i) for i in range(1, N + 1)} and max(keys.values()) == 1


def outcomes(first: int, n: int) -> list[Outcome]:
    return [Outcome(f"http://h/{i}", f"http://h/{i}", "GET", 200, True, None, 1, 1.5, 0.5, 10, "text/plain",
                    1700000000.0, str(i)) for i in range(first, first + n)]


@pytest.mark.parametrize("sink_class", [JSONLSink, CSVSink])
def test_a_batch_that_fills_the_disk_half_way_is_cut_off_again(tmp_path: Path,
                                                               sink_class: type[JSONLSink | CSVSink]) -> None:
    with small_fs(tmp_path / "small", "64k") as fs:
        path = fs.path / ("out.jsonl" if sink_class is JSONLSink else "out.csv")
        sink = sink_class(str(path))
        sink.open()
        pos, first = 0, 1
        with pytest.raises(StorageError) as caught:
            while True:  # batches of ~25 KB: the third fits only in part
                sink.write(outcomes(first, 100))
                pos = sink.flush()
                first += 100
        assert caught.value.path == str(path) and caught.value.reason == "no space left on device"
        sink.close()  # nothing left to write twice
        assert path.stat().st_size == pos > 0  # the part of the failed batch that fitted is gone
        assert path.read_bytes().endswith(b"\n")
        assert len(output_keys(path)) == first - 1
        sink = sink_class(str(path))  # and a resume at the last position continues from there
        fs.resize("1m")
        sink.open(resume_at=pos)
        sink.write(outcomes(first, 100))
        sink.close()
        keys = output_keys(path)
        assert set(keys) == {str(i) for i in range(1, first + 100)} and max(keys.values()) == 1


def test_sqlite_output_rolls_the_failed_batch_back(tmp_path: Path) -> None:
    with small_fs(tmp_path / "small", "256k") as fs:
        path = fs.path / "out.sqlite"
        sink = SQLiteSink(str(path))
        sink.open()
        pos, first = 0, 1
        with pytest.raises(StorageError) as caught:
            while True:
                sink.write(outcomes(first, 100))
                pos = sink.flush()
                first += 100
        assert caught.value.path == str(path)
        sink.close()
        assert pos > 0 and len(output_keys(path)) == pos == first - 1
