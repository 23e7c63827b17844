"""The ``surge`` command group; each subcommand lives in its own module.

User errors (bad flags, URLs, files) end as one line on stderr and exit 2; never a traceback. A bug ends as
one line too, ``surge: internal error: ...``, with the traceback in a log file, and exit 70 (EX_SOFTWARE).
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
import traceback
from typing import NoReturn

import click

from surge import __version__
from surge.errors import StorageError, SurgeError

__all__ = ["EX_IOERR", "EX_SOFTWARE", "cli", "error_line", "internal_error", "main", "note_state_dir"]

EX_SOFTWARE = 70  # sysexits.h: an internal error (a bug)
EX_IOERR = 74  # sysexits.h: an input/output error (here: the output or the state could not be written)
_STATE_DIR = "surge.state_dir"  # click's Context.meta key: the running command's --state dir

# Subcommands are imported only when invoked, so `surge serve` does not pay for the bench peers' imports.
COMMANDS: dict[str, str] = {
    "serve": "surge.cli.serve:serve",
    "fetch": "surge.cli.fetch:fetch",
    "crawl": "surge.cli.crawl:crawl",
    "bench": "surge.cli.bench:bench",
    "demo": "surge.cli.demo:demo",
}


class SurgeGroup(click.Group):
    """Loads subcommands lazily and turns the errors a user can cause into one line and a non-zero exit."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | {n for n in COMMANDS if self._load(n) is not None})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # the subcommand is not part of this build
                return None
            raise
        command: click.Command = getattr(module, attr)
        return command

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SurgeError as exc:
            line, code = error_line(exc, ctx.meta.get(_STATE_DIR))
            click.echo(line, err=True)
            sys.exit(code)
        except OSError as exc:
            # Unwritable output, unreadable input, port in use: the message names the file or address.
            click.echo(f"surge: error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""),
                       err=True)
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own way out: main() turns each into its line and exit code
        except Exception as exc:  # a bug: one line here, the traceback in a file
            internal_error(exc, ctx.meta.get(_STATE_DIR))


def error_line(exc: SurgeError, state: str | None) -> tuple[str, int]:
    """The one line on stderr and the exit code for a surge error that ended a command.

    ``state``: the run's ``--state`` dir, if any (whether running the same command again resumes).
    """
    if isinstance(exc, StorageError):
        then = ("run the same command again to resume" if state is not None
                else "run the command again (without --state it starts over)")
        return f"surge: error: {exc}; {exc.advice} and {then}", EX_IOERR
    return f"surge: error: {exc}", 2


def note_state_dir(directory: str | None) -> None:
    """Note the running command's ``--state`` dir: an internal error's traceback goes there, and an error's
    line says that running the same command again resumes."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and directory is not None:
        ctx.meta[_STATE_DIR] = directory


def internal_error(exc: BaseException, directory: str | None = None) -> NoReturn:
    """End the process for a bug: the traceback to a log file (``directory`` if given and writable, else the
    temp dir), one line on stderr naming it, exit 70."""
    name = f"surge-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    report = (f"surge {__version__}, Python {sys.version.split()[0]}, {sys.platform}\n"
              f"command: {' '.join(['surge', *sys.argv[1:]])}\n\n"
              + "".join(traceback.format_exception(exc)))
    where = ""
    for folder in ([directory] if directory else []) + [tempfile.gettempdir()]:
        path = os.path.join(folder, name)
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(report)
        except OSError:
            continue  # a full or missing directory: try the next
        where = f" (traceback in {path})"
        break
    else:
        sys.stderr.write(report)  # no file could take it: better many lines than no traceback
    message = " ".join(str(exc).splitlines())
    click.echo(f"surge: internal error: {type(exc).__name__}: {message}{where}", err=True)
    sys.exit(EX_SOFTWARE)


@click.group(cls=SurgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="surge")
def cli() -> None:
    """surge: massive network I/O from Python, with exactly one outcome per request."""


def main() -> None:
    """Console-script entry point: usage errors are one line on stderr and exit 2, not click's usage block."""
    try:
        cli.main(prog_name="surge", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message(), err=True)
        sys.exit(2)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "surge"
        click.echo(f"surge: error: {exc.format_message()} (see '{command} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"surge: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("surge: aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug before any command ran (loading one, parsing its arguments)
        internal_error(exc)
