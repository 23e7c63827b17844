"""`surge demo`: the playbook's three experiments in short form on the embedded server, in under 3 minutes
on a 2-core machine; prints the tables and writes surge-report.html (self-contained, viewable offline).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from surge.bench.targets import HarnessError

__all__ = ["demo"]


@click.command()
@click.option("--report", "report", default="surge-report.html", show_default=True,
              type=click.Path(dir_okay=False), help="Where to write the HTML report.")
@click.option("--quick", is_flag=True, help="Tiny sizes: finishes in seconds (for a first look and tests).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print every result as one JSON document.")
def demo(*, report: str, quick: bool, quiet: bool, as_json: bool) -> None:
    """Run the playbook's §6, §5 and §7 experiments here and write an HTML report beside its claims."""
    from surge.bench.demo import DemoConfig, claims, run_demo  # noqa: PLC0415 - keep `surge --help` fast
    from surge.bench.http import markdown_runs  # noqa: PLC0415

    parent = Path(report).resolve().parent
    if not parent.is_dir():
        raise click.BadParameter(f"directory {parent} does not exist", param_hint="--report")

    def say(msg: str) -> None:
        if not (quiet or as_json):
            click.echo(f"surge demo: {msg}", err=True)

    try:
        res = run_demo(DemoConfig.quick() if quick else DemoConfig(), report=report, progress=say)
    except HarnessError as exc:
        click.echo(f"surge: error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
        return
    out = [f"# surge demo ({res.elapsed_s:.0f} s)", "",
           "## Event loops (playbook §6)", "", res.loops.markdown(), "",
           "## Crawler steps (playbook §5)", "", res.steps.markdown(), "",
           f"## Many requests (playbook §7): {res.http.requests:,} requests, {res.http.target_kind}", "",
           markdown_runs(res.http.runs), "", *(f"- {n}" for n in res.http.notes),
           *(f"- skipped: {s}" for s in res.http.skipped), "",
           "## The playbook's claims beside this run", "",
           "| what | the playbook claims | measured here | note |", "|---|---:|---:|---|"]
    for c in claims(res):
        claimed, measured = _cell(c.claimed), _cell(c.measured)
        out.append(f"| {c.what} | {claimed} | {measured} | {c.note} |")
    out += ["", f"Report: {res.report}"]
    click.echo("\n".join(out))


def _cell(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and v >= 100:
        return f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, (int, float)) else str(v)
