"""``surge serve``: run the embedded target server until SIGINT or SIGTERM.

Prints the base URL as the first line on stdout; ``--workers N`` runs N processes sharing the port.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import click

from surge.aio.loops import run
from surge.errors import ConfigError
from surge.server.app import TargetServer, format_url


@dataclass(frozen=True, slots=True)
class _Options:
    host: str
    port: int
    loop: str
    site_pages: int
    site_links: int
    seed: int


def _bind_error(host: str, port: int, exc: OSError) -> ConfigError:
    if isinstance(exc, socket.gaierror):
        return ConfigError(f"cannot listen on {host}:{port}: unknown host")
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return ConfigError(f"cannot listen on {host}:{port}: {reason}")


async def _serve_until_signal(server: TargetServer, ready: Connection | None) -> None:
    try:
        url = await server.start()
    except OSError as exc:
        raise _bind_error(server.host, server.port, exc) from None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if ready is None:
            click.echo(url)
            sys.stdout.flush()
        else:
            ready.send("")
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except AttributeError:
                # rloop 0.x lacks a helper its remove_signal_handler calls; the process exits next anyway.
                pass
        await server.aclose()


def _server(opts: _Options, *, reuse_port: bool = False) -> TargetServer:
    return TargetServer(opts.host, opts.port, site_pages=opts.site_pages, site_links=opts.site_links,
                        seed=opts.seed, reuse_port=reuse_port)


def _worker(opts: _Options, ready: Connection) -> None:
    # A forked child: its own loop and signal handling; reports readiness or one error line to the parent.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        run(_serve_until_signal(_server(opts, reuse_port=True), ready), loop=opts.loop)
    except ConfigError as exc:
        ready.send(str(exc))
        sys.exit(2)


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: object) -> None:
    raise _Stop


def _reserve_port(host: str, port: int) -> socket.socket:
    # Bind once without SO_REUSEPORT so a port in use is an error (and port 0 picks a free one), then hold
    # the port with a SO_REUSEPORT socket that never listens, so the workers can all bind it.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
            port = probe.getsockname()[1]
        hold = socket.socket(family, socket.SOCK_STREAM)
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        hold.bind((address[0], port, *address[2:]))
    except OSError as exc:
        raise _bind_error(host, port, exc) from None
    return hold


def _serve_workers(opts: _Options, workers: int) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("--workers needs SO_REUSEPORT, which this system lacks")
    hold = _reserve_port(opts.host, opts.port)
    opts = _Options(opts.host, hold.getsockname()[1], opts.loop, opts.site_pages, opts.site_links, opts.seed)
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    context = multiprocessing.get_context("fork")
    procs: list[Any] = []
    try:
        for _ in range(workers):
            receiver, sender = context.Pipe(duplex=False)
            proc = context.Process(target=_worker, args=(opts, sender), daemon=True)
            proc.start()
            sender.close()
            procs.append(proc)
            try:
                message = receiver.recv()
            except EOFError:
                message = "a worker exited while starting"
            finally:
                receiver.close()
            if message:
                raise ConfigError(message)
        click.echo(format_url(opts.host, opts.port))
        sys.stdout.flush()
        for proc in procs:
            proc.join()
    except _Stop:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in procs:
            proc.join()
        hold.close()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (e.g. ::1).")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port; 0 picks a free one.")
@click.option("--loop", "loop", default="auto", show_default=True,
              type=click.Choice(["auto", "asyncio", "uvloop", "rloop"]), help="Event loop.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 512),
              help="Processes sharing the port (SO_REUSEPORT).")
@click.option("--site-pages", default=1000, show_default=True, type=click.IntRange(0, 10**8),
              help="Pages of the synthetic site under /site/.")
@click.option("--site-links", default=10, show_default=True, type=click.IntRange(0, 10**4),
              help="Links on each page of the synthetic site.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the synthetic site.")
def serve(**flags: Any) -> None:
    """Run the embedded target server (httpbin-like endpoints, a synthetic site, faults) until Ctrl-C.

    The base URL is the first line on stdout. Endpoints: see ``surge.server.routes``.
    """
    workers: int = flags.pop("workers")
    opts = _Options(**flags)
    if workers > 1:
        _serve_workers(opts, workers)
        return
    try:
        run(_serve_until_signal(_server(opts), None), loop=opts.loop)
    except KeyboardInterrupt:
        # A SIGINT that lands before the loop's handler is installed.
        pass


__all__ = ["serve"]
