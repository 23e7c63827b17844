"""The ``surge`` command group; each subcommand lives in its own module.

User errors (bad flags, URLs, files) end as one line on stderr and exit 2; never a traceback.
"""

from __future__ import annotations

import sys

import click

from surge import __version__
from surge.errors import ConfigError


class SurgeGroup(click.Group):
    """Turns the errors a user can cause into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"surge: error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:
            # Unwritable output, unreadable input, port in use: the message names the file or address.
            click.echo(f"surge: error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""),
                       err=True)
            sys.exit(2)


@click.group(cls=SurgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="surge")
def cli() -> None:
    """surge: massive network I/O from Python, with exactly one outcome per request."""


def _register() -> None:
    # One line per subcommand module.
    from surge.cli.serve import serve

    cli.add_command(serve)
    from surge.cli.bench import bench

    cli.add_command(bench)
    from surge.cli.demo import demo

    cli.add_command(demo)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="surge")
