"""`surge bench`: re-run the playbook's experiments here (loops §6, crawler steps §5, 100k requests §7).

Each prints a Markdown table with the command, machine and date (for BENCHMARKS.md), or JSON with --json.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from surge.bench.targets import HarnessError
from surge.errors import ConfigError

__all__ = ["bench"]


def _int_list(value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v.replace("_", "")) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"expected comma-separated whole numbers, got {value!r}") from None
    if not out or min(out) < 1:
        raise ConfigError(f"expected comma-separated numbers ≥ 1, got {value!r}")
    return out


def _command_line() -> str:
    return "surge " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@contextmanager
def _harness_errors() -> Iterator[None]:
    # A tool or target that cannot start is the machine's state, not a bug: one line, exit 1.
    try:
        yield
    except HarnessError as exc:
        click.echo(f"surge: error: {exc}", err=True)
        sys.exit(1)


def emit(result: Any, as_json: bool, text: Callable[[], str]) -> None:
    """Print a benchmark result: its ``to_dict()`` as JSON, or the Markdown text."""
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(text())


def machine_header(title: str, command: str, machine: dict[str, Any]) -> str:
    """The lines above every table: what ran, where and when."""
    loops = ", ".join(f"{k} {v}" for k, v in machine["loops"].items() if v)
    return (f"## {title}\n\n`{command}`  \n{machine['date']}; {machine['nproc']} cores "
            f"({machine['cpu_model']}); {machine['kernel']}; {machine['python']}; loops: {loops}; "
            f"{machine['cores']}\n")


@click.group()
def bench() -> None:
    """Benchmarks from the playbook, measured on this machine (loops, steps, http)."""


@bench.command()
@click.option("--loop", "loops", multiple=True, metavar="NAME",
              help="Loop to run (repeatable; default: every installed one of asyncio, uvloop, rloop).")
@click.option("--tasks", default="10000,100000", show_default=True, metavar="N[,N]",
              help="Sizes of the §6 gather of coroutines awaiting sleep(0.001).")
@click.option("--ops", default=100_000, show_default=True, type=click.IntRange(1),
              help="Operations for the task, call_soon and future chains.")
@click.option("--echo", default=20_000, show_default=True, type=click.IntRange(1),
              help="Round trips for each loopback TCP echo (Protocols, streams).")
@click.option("--repeat", default=3, show_default=True, type=click.IntRange(1),
              help="Runs per figure (median).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def loops(*, loops: tuple[str, ...], tasks: str, ops: int, echo: int, repeat: int, as_json: bool) -> None:
    """The playbook's §6 loop benchmark and loop micro-benchmarks: ops/s and ratio to asyncio."""
    from surge.bench.loops import KNOWN_LOOPS, run_loops  # noqa: PLC0415 - keep `surge --help` fast

    unknown = [lp for lp in loops if lp not in KNOWN_LOOPS]
    if unknown:
        raise ConfigError(f"unknown loop {unknown[0]!r} (choose from {', '.join(KNOWN_LOOPS)})")
    with _harness_errors():
        res = run_loops(loops=loops or None, tasks=_int_list(tasks), ops=ops, echo=echo, repeat=repeat)
    res.command = _command_line()
    emit(res, as_json, lambda: machine_header("Event loops (playbook §6)", res.command, res.machine)
         + "\n" + res.markdown() + f"\n\nops/s = operations / seconds, median of {repeat}; "
         "×asyncio = asyncio's time / this loop's time.")
