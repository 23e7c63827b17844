"""Terminal output of a run: the live progress line (stderr, terminals only) and the final summary.

Both render a ``StatsSnapshot``; the request hot path never touches rich.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from surge.report.stats import Stats, StatsSnapshot

__all__ = [
    "LiveProgress",
    "format_bytes",
    "format_duration",
    "print_summary",
    "render_progress",
    "render_summary",
    "sparkline",
]

_SPARK = "▁▂▃▄▅▆▇█"


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: binary units, one decimal above bytes."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024.0 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """``75.3`` -> ``"1m15s"``; under a minute, seconds with one decimal."""
    if seconds < 60.0:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def sparkline(values: Sequence[float], width: int = 40, *, floor: float | None = 0.0) -> str:
    """Values as a row of block characters, resampled to at most ``width`` columns.

    The lowest block stands for ``floor`` (default 0, so a steady rate does not look like a cliff);
    ``floor=None`` scales from the smallest value instead.
    """
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[min(int(i * step), len(values) - 1)] for i in range(width)]
    low, high = min(values), max(values)
    if floor is not None:
        low = min(low, floor)
    span = high - low
    if span <= 0:
        return _SPARK[len(_SPARK) // 2] * len(values)
    return "".join(_SPARK[min(int((v - low) / span * len(_SPARK)), len(_SPARK) - 1)] for v in values)


def render_progress(snapshot: StatsSnapshot) -> RenderableType:
    """One progress line: done/total, req/s, p50/p99, errors, in flight, concurrency, ETA."""
    s = snapshot
    line = Text()
    if s.total:
        fraction = min(s.requests / s.total, 1.0)
        filled = int(fraction * 20)
        line.append("━" * filled, style="green")
        line.append("━" * (20 - filled), style="grey37")
        line.append(f" {s.requests:,}/{s.total:,} ({fraction:.0%})", style="bold")
    else:
        line.append(f"{s.requests:,} done", style="bold")
    line.append(f"  {s.rps:,.0f} req/s", style="cyan")
    line.append(f"  p50 {s.latency.p50:.1f} ms  p99 {s.latency.p99:.1f} ms")
    line.append(f"  errors {s.failed:,}", style="red" if s.failed else "")
    line.append(f"  in flight {s.in_flight:,}")
    if s.concurrency.trajectory:
        line.append(f"  c={s.concurrency.final}")
    eta = s.eta_s
    line.append(f"  ETA {format_duration(eta)}" if eta is not None else "  ETA -", style="dim")
    return line


class LiveProgress:
    """Redraws the progress line from ``stats.snapshot()`` a few times a second, on a terminal only.

    On anything that is not a terminal (a file, a pipe, ``--no-progress``) it does nothing::

        async with LiveProgress(stats):
            await engine.run()
    """

    def __init__(
        self,
        stats: Stats,
        *,
        console: Console | None = None,
        refresh_per_second: float = 4.0,
        enabled: bool = True,
    ) -> None:
        self._stats = stats
        self._console = console if console is not None else Console(stderr=True)
        self._interval = 1.0 / refresh_per_second
        self.enabled = enabled and self._console.is_terminal
        self._live: Live | None = None
        self._task: asyncio.Task[None] | None = None

    def refresh(self) -> None:
        """Redraw now from a fresh snapshot (without the per-second series, which is not shown)."""
        if self._live is not None:
            self._live.update(render_progress(self._stats.snapshot(series=False)), refresh=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.refresh()

    async def __aenter__(self) -> LiveProgress:
        if self.enabled:
            self._live = Live(
                render_progress(self._stats.snapshot(series=False)),
                console=self._console,
                auto_refresh=False,  # our task refreshes, so rich starts no thread
                transient=True,
            )
            self._live.start()
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._live is not None:
            self._live.stop()
            self._live = None


def _kv_table(title: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    return table


def _counts_table(title: str, key: str, total: int, rows: list[tuple[Text, int]]) -> Table:
    """A count and a share of all requests per key (status code, error class)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(key)
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for label, n in rows:
        table.add_row(label, f"{n:,}", f"{n / max(total, 1):.1%}")
    return table


def render_summary(snapshot: StatsSnapshot, *, title: str = "surge",
                   rows: Sequence[tuple[str, str]] = ()) -> RenderableType:
    """The final summary as rich tables: throughput, status, errors, latency, bytes, reuse, concurrency.

    ``rows`` are more (label, value) lines for the overview (a crawl's frontier figures).
    """
    s = snapshot
    parts: list[RenderableType] = []

    overview = _kv_table(title)
    overview.add_row("requests", f"{s.requests:,}")
    overview.add_row("ok", f"{s.ok:,}")
    overview.add_row("failed", f"{s.failed:,}")
    overview.add_row("elapsed", format_duration(s.elapsed_s))
    overview.add_row("throughput", f"{s.rps:,.1f} req/s")
    overview.add_row("loop", s.loop)
    overview.add_row("bytes", f"{format_bytes(s.bytes)} ({s.bytes:,})")
    overview.add_row("retries", f"{s.retries:,}")
    conn = s.connections
    if conn.opened or conn.reused:
        reuse = f"{conn.reused:,} reused ({conn.reuse_ratio:.1%})"
        overview.add_row("connections", f"{conn.opened:,} opened, {reuse}, {conn.closed:,} closed")
    conc = s.concurrency
    if conc.trajectory:
        limits = [float(limit) for _, limit in conc.trajectory]
        shape = f"  {sparkline(limits, 24, floor=None)}" if len(limits) > 2 else ""
        overview.add_row("concurrency", f"{conc.min}→{conc.max}, final {conc.final}{shape}")
    if len(s.series.rps) > 2:
        overview.add_row("req/s per second", sparkline(s.series.rps))
    for label, value in rows:
        overview.add_row(label, value)
    parts.append(overview)

    if s.status:
        parts.append(_counts_table("status", "code", s.requests, [
            (Text(str(code), style="green" if code < 400 else "yellow" if code < 500 else "red"), n)
            for code, n in s.status.items()
        ]))
    if s.errors:
        parts.append(_counts_table("errors", "class", s.requests,
                                   [(Text(kind, style="red"), n) for kind, n in s.errors.items()]))

    lat = s.latency
    latency = Table(title="latency (ms)", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("p50", "p90", "p99", "p99.9", "max", "mean"):
        latency.add_column(name, justify="right")
    if lat.count:
        latency.add_row(*(f"{v:.2f}" for v in (lat.p50, lat.p90, lat.p99, lat.p999, lat.max, lat.mean)))
    else:
        latency.add_row(*("-" for _ in range(6)))
    parts.append(latency)

    return Group(*parts)


def print_summary(snapshot: StatsSnapshot, *, console: Console | None = None, title: str = "surge",
                  rows: Sequence[tuple[str, str]] = ()) -> None:
    """Print the final summary (to stderr by default); plain text when the stream is not a terminal."""
    out = console if console is not None else Console(stderr=True)
    out.print(render_summary(snapshot, title=title, rows=rows))
