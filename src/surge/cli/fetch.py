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
from dataclasses import dataclass
from typing import Any

import click
import orjson

from surge.cli.main import error_line, note_state_dir
from surge.errors import ConfigError, SurgeError

__all__ = ["RunSettings", "command_line", "fetch", "parse_duration", "parse_size", "run_command",
           "run_options", "run_settings"]

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


def command_line() -> str:
    """The surge command as typed (for resume messages and state fingerprints' descriptions)."""
    return shlex.join(["surge", *sys.argv[1:]])


# Options of every command that runs the engine (surge fetch, surge crawl), in --help order after each
# command's own.
_RUN_OPTIONS = (
    click.option("-c", "--concurrency", default=None, metavar="N|auto",
                 help="Requests in flight: a number, or auto (adaptive; default for lists and crawls; -n/-z "
                      "default 50)."),
    click.option("--max-concurrency", type=int, default=512, show_default=True,
                 help="Ceiling for -c auto."),
    click.option("--per-host", type=int, default=None, help="Connections per host (lists default 16)."),
    click.option("-q", "--rate", type=float, default=None, help="Requests per second, overall."),
    click.option("--host-rate", type=float, default=None, help="Requests per second, per host."),
    click.option("-H", "--header", "headers", multiple=True, metavar="'K: V'",
                 help="A header; repeatable."),
    click.option("-t", "--timeout", default=None, metavar="DURATION", help="Total time per request."),
    click.option("--connect-timeout", default="10s", show_default=True, metavar="DURATION"),
    click.option("--read-timeout", default="30s", show_default=True, metavar="DURATION",
                 help="Longest silence while waiting for response bytes."),
    click.option("--retries", type=int, default=2, show_default=True,
                 help="Extra tries for retryable results."),
    click.option("--retry-on", default="default", show_default=True,
                 help="Comma list of statuses (503, 5xx) and error classes (connect, timeout, "
                      "timeout_read...); default = 429,500,502,503,504,connect,timeout; none = never."),
    click.option("--max-redirects", type=int, default=10, show_default=True),
    click.option("--max-retry-after", default="60s", show_default=True, metavar="DURATION",
                 help="Longest pause a server's Retry-After (or robots.txt Crawl-delay) may impose; a "
                      "server asking for longer is not retried."),
    click.option("--max-body", default=None, metavar="SIZE",
                 help="Cap on a response body (default 64MB; crawls 10MB)."),
    click.option("--save-body", is_flag=True,
                 help="Store bodies in the output (text, or base64 when binary)."),
    click.option("--save-headers", is_flag=True, help="Store response headers in the output."),
    click.option("--insecure", is_flag=True, help="Do not verify TLS certificates."),
    click.option("--allow-private", is_flag=True,
                 help="Follow redirects (and crawl links) from public addresses to private ones (loopback, "
                      "10/8, 169.254/16...); refused by default, error blocked."),
    click.option("--loop", "loop_kind", default="auto", show_default=True,
                 type=click.Choice(["auto", "asyncio", "uvloop", "rloop"])),
    click.option("-o", "--output", default=None, metavar="FILE|-",
                 help="One record per request: .jsonl, .csv or .sqlite by extension; - = JSON lines on "
                      "stdout."),
    click.option("--state", default=None, metavar="DIR",
                 help="Make the run durable: Ctrl-C or a crash, then the same command again, resumes."),
    click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object on stdout."),
    click.option("--report", default=None, metavar="FILE.html",
                 help="Write an HTML report (works offline)."),
    click.option("--no-progress", is_flag=True, help="No live progress line."),
    click.option("--drain-timeout", default="30s", show_default=True, metavar="DURATION",
                 help="After Ctrl-C, how long requests in flight may take to finish."),
)


def run_options(command: Any) -> Any:
    """Adds the options every engine-running command shares."""
    for option in reversed(_RUN_OPTIONS):
        command = option(command)
    return command


