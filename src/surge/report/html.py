"""Self-contained HTML reports: composable sections (tables, charts, notes) written to one offline file.

Charts use plotly with its JS inlined once; every section's data is also embedded as JSON
(``<script type="application/json" id="surge-data">``). Without plotly, charts become tables.
"""

from __future__ import annotations

import datetime as _dt
import html as _html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from surge.report.stats import StatsSnapshot
from surge.report.summary import to_json
from surge.report.terminal import format_bytes, format_duration

__all__ = [
    "BarChart",
    "Claim",
    "ClaimsTable",
    "LineChart",
    "Paragraph",
    "PercentileChart",
    "Section",
    "Table",
    "fetch_report",
    "fetch_sections",
    "read_report_data",
    "render_report",
    "write_report",
]

Cell = str | int | float | None


@dataclass(frozen=True)
class Paragraph:
    """A block of prose (plain text; blank lines separate paragraphs)."""

    text: str
    title: str | None = None


@dataclass(frozen=True)
class Table:
    """A table: ``columns`` names, then one sequence of cells per row."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    note: str | None = None


@dataclass(frozen=True)
class BarChart:
    """Grouped bars: one bar group per category, one bar per series (e.g. req/s per client and loop)."""

    title: str
    categories: Sequence[str]
    series: Mapping[str, Sequence[float | None]]
    y_label: str = "req/s"
    note: str | None = None


@dataclass(frozen=True)
class LineChart:
    """Lines over a shared x axis: ``lines`` maps a name to ``(xs, ys)``; None in ys leaves a gap."""

    title: str
    lines: Mapping[str, tuple[Sequence[float], Sequence[float | None]]]
    x_label: str = "seconds"
    y_label: str = "req/s"
    step: bool = False  # draw as a staircase (a limit that holds until it changes)
    note: str | None = None


@dataclass(frozen=True)
class PercentileChart:
    """Latency distributions: ``curves`` maps a name to ``(percentile, ms)`` points (tail-stretched axis)."""

    title: str
    curves: Mapping[str, Sequence[tuple[float, float]]]
    y_label: str = "latency (ms)"
    note: str | None = None


@dataclass(frozen=True)
class Claim:
    """One claimed figure set beside the measured one (numbers or already formatted text)."""

    what: str
    claimed: Cell
    measured: Cell
    note: str = ""


@dataclass(frozen=True)
class ClaimsTable:
    """A "claimed vs measured" table; a claim is always labelled as the source's, never as ours."""

    title: str
    rows: Sequence[Claim]
    claimed_label: str = "claimed"
    measured_label: str = "measured here"
    note: str | None = None


Section = Paragraph | Table | BarChart | LineChart | PercentileChart | ClaimsTable


# -- data block ----------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _section_data(section: Section) -> dict[str, Any]:
    """The JSON form of a section: what tests and users read back from the page."""
    if isinstance(section, Paragraph):
        return {"kind": "paragraph", "title": section.title, "text": section.text}
    if isinstance(section, Table):
        return {
            "kind": "table",
            "title": section.title,
            "columns": list(section.columns),
            "rows": [[_clean(c) for c in row] for row in section.rows],
            "note": section.note,
        }
    if isinstance(section, BarChart):
        return {
            "kind": "bar",
            "title": section.title,
            "categories": list(section.categories),
            "series": {k: [_clean(v) for v in vs] for k, vs in section.series.items()},
            "y_label": section.y_label,
            "note": section.note,
        }
    if isinstance(section, LineChart):
        return {
            "kind": "line",
            "title": section.title,
            "lines": {
                k: {"x": [_clean(x) for x in xs], "y": [_clean(y) for y in ys]}
                for k, (xs, ys) in section.lines.items()
            },
            "x_label": section.x_label,
            "y_label": section.y_label,
            "note": section.note,
        }
    if isinstance(section, PercentileChart):
        return {
            "kind": "percentiles",
            "title": section.title,
            "curves": {k: [[p, _clean(v)] for p, v in pts] for k, pts in section.curves.items()},
            "y_label": section.y_label,
            "note": section.note,
        }
    return {
        "kind": "claims",
        "title": section.title,
        "columns": ["what", section.claimed_label, section.measured_label, "note"],
        "rows": [[c.what, _clean(c.claimed), _clean(c.measured), c.note] for c in section.rows],
        "note": section.note,
    }


