"""``surge crawl``: crawl from seed URLs with the fetch engine, one outcome per page reached.

A thin layer over :class:`surge.crawl.Crawler`: the flags of ``surge fetch`` that make sense for a crawl, plus
the frontier's (depth, budget, scope, robots).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from surge.cli.fetch import command_line, fingerprint, run_command, run_options, run_settings
from surge.errors import ConfigError

__all__ = ["crawl"]


def _seeds(urls: tuple[str, ...], input_path: str | None) -> list[str]:
    seeds = list(urls)
    if input_path is not None:
        try:
            with (sys.stdin if input_path == "-" else open(input_path, encoding="utf-8")) as f:
                seeds += [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"cannot read {input_path}: {reason}") from None
    if not seeds:
        raise ConfigError("give seed URLs as arguments or -i FILE (- for stdin)")
    return seeds


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.argument("urls", nargs=-1)
@click.option("-i", "--input", "input_path", metavar="FILE|-", help="Read seed URLs (one a line) from FILE.")
@click.option("-d", "--depth", default="3", show_default=True, metavar="N|all",
              help="Links followed from a seed at most (seeds are depth 0).")
@click.option("--max-pages", type=int, default=None, help="URLs admitted in all (seeds included).")
@click.option("--scope", default="host", show_default=True,
              type=click.Choice(["host", "domain", "prefix", "any"]),
              help="host: the seeds' origins; domain: their hosts and subdomains; prefix: below the seeds' "
                   "directories; any: everything.")
@click.option("--include", multiple=True, metavar="REGEX", help="Follow only URLs matching one of these.")
@click.option("--exclude", multiple=True, metavar="REGEX",
              help="Never follow URLs matching this; repeatable.")
@click.option("--no-robots", is_flag=True, help="Do not obey robots.txt.")
@click.option("--sitemap", is_flag=True,
              help="Also seed from each seed origin's /sitemap.xml (its URLs enter at depth 1).")
@run_options
def crawl(urls: tuple[str, ...], input_path: str | None, depth: str, max_pages: int | None,  # noqa: PLR0917 - click passes options as arguments
          scope: str, include: tuple[str, ...], exclude: tuple[str, ...], no_robots: bool, sitemap: bool,
          **kw: Any) -> None:
    """Crawl from seed URLs: one outcome per page reached, with its depth, parent and links.

    \b
    A site:       surge crawl http://127.0.0.1:8080/site/ -d 5 -o pages.jsonl
    Durable:      surge crawl -i seeds.txt --scope domain --max-pages 100000 -o pages.jsonl --state crawl1/
    """
    from surge.crawl import Crawler  # noqa: PLC0415 - imports on use keep `surge --help` fast

    seeds = _seeds(urls, input_path)
    if depth.strip().lower() in ("all", "none", "inf"):
        max_depth: int | None = None
    else:
        try:
            max_depth = int(depth)
        except ValueError:
            raise ConfigError(f"-d: expected a number or all, got {depth!r}") from None
    rs = run_settings(kw, concurrency="auto", per_host=8, max_body="10MB")
    identity = {
        "crawl": seeds, "depth": max_depth, "max_pages": max_pages, "scope": scope, "include": include,
        "exclude": exclude, "robots": not no_robots, "sitemap": sitemap, "headers": rs.headers,
        **rs.identity(),
    }
    command = command_line()
    agent = next((v for k, v in rs.headers if k.lower() == "user-agent"), "surge")
    crawler = Crawler(seeds, depth=max_depth, max_pages=max_pages, scope=scope, include=include,
                      exclude=exclude, robots=not no_robots, sitemap=sitemap,
                      user_agent=agent.split("/", 1)[0].strip(),
                      fingerprint=fingerprint(identity), describe=command, **rs.fetcher_options())

    def summary() -> tuple[list[tuple[str, str]], dict[str, Any]]:
        f = crawler.frontier
        gate = crawler.gate
        counts = dict(sorted(f.counts.items()))
        refused = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in counts.items()) or "none"
        rows = [("pages read", f"{crawler.pages:,} (links from HTML pages)"),
                ("URLs admitted", f"{f.admitted:,}"), ("links refused", refused)]
        robots: dict[str, Any] = {}
        if gate is not None:
            delays = crawler.delayed_hosts
            robots = {"fetched": gate.fetched, "blocked": gate.blocked, "crawl_delay": delays}
            slow = f", {len(delays):,} hosts ask a crawl delay" if delays else ""
            rows.append(("robots.txt", f"{gate.fetched:,} fetched, {gate.blocked:,} URLs disallowed{slow}"))
        return rows, {"crawl": {"pages": crawler.pages, "admitted": f.admitted, "refused": counts,
                                "robots": robots}}

    sys.exit(run_command(crawler.fetcher, crawler.seed_items, rs, command=command, total=None,
                         title="surge crawl", extra=summary))