@dataclass
class RunSettings:
    """The shared options, checked and parsed."""

    concurrency: int | str
    max_concurrency: int
    per_host: int | None
    rate: float | None
    host_rate: float | None
    headers: list[tuple[str, str]]
    timeout: float | None
    connect_timeout: float
    read_timeout: float
    retries: int
    retry_rules: Any
    max_redirects: int
    max_retry_after: float
    max_body: int
    save_body: bool
    save_headers: bool
    insecure: bool
    loop_kind: str
    output: str | None
    state: str | None
    as_json: bool
    report: str | None
    progress: bool
    drain: float
    allow_private: bool = False

    def identity(self) -> dict[str, Any]:
        """What of these options makes a state dir "the same run" (see :func:`fingerprint`)."""
        output = self.output
        return {"output": os.path.abspath(output) if output not in (None, "-") else output,
                "save_body": self.save_body, "save_headers": self.save_headers}

    def fetcher_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~surge.engine.fetcher.Fetcher` (the crawler passes them on)."""
        from surge.aio import Backoff  # noqa: PLC0415 - imports on use keep `surge --help` fast

        conc = self.concurrency
        return dict(
            concurrency="auto" if conc == "auto" else int(conc), max_concurrency=self.max_concurrency,
            per_host=self.per_host, rate=self.rate, host_rate=self.host_rate, headers=self.headers,
            timeout=self.timeout, connect_timeout=self.connect_timeout, read_timeout=self.read_timeout,
            retries=self.retries, retry_on=self.retry_rules, backoff=Backoff(0.2, 10.0),
            max_redirects=self.max_redirects, max_retry_after=self.max_retry_after, max_body=self.max_body,
            save_body=self.save_body, save_headers=self.save_headers, verify=not self.insecure,
            allow_private=self.allow_private,
            output=self.output, state=self.state,
        )


def run_settings(kw: dict[str, Any], *, concurrency: int | str, per_host: int | None,
                 max_body: str = "64MB") -> RunSettings:
    """Check and parse the shared options (``kw``: click's values); ``concurrency``/``per_host``/``max_body``
    are the command's defaults. Every error is a ConfigError naming the flag, raised before any request."""
    from surge.engine.engine import RetryRules  # noqa: PLC0415

    raw = kw["concurrency"]
    conc: int | str
    if raw is None:
        conc = concurrency
    elif raw.strip().lower() == "auto":
        conc = "auto"
    else:
        try:
            conc = int(raw)
        except ValueError:
            raise ConfigError(f"-c: expected a number or auto, got {raw!r}") from None
        if conc < 1:
            raise ConfigError(f"-c must be at least 1, got {conc}")
    if kw["max_concurrency"] < 1:
        raise ConfigError("--max-concurrency must be at least 1")
    hosts = kw["per_host"]
    if hosts is not None and hosts < 1:
        raise ConfigError(f"--per-host must be at least 1, got {hosts}")
    _positive(kw["rate"], "-q")
    _positive(kw["host_rate"], "--host-rate")
    if kw["retries"] < 0:
        raise ConfigError("--retries must be >= 0")
    if kw["max_redirects"] < 0:
        raise ConfigError("--max-redirects must be >= 0")
    output, report, state, as_json = kw["output"], kw["report"], kw["state"], kw["as_json"]
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
    note_state_dir(state)  # where a bug's traceback goes
    timeout = kw["timeout"]
    return RunSettings(
        concurrency=conc, max_concurrency=kw["max_concurrency"],
        per_host=hosts if hosts is not None else per_host,
        rate=kw["rate"], host_rate=kw["host_rate"], headers=_headers(kw["headers"]),
        timeout=parse_duration(timeout, "-t") if timeout is not None else None,
        connect_timeout=parse_duration(kw["connect_timeout"], "--connect-timeout"),
        read_timeout=parse_duration(kw["read_timeout"], "--read-timeout"), retries=kw["retries"],
        retry_rules=RetryRules.parse(kw["retry_on"]), max_redirects=kw["max_redirects"],
        max_retry_after=parse_duration(kw["max_retry_after"], "--max-retry-after"),
        max_body=parse_size(kw["max_body"] if kw["max_body"] is not None else max_body),
        save_body=kw["save_body"], save_headers=kw["save_headers"], insecure=kw["insecure"],
        loop_kind=kw["loop_kind"], output=output, state=state, as_json=as_json, report=report,
        progress=not kw["no_progress"], drain=parse_duration(kw["drain_timeout"], "--drain-timeout"),
        allow_private=kw["allow_private"],
    )


def fingerprint(identity: dict[str, Any]) -> str:
    """What makes a state dir "the same run": the input and what is requested, not tuning flags."""
    return hashlib.sha256(orjson.dumps(identity)).hexdigest()


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.argument("urls", nargs=-1)
@click.option("-i", "--input", "input_path", metavar="FILE|-",
              help="Read URLs (one a line, or JSON lines with url/method/headers/body) from FILE or stdin.")
@click.option("-n", "--requests", "count", type=int, help="Total requests: the URL(s) repeated (load test).")
@click.option("-z", "--duration", metavar="DURATION", help="Send requests this long (10s, 1m).")
@click.option("-m", "--method", default=None, help="HTTP method (default GET, or POST with -d).")
@click.option("-d", "--data", default=None, metavar="DATA|@FILE", help="Request body.")
@run_options
def fetch(urls: tuple[str, ...], input_path: str | None, count: int | None, duration: str | None,  # noqa: PLR0917 - click passes options as arguments
          method: str | None, data: str | None, **kw: Any) -> None:
    """Fetch URLs with exactly one outcome per request.

    \b
    Load test:  surge fetch -n 100000 -c 100 http://127.0.0.1:8080/
    For 30 s:   surge fetch -z 30s -c 50 http://127.0.0.1:8080/
    A list:     surge fetch -i urls.txt -o out.jsonl --state run1/
    """
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
    rs = run_settings(kw, concurrency=50 if load_mode else "auto", per_host=None if load_mode else 16)
    body = _data(data)
    meth = (method or ("POST" if body is not None else "GET")).upper()
    if not meth.isalpha():
        raise ConfigError(f"-m: invalid method {method!r}")

    defaults = RequestDefaults(meth, rs.headers, body)
    source: InputSource
    if input_path is not None:
        source = FileSource(input_path, defaults)
    else:
        source = ArgsSource(list(urls), defaults, count=count, forever=dur is not None and count is None)

    identity = {
        "urls": list(urls),
        "input": os.path.abspath(input_path) if input_path not in (None, "-") else input_path,
        "n": count, "method": meth, "headers": rs.headers,
        "data": hashlib.sha256(body).hexdigest() if body else None,
        **rs.identity(),
    }
    command = command_line()
    options = rs.fetcher_options()
    options.update(method=meth, body=body)
    fetcher = Fetcher(**options, fingerprint=fingerprint(identity), describe=command, duration=dur)
    sys.exit(run_command(fetcher, source, rs, command=command, total=source.total))


def run_command(fetcher: Any, source: Any, rs: RunSettings, *, command: str, total: int | None,
                title: str = "surge fetch", extra: Any = None) -> int:
    """Runs ``fetcher`` over ``source`` on the chosen loop with progress, summary and report; the exit code.

    ``extra()``, if given, returns more (label, value) lines for the summary and keys for ``--json``.
    """
    from surge.aio.loops import run  # noqa: PLC0415

    code = run(_main(fetcher, source, as_json=rs.as_json, report=rs.report, progress=rs.progress,
                     drain=rs.drain, command=command, state=rs.state, total=total, title=title, extra=extra),
               loop=rs.loop_kind)
    sys.stdout.flush()
    return code


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
                drain: float, command: str, state: str | None, total: int | None, title: str,
                extra: Any) -> int:
    from surge.aio import Shutdown, loop_name  # noqa: PLC0415
    from surge.report.stats import Stats  # noqa: PLC0415
    from surge.report.terminal import LiveProgress  # noqa: PLC0415

    _tune_gc()  # before the stats clock starts: the collection is start-up work, not the run's
    stats = Stats(total=total)
    fetcher.stats = stats
    error: SurgeError | None = None
    note = fetcher.fit_open_files()
    if note is not None:
        click.echo(f"surge: {note}", err=True)
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

        keys: dict[str, Any] = {"loop": loop_name(), "command": command}
        if result is not None:
            keys.update(complete=result.complete, interrupted=sd.requested, resumed=result.resumed,
                        done_before=result.done_before)
        if extra is not None:
            keys.update(extra()[1])
        sys.stdout.write(orjson.dumps(to_json(snapshot, **keys)).decode() + "\n")
    elif snapshot.requests:
        from surge.report.terminal import print_summary  # noqa: PLC0415

        print_summary(snapshot, title=title, rows=extra()[0] if extra is not None else ())
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
        line, code = error_line(error, state)
        click.echo(line, err=True)
        return code
    if sd.requested:
        signum = sd.received_signal
        left = ""
        if result is not None and state is not None:
            left = f"; {result.remaining} left" if result.remaining else ""
        done = result.done if result is not None else 0
        # Forced: a second signal or the drain deadline cut the requests in flight off.
        cut = " (stopped at once: requests in flight were cut off)" if sd.forced else ""
        if state is not None:
            click.echo(f"surge: interrupted after {done} requests{cut}{left}. Resume with: {command}",
                       err=True)
        else:
            click.echo(f"surge: interrupted after {done} requests{cut} (no --state: a rerun starts over)",
                       err=True)
        return 128 + (signum if signum is not None else signal.SIGINT)
    return 0
