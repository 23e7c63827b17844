"""``surge fetch``: send N requests to a URL (load test) or fetch a list of URLs, one outcome each.

A thin layer over :class:`surge.engine.fetcher.Fetcher`: flags in, progress and summary out.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import sys
from typing import Any

import click
import orjson

from surge.errors import ConfigError, SurgeError

__all__ = ["fetch", "parse_duration", "parse_size"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)


def parse_duration(value: str, flag: str = "-z") -> float:
    """Seconds from ``10s``, ``1m``, ``500ms``, ``1h`` or a plain number of seconds."""
    m = _DURATION.match(value)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"{flag}: invalid duration {value!r} (use e.g. 10s, 1m, 500ms)")
    return float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2) or "s"]


def parse_size(value: str, flag: str = "--max-body") -> int:
    """Bytes from ``1048576``, ``512k``, ``10MB``, ``1GiB``."""
    m = _SIZE.match(value)
    if not m:
        raise ConfigError(f"{flag}: invalid size {value!r} (use e.g. 10MB, 512k)")
    unit = (m.group(2) or "b").lower()[:1]
    return int(float(m.group(1)) * {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit])


def _positive(value: float | None, flag: str) -> float | None:
    if value is not None and value <= 0:
        raise ConfigError(f"{flag} must be positive, got {value:g}")
    return value


def _headers(values: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for raw in values:
        name, sep, val = raw.partition(":")
        if not sep or not name.strip() or any(c in name for c in " \t\r\n") or "\n" in val:
            raise ConfigError(f"-H: expected 'Name: value', got {raw!r}")
        out.append((name.strip(), val.strip()))
    return out


def _data(value: str | None) -> bytes | None:
    if value is None:
        return None
    if value.startswith("@"):
        path = value[1:]
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise ConfigError(f"-d: cannot read {path}: {exc.strerror}") from None
    return value.encode()


def _writable(path: str, flag: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ConfigError(f"{flag} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ConfigError(f"{flag} {path}: not writable")


def _command_line() -> str:
    args = sys.argv[1:]
    return shlex.join(["surge", *args])


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.argument("urls", nargs=-1)
@click.option("-i", "--input", "input_path", metavar="FILE|-",
              help="Read URLs (one a line, or JSON lines with url/method/headers/body) from FILE or stdin.")
@click.option("-n", "--requests", "count", type=int, help="Total requests: the URL(s) repeated (load test).")
@click.option("-z", "--duration", metavar="DURATION", help="Send requests this long (10s, 1m).")
@click.option("-c", "--concurrency", default=None, metavar="N|auto",
              help="Requests in flight: a number, or auto (adaptive; default for lists; -n/-z default 50).")
@click.option("--max-concurrency", type=int, default=512, show_default=True, help="Ceiling for -c auto.")
@click.option("--per-host", type=int, default=None, help="Connections per host (lists default 16).")
@click.option("-q", "--rate", type=float, default=None, help="Requests per second, overall.")
@click.option("--host-rate", type=float, default=None, help="Requests per second, per host.")
@click.option("-m", "--method", default=None, help="HTTP method (default GET, or POST with -d).")
@click.option("-H", "--header", "headers", multiple=True, metavar="'K: V'", help="A header; repeatable.")
@click.option("-d", "--data", default=None, metavar="DATA|@FILE", help="Request body.")
@click.option("-t", "--timeout", default=None, metavar="DURATION", help="Total time per request.")
@click.option("--connect-timeout", default="10s", show_default=True, metavar="DURATION")
@click.option("--read-timeout", default="30s", show_default=True, metavar="DURATION",
              help="Longest silence while waiting for response bytes.")
@click.option("--retries", type=int, default=2, show_default=True, help="Extra tries for retryable results.")
@click.option("--retry-on", default="default", show_default=True,
              help="Comma list of statuses (503, 5xx) and error classes (connect, timeout, timeout_read...); "
                   "default = 429,500,502,503,504,connect,timeout; none = never.")
@click.option("--max-redirects", type=int, default=10, show_default=True)
@click.option("--max-body", default="64MB", show_default=True, metavar="SIZE", help="Cap on a response body.")
@click.option("--save-body", is_flag=True, help="Store bodies in the output (text, or base64 when binary).")
@click.option("--save-headers", is_flag=True, help="Store response headers in the output.")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates.")
@click.option("--loop", "loop_kind", default="auto", show_default=True,
              type=click.Choice(["auto", "asyncio", "uvloop", "rloop"]))
@click.option("-o", "--output", default=None, metavar="FILE|-",
              help="One record per request: .jsonl, .csv or .sqlite by extension; - = JSON lines on stdout.")
@click.option("--state", default=None, metavar="DIR",
              help="Make the run durable: Ctrl-C or a crash, then the same command again, resumes.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object on stdout.")
@click.option("--report", default=None, metavar="FILE.html", help="Write an HTML report (works offline).")
@click.option("--no-progress", is_flag=True, help="No live progress line.")
@click.option("--drain-timeout", default="30s", show_default=True, metavar="DURATION",
              help="After Ctrl-C, how long requests in flight may take to finish.")
def fetch(  # noqa: PLR0917 - click passes every option as an argument
        urls: tuple[str, ...], input_path: str | None, count: int | None, duration: str | None,
          concurrency: str | None, max_concurrency: int, per_host: int | None, rate: float | None,
          host_rate: float | None, method: str | None, headers: tuple[str, ...], data: str | None,
          timeout: str | None, connect_timeout: str, read_timeout: str, retries: int, retry_on: str,
          max_redirects: int, max_body: str, save_body: bool, save_headers: bool, insecure: bool,
          loop_kind: str, output: str | None, state: str | None, as_json: bool, report: str | None,
          no_progress: bool, drain_timeout: str) -> None:
    """Fetch URLs with exactly one outcome per request.

    \b
    Load test:  surge fetch -n 100000 -c 100 http://127.0.0.1:8080/
    For 30 s:   surge fetch -z 30s -c 50 http://127.0.0.1:8080/
    A list:     surge fetch -i urls.txt -o out.jsonl --state run1/
    """
    from surge.aio import Backoff  # noqa: PLC0415 - imports on use keep `surge --help` fast
    from surge.engine.engine import RetryRules  # noqa: PLC0415
    from surge.engine.fetcher import Fetcher  # noqa: PLC0415
    from surge.engine.input import ArgsSource, FileSource, InputSource, RequestDefaults  # noqa: PLC0415

    # -- check every flag before any request ------------------------------------------------------------
    if not urls and input_path is None:
        raise ConfigError("give URLs as arguments or -i FILE (- for stdin)")
    if urls and input_path is not None:
        raise ConfigError("give URLs as arguments or -i FILE, not both")
    if count is not None and count < 1:
        raise ConfigError(f"-n must be at least 1, got {count}")
    if count is not None and input_path is not None:
        raise ConfigError("-n repeats URL arguments; with -i every line is one request")
    dur = parse_duration(duration, "-z") if duration is not None else None
    load_mode = count is not None or dur is not None
    conc: int | str
    if concurrency is None:
        conc = 50 if load_mode else "auto"
    elif concurrency.strip().lower() == "auto":
        conc = "auto"
    else:
        try:
            conc = int(concurrency)
        except ValueError:
            raise ConfigError(f"-c: expected a number or auto, got {concurrency!r}") from None
        if conc < 1:
            raise ConfigError(f"-c must be at least 1, got {conc}")
    if max_concurrency < 1:
        raise ConfigError("--max-concurrency must be at least 1")
    if per_host is not None and per_host < 1:
        raise ConfigError(f"--per-host must be at least 1, got {per_host}")
    if per_host is None and not load_mode:
        per_host = 16
    _positive(rate, "-q")
    _positive(host_rate, "--host-rate")
    if retries < 0:
        raise ConfigError("--retries must be >= 0")
    if max_redirects < 0:
        raise ConfigError("--max-redirects must be >= 0")
    body = _data(data)
    hdrs = _headers(headers)
    meth = (method or ("POST" if body is not None else "GET")).upper()
    if not meth.isalpha():
        raise ConfigError(f"-m: invalid method {method!r}")
    rules = RetryRules.parse(retry_on)
    total_timeout = parse_duration(timeout, "-t") if timeout is not None else None
    ctimeout = parse_duration(connect_timeout, "--connect-timeout")
    rtimeout = parse_duration(read_timeout, "--read-timeout")
    drain = parse_duration(drain_timeout, "--drain-timeout")
    body_cap = parse_size(max_body)
    if output == "-" and as_json:
        raise ConfigError("-o - and --json both write to stdout; pick one")
    if output is not None and output != "-":
        _writable(output, "-o")
        from surge.sinks import open_sink  # noqa: PLC0415

        open_sink(output)  # an unknown extension is an error now, not after the run
    if report is not None:
        _writable(report, "--report")
    if state is not None and os.path.exists(state) and not os.path.isdir(state):
        raise ConfigError(f"--state {state}: not a directory")

    defaults = RequestDefaults(meth, hdrs, body)
    source: InputSource
    if input_path is not None:
        source = FileSource(input_path, defaults)
    else:
        source = ArgsSource(list(urls), defaults, count=count, forever=dur is not None and count is None)

    # What makes a state dir "the same run": the input and what is requested, not tuning flags.
    identity = {
        "urls": list(urls),
        "input": os.path.abspath(input_path) if input_path not in (None, "-") else input_path,
        "n": count, "method": meth, "headers": hdrs,
        "data": hashlib.sha256(body).hexdigest() if body else None,
        "output": os.path.abspath(output) if output not in (None, "-") else output,
        "save_body": save_body, "save_headers": save_headers,
    }
    fingerprint = hashlib.sha256(orjson.dumps(identity)).hexdigest()
    command = _command_line()

    fetcher = Fetcher(
        concurrency="auto" if conc == "auto" else int(conc), max_concurrency=max_concurrency,
        per_host=per_host, rate=rate, host_rate=host_rate, method=meth, headers=hdrs, body=body,
        timeout=total_timeout, connect_timeout=ctimeout, read_timeout=rtimeout, retries=retries,
        retry_on=rules, backoff=Backoff(0.2, 10.0), max_redirects=max_redirects, max_body=body_cap,
        save_body=save_body, save_headers=save_headers, verify=not insecure, output=output, state=state,
        fingerprint=fingerprint, describe=command, duration=dur,
    )
    from surge.aio.loops import run  # noqa: PLC0415

    code = run(_main(fetcher, source, as_json=as_json, report=report, progress=not no_progress,
                     drain=drain, command=command, state=state), loop=loop_kind)
    sys.stdout.flush()
    sys.exit(code)


def _tune_gc() -> None:
    """Make the garbage collector cheap for the run: the process is ours and lives for one run.

    Every request allocates a few short-lived objects (response, outcome, futures); at the default gen0
    threshold of 700 a young collection ran every ~100 requests, 5-7% of the time of a load test. Objects
    that exist now (modules, the client, the sink) are frozen out of every later collection, and the young
    generation may grow to 20,000 objects first: only reference cycles wait longer to be freed.
    """
    import gc  # noqa: PLC0415

    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, 20_000), gen1, gen2)


async def _main(fetcher: Any, source: Any, *, as_json: bool, report: str | None, progress: bool,
                drain: float, command: str, state: str | None) -> int:
    from surge.aio import Shutdown, loop_name  # noqa: PLC0415
    from surge.report.stats import Stats  # noqa: PLC0415
    from surge.report.terminal import LiveProgress  # noqa: PLC0415

    _tune_gc()  # before the stats clock starts: the collection is start-up work, not the run's
    stats = Stats(total=source.total)
    fetcher.stats = stats
    error: SurgeError | None = None
    async with Shutdown(drain_timeout=drain) as sd, LiveProgress(stats, enabled=progress):
        try:
            await fetcher.run(source, stop=sd.stopping)
        except SurgeError as exc:
            error = exc  # work done so far is committed; report it, then the one-line error
    stats.finish()
    result = fetcher.last_result
    snapshot = stats.snapshot()
    if as_json:
        from surge.report.summary import to_json  # noqa: PLC0415

        extra: dict[str, Any] = {"loop": loop_name(), "command": command}
        if result is not None:
            extra.update(complete=result.complete, interrupted=sd.requested, resumed=result.resumed,
                         done_before=result.done_before)
        sys.stdout.write(orjson.dumps(to_json(snapshot, **extra)).decode() + "\n")
    elif snapshot.requests:
        from surge.report.terminal import print_summary  # noqa: PLC0415

        print_summary(snapshot, title="surge fetch")
    if report is not None:
        from surge.report.html import fetch_report  # noqa: PLC0415

        fetch_report(report, snapshot, command=command)
    if result is not None and result.resumed and not as_json:
        # The summary counts this run only: say what the state dir already held.
        if not snapshot.requests and result.complete:
            click.echo(f"surge: nothing to do: all {result.done_before} requests already have their outcome "
                       f"(--state {state})", err=True)
        else:
            n = result.reexported
            late = f", {n} of them written to the output only now" if n else ""
            click.echo(f"surge: resumed --state {state}: {result.done_before} requests were done before"
                       f"{late}; the summary counts this run", err=True)
    invalid = getattr(source, "invalid", 0)
    if invalid:
        lines = "line was" if invalid == 1 else "lines were"
        click.echo(f"surge: {invalid} input {lines} not a request, each recorded with error invalid_input "
                   f"(the first: {source.first_invalid})", err=True)
    if error is not None:
        click.echo(f"surge: error: {error}", err=True)
        return 2
    if sd.requested:
        signum = sd.received_signal
        left = ""
        if result is not None and state is not None:
            left = f"; {result.remaining} left" if result.remaining else ""
        done = result.done if result is not None else 0
        if state is not None:
            click.echo(f"surge: interrupted after {done} requests{left}. Resume with: {command}", err=True)
        else:
            click.echo(f"surge: interrupted after {done} requests (no --state: a rerun starts over)",
                       err=True)
        return 128 + (signum if signum is not None else signal.SIGINT)
    return 0
