"""`surge bench`: re-run the playbook's experiments here (loops §6, crawler steps §5, 100k requests §7).

Each prints a Markdown table with the command, machine and date (for BENCHMARKS.md), or JSON with --json.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from surge.bench.targets import HarnessError
from surge.cli.fetch import command_line
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
    res.command = command_line()
    emit(res, as_json, lambda: machine_header("Event loops (playbook §6)", res.command, res.machine)
         + "\n" + res.markdown() + f"\n\nops/s = operations / seconds, median of {repeat}; "
         "×asyncio = asyncio's time / this loop's time.")


def _progress(quiet: bool) -> Callable[[str], None] | None:
    # Progress goes to stderr so stdout stays a clean table or JSON document.
    return None if quiet else (lambda msg: click.echo(f"surge bench: {msg}", err=True))


_TARGET_HELP = "Target: 'surge' (embedded server, default), 'nginx' (started pinned here) or an http:// URL."


def _check_target(target: str | None) -> str | None:
    if target in (None, "surge", "nginx"):
        return target
    assert target is not None
    if not target.startswith(("http://", "https://")):
        raise ConfigError(f"--target must be 'surge', 'nginx' or an http(s):// URL, got {target!r}")
    return target


@bench.command()
@click.option("--urls", "-n", "urls", default=100, show_default=True, type=click.IntRange(1),
              help="How many URLs each step fetches.")
@click.option("--delay-ms", default=100, show_default=True, type=click.IntRange(0),
              help="Server-side delay of each request (/delay/MS on the embedded server).")
@click.option("--target", default=None, metavar="surge|nginx|URL", help=_TARGET_HELP)
@click.option("--step", "steps", multiple=True, type=click.Choice(["sync", "gather", "optimized", "surge"]),
              help="Run only these steps (repeatable; default: all).")
@click.option("--loop", "fetch_loop", default="auto", show_default=True,
              type=click.Choice(["auto", "asyncio", "uvloop", "rloop"]), help="Event loop for surge fetch.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def steps(*, urls: int, delay_ms: int, target: str | None, steps: tuple[str, ...], fetch_loop: str,
          quiet: bool, as_json: bool) -> None:
    """The playbook's §5 crawler steps and surge fetch on the same URLs: time and speed-up."""
    from surge.bench.steps import STEP_NAMES, run_steps  # noqa: PLC0415 - keep `surge --help` fast

    with _harness_errors():
        res = run_steps(urls=urls, delay_ms=delay_ms, target=_check_target(target), steps=steps or STEP_NAMES,
                        fetch_loop=fetch_loop, progress=_progress(quiet or as_json))
    res.command = command_line()
    emit(res, as_json, lambda: machine_header("Crawler steps (playbook §5)", res.command, res.machine)
         + "\n" + res.markdown())


@bench.command()
@click.option("--requests", "-n", "requests", default=100_000, show_default=True, type=click.IntRange(1),
              help="Requests each client sends.")
@click.option("--connections", "-c", default=100, show_default=True, type=click.IntRange(1),
              help="Connections for surge fetch, wrk and hey (the playbook's script keeps its own settings).")
@click.option("--target", default=None, metavar="surge|nginx|URL", help=_TARGET_HELP)
@click.option("--client", "clients", multiple=True, type=click.Choice(["playbook", "surge", "wrk", "hey"]),
              help="Run only these clients (repeatable; default: all that are installed).")
@click.option("--loop", "loops", multiple=True, type=click.Choice(["asyncio", "uvloop", "rloop"]),
              help="Loops for the Python clients (repeatable; default: asyncio and uvloop).")
@click.option("--server-loop", default="auto", show_default=True,
              type=click.Choice(["auto", "asyncio", "uvloop", "rloop"]),
              help="Event loop of the embedded server.")
@click.option("--wrk-duration", type=click.FloatRange(1), default=None,
              help="Seconds wrk runs (default: the median time of the other clients, 1–30 s).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def http(*, requests: int, connections: int, target: str | None, clients: tuple[str, ...],
         loops: tuple[str, ...], server_loop: str, wrk_duration: float | None, quiet: bool,
         as_json: bool) -> None:
    """The playbook's §7 experiment: N requests by its script, surge fetch, wrk and hey, side by side."""
    from surge.bench.http import CLIENTS, run_http  # noqa: PLC0415 - keep `surge --help` fast

    with _harness_errors():
        res = run_http(requests=requests, connections=connections, target=_check_target(target),
                       clients=clients or CLIENTS, loops=loops or ("asyncio", "uvloop"),
                       server_loop=server_loop, wrk_duration=wrk_duration,
                       progress=_progress(quiet or as_json))
    res.command = command_line()
    emit(res, as_json, lambda: machine_header("100,000 requests (playbook §7)", res.command, res.machine)
         + f"\nTarget: {res.target} ({res.target_kind}); {res.requests:,} requests, {res.connections} "
         "connections.\n\n" + res.markdown())
