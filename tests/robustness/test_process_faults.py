"""surge when the process is hit: a bug ends in one line, its traceback in a file, and exit 70."""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from surge.cli.main import SurgeGroup, note_state_dir
from surge.engine.fetcher import Fetcher
from surge.engine.items import Outcome
from surge.server import serve as serve_here

pytestmark = pytest.mark.slow


# -- a bug ---------------------------------------------------------------------------------------------------


class BuggySink:
    """A sink with a bug: every write fails with a KeyError (not a surge error)."""

    path = "buggy"

    def open(self, resume_at: int | None = None) -> None:
        pass

    def write(self, batch: Sequence[Outcome]) -> None:
        raise KeyError("status")

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass


def group_running_a_bug(state: Path | None) -> click.Group:
    # The surge command group with one more command: a fetch through the public Fetcher API whose output
    # has a bug. Nothing in surge is patched; the bug travels the engine's commit path up to the group.
    @click.command()
    def buggy() -> None:
        note_state_dir(str(state) if state is not None else None)  # what run_settings does for --state

        async def run() -> None:
            async with serve_here() as url:
                await Fetcher(concurrency=2, output=BuggySink(), state=state).run([f"{url}/"] * 5)
        asyncio.run(run())

    return SurgeGroup(name="surge", commands={"buggy": buggy})


_INTERNAL = re.compile(r"surge: internal error: KeyError: 'status' \(traceback in (?P<path>.+)\)")


@pytest.mark.parametrize("with_state", [True, False])
def test_a_bug_is_one_line_with_its_traceback_in_a_file_and_exit_70(
        tmp_path: Path, with_state: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # $TMPDIR, as gettempdir() read it
    state = tmp_path / "state" if with_state else None
    result = CliRunner().invoke(group_running_a_bug(state), ["buggy"])
    assert result.exit_code == 70, result.output
    said = result.stderr.strip().splitlines()
    assert len(said) == 1 and "Traceback" not in result.stderr
    m = _INTERNAL.fullmatch(said[0])
    assert m is not None, said[0]
    log = Path(m["path"])
    assert log.parent == (state if state is not None else temp)
    assert re.fullmatch(r"surge-crash-\d{8}-\d{6}-\d+\.log", log.name)
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in write" in text and "KeyError: 'status'" in text


def test_ctrl_c_is_not_an_internal_error() -> None:
    @click.command()
    def interrupted() -> None:
        raise KeyboardInterrupt

    group = SurgeGroup(name="surge", commands={"interrupted": interrupted})
    with pytest.raises(click.Abort):  # click's way, which main() ends as "surge: aborted", exit 130
        group.main(["interrupted"], standalone_mode=False)