def _json_for_script(data: Any) -> str:
    # "</" would end the <script> element early; "<\/" is the same string to a JSON parser.
    raw = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()
    return raw.replace("</", "<\\/")


# -- HTML ----------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;
  color:#1d2430;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px}
.meta{color:#5b6472;font-size:13px} .note{color:#5b6472;font-size:13px;margin:6px 0}
section{background:#fff;border:1px solid #e2e5ea;border-radius:8px;padding:12px 16px;margin:16px 0}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:4px 12px;border-bottom:1px solid #eceef2;text-align:right}
th:first-child,td:first-child{text-align:left} th{font-weight:600;background:#fafbfc}
.fallback{background:#fff7e0;border:1px solid #f0d890;padding:8px 12px;border-radius:6px}
"""


def _fmt(cell: Cell) -> str:
    if cell is None:
        return "–"
    if isinstance(cell, float):
        if not math.isfinite(cell):
            return "–"
        return f"{cell:,.2f}" if abs(cell) < 1000 else f"{cell:,.0f}"
    if isinstance(cell, int):
        return f"{cell:,}"
    return cell


def _table_html(columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    head = "".join(f"<th>{_html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _chart_as_table(section: BarChart | LineChart | PercentileChart) -> str:
    """The data of a chart as a plain table (the report without plotly)."""
    if isinstance(section, BarChart):
        names = list(section.series)
        rows = [
            [cat, *(vals[i] if i < len(vals) else None for vals in section.series.values())]
            for i, cat in enumerate(section.categories)
        ]
        return _table_html(["", *names], rows)
    if isinstance(section, LineChart):
        parts = []
        for name, (xs, ys) in section.lines.items():
            parts.append(f"<p class='note'>{_html.escape(name)}</p>")
            parts.append(_table_html([section.x_label, section.y_label], list(zip(xs, ys, strict=False))))
        return "".join(parts)
    names = list(section.curves)
    percentiles = sorted({p for pts in section.curves.values() for p, _ in pts})
    lookup = [dict(pts) for pts in section.curves.values()]
    rows = [[f"p{p:g}", *(d.get(p) for d in lookup)] for p in percentiles]
    return _table_html(["percentile", *names], rows)


# Percentile axis: x = 1 / (1 - p), log scale, so p99, p99.9 and p99.99 get equal room.
_TAIL_CAP = 99.999
_TICKS = ((0.0, "p0"), (50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p99.9"), (99.99, "p99.99"))


def _tail_x(percentile: float) -> float:
    return 1.0 / (1.0 - min(percentile, _TAIL_CAP) / 100.0)


class _Plotly:
    """Builds plotly figures as HTML fragments (the JS itself is inlined once, in the page head)."""

    def __init__(self) -> None:
        import plotly.graph_objects as go  # noqa: PLC0415 - optional dependency (the report extra)
        from plotly.offline import get_plotlyjs  # noqa: PLC0415

        self.go = go
        self.js: str = get_plotlyjs()
        self._count = 0

    def _layout(self, title: str, x_label: str, y_label: str) -> dict[str, Any]:
        return {
            "title": {"text": title},
            "template": "plotly_white",
            "xaxis": {"title": {"text": x_label}},
            "yaxis": {"title": {"text": y_label}, "rangemode": "tozero"},
            "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
            "legend": {"orientation": "h", "y": -0.2},
            "height": 380,
        }

    def figure(self, section: BarChart | LineChart | PercentileChart) -> str:
        go = self.go
        fig = go.Figure()
        if isinstance(section, BarChart):
            for name, values in section.series.items():
                fig.add_trace(go.Bar(name=name, x=list(section.categories), y=list(values)))
            layout = self._layout(section.title, "", section.y_label)
            layout["barmode"] = "group"
        elif isinstance(section, LineChart):
            for name, (xs, ys) in section.lines.items():
                line = {"shape": "hv"} if section.step else {}
                fig.add_trace(go.Scatter(name=name, x=list(xs), y=list(ys), mode="lines", line=line))
            layout = self._layout(section.title, section.x_label, section.y_label)
        else:
            for name, points in section.curves.items():
                xs = [_tail_x(p) for p, _ in points]
                labels = [f"p{p:g}" for p, _ in points]
                fig.add_trace(
                    go.Scatter(
                        name=name,
                        x=xs,
                        y=[v for _, v in points],
                        mode="lines+markers",
                        text=labels,
                        hovertemplate="%{text}: %{y:.3f} ms<extra>" + _html.escape(name) + "</extra>",
                    )
                )
            layout = self._layout(section.title, "percentile", section.y_label)
            layout["xaxis"].update(
                type="log",
                tickvals=[_tail_x(p) for p, _ in _TICKS],
                ticktext=[label for _, label in _TICKS],
            )
        fig.update_layout(**layout)
        self._count += 1
        fragment: str = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"surge-chart-{self._count}",
            config={"displaylogo": False, "responsive": True},
        )
        return fragment


def _load_plotly() -> _Plotly | None:
    try:
        return _Plotly()
    except ImportError:
        return None


def _section_html(section: Section, plotly: _Plotly | None) -> str:
    title = getattr(section, "title", None)
    parts = [f"<h2>{_html.escape(title)}</h2>"] if title else []
    if isinstance(section, Paragraph):
        parts += [f"<p>{_html.escape(p.strip())}</p>" for p in section.text.split("\n\n") if p.strip()]
    elif isinstance(section, Table):
        parts.append(_table_html(section.columns, section.rows))
    elif isinstance(section, ClaimsTable):
        data = _section_data(section)
        parts.append(_table_html(data["columns"], data["rows"]))
    elif plotly is not None:
        parts.append(plotly.figure(section))
    else:
        parts.append(_chart_as_table(section))
    note = getattr(section, "note", None)
    if note:
        parts.append(f"<p class='note'>{_html.escape(note)}</p>")
    return "<section>" + "".join(parts) + "</section>"


def render_report(
    *,
    title: str,
    sections: Sequence[Section],
    subtitle: str | None = None,
    meta: Mapping[str, Any] | None = None,
    charts: bool = True,
) -> str:
    """The whole page as a string (``write_report`` writes it); ``charts=False`` never loads plotly."""
    plotly = _load_plotly() if charts else None
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    data = {
        "title": title,
        "generated_at": generated,
        "charts": plotly is not None,
        "meta": dict(meta or {}),
        "sections": [_section_data(s) for s in sections],
    }
    head = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_html.escape(title)}</title><style>{_CSS}</style>",
    ]
    if plotly is not None:
        head.append(f"<script type='text/javascript'>{plotly.js}</script>")
    head.append("</head>")
    body = ["<body><main>", f"<h1>{_html.escape(title)}</h1>"]
    if subtitle:
        body.append(f"<p class='meta'>{_html.escape(subtitle)}</p>")
    body.append(f"<p class='meta'>generated {generated}</p>")
    if plotly is None:
        body.append(
            "<p class='fallback'>Charts are shown as tables: install plotly "
            "(<code>pip install 'surge[report]'</code>) for charts.</p>"
        )
    body += [_section_html(s, plotly) for s in sections]
    body.append(f"<script type='application/json' id='surge-data'>{_json_for_script(data)}</script>")
    body.append("</main></body></html>")
    return "".join(head + body)


def write_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    sections: Sequence[Section],
    subtitle: str | None = None,
    meta: Mapping[str, Any] | None = None,
    charts: bool = True,
) -> None:
    """Write one self-contained HTML page (no network needed to view it) built from ``sections``.

    ``meta`` is stored in the page's JSON data block beside the sections' data::

        write_report("surge-report.html", title="surge demo", sections=[
            BarChart("req/s by client", ["surge", "aiohttp"], {"uvloop": [61000, 9000]}),
            Table("runs", ["client", "req/s"], [["surge", 61000], ["aiohttp", 9000]]),
        ])
    """
    page = render_report(title=title, sections=sections, subtitle=subtitle, meta=meta, charts=charts)
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)  # a reader never sees half a report


def read_report_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON data block of a report written by ``write_report`` (for tests and tools)."""
    with open(path, encoding="utf-8") as f:
        page = f.read()
    marker = "<script type='application/json' id='surge-data'>"
    start = page.index(marker) + len(marker)
    end = page.index("</script>", start)
    data: dict[str, Any] = orjson.loads(page[start:end])
    return data


def fetch_sections(snapshot: StatsSnapshot, *, command: str | None = None) -> list[Section]:
    """The sections of a ``surge fetch`` report (reusable inside a larger page)."""
    s = snapshot
    conn = s.connections
    conc = s.concurrency
    rows: list[list[Cell]] = [
        ["requests", s.requests],
        ["ok", s.ok],
        ["failed", s.failed],
        ["elapsed", format_duration(s.elapsed_s)],
        ["throughput (req/s)", round(s.rps, 1)],
        ["event loop", s.loop],
        ["bytes", f"{format_bytes(s.bytes)} ({s.bytes:,})"],
        ["retries", s.retries],
        ["connections", f"{conn.opened:,} opened, {conn.reused:,} reused ({conn.reuse_ratio:.1%})"],
    ]
    if conc.trajectory:
        rows.append(["concurrency", f"{conc.min}→{conc.max}, final {conc.final}"])
    lat = s.latency
    sections: list[Section] = []
    if command:
        sections.append(Paragraph(command, title="command"))
    sections += [
        Table("summary", ["", "value"], rows),
        Table(
            "latency (ms)",
            ["p50", "p90", "p99", "p99.9", "max", "mean"],
            [[lat.p50, lat.p90, lat.p99, lat.p999, lat.max, lat.mean]],
            note=f"{lat.count:,} responses; HDR histogram, 3 significant digits",
        ),
        LineChart(
            "throughput over time",
            {
                "req/s": (s.series.t, s.series.rps),
                "failed/s": (s.series.t, [float(e) for e in s.series.errors]),
            },
        ),
        LineChart(
            "latency over time",
            {"p50": (s.series.t, s.series.p50_ms), "p99": (s.series.t, s.series.p99_ms)},
            y_label="ms",
        ),
    ]
    if s.latency_curve:
        sections.append(PercentileChart("latency distribution", {"all responses": s.latency_curve}))
    status_names = [str(code) for code in s.status]
    sections.append(
        BarChart("responses by status", status_names, {"count": list(s.status.values())}, y_label="count")
    )
    if s.errors:
        sections.append(
            BarChart("failures by error class", list(s.errors), {"count": list(s.errors.values())}, "count")
        )
    if conc.trajectory:
        sections.append(
            LineChart(
                "concurrency limit",
                {"limit": ([t for t, _ in conc.trajectory], [float(n) for _, n in conc.trajectory])},
                y_label="limit",
                step=True,
            )
        )
    return sections


def fetch_report(
    path: str | os.PathLike[str],
    snapshot: StatsSnapshot,
    *,
    command: str,
    title: str = "surge fetch report",
    extra_sections: Sequence[Section] = (),
    charts: bool = True,
) -> None:
    """Write the ``surge fetch --report`` page: summary, throughput and latency over time, status/errors.

    The JSON data block's ``meta.summary`` is the same object ``surge fetch --json`` prints::

        fetch_report("run.html", stats.snapshot(), command="surge fetch -n 1000 http://127.0.0.1:8080/")
    """
    write_report(
        path,
        title=title,
        subtitle=command,
        sections=[*fetch_sections(snapshot, command=command), *extra_sections],
        meta={"summary": to_json(snapshot, command=command)},
        charts=charts,
    )
