"""Choosing and running the event loop: asyncio, uvloop or rloop, picked by name or automatically.

``run`` also raises the open-files soft limit to the hard limit first, since a process that opens
thousands of sockets fails with EMFILE long before the CPU is busy.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from surge.errors import LoopUnavailable

__all__ = ["LOOP_NAMES", "available_loops", "last_fd_limit", "loop_name", "open_files_headroom",
           "raise_fd_limit", "run"]

T = TypeVar("T")

LOOP_NAMES: tuple[str, ...] = ("auto", "asyncio", "uvloop", "rloop")

_INSTALL_HINT = {
    "uvloop": "pip install uvloop (surge depends on it where it builds: Linux and macOS)",
    "rloop": "pip install 'surge[bench]' (or pip install rloop; Linux and macOS only)",
}

_last_fd_limit: tuple[int, int] | None = None


def _asyncio_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    # Explicitly the stdlib loop, even if some library installed another policy.
    if sys.platform == "win32":  # pragma: no cover
        return asyncio.ProactorEventLoop
    return asyncio.SelectorEventLoop


def _factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "asyncio":
        return _asyncio_factory()
    if name == "uvloop":
        try:
            import uvloop  # noqa: PLC0415 - optional, imported only when asked for
        except ImportError as exc:
            raise LoopUnavailable(f"event loop 'uvloop' is not installed: {_INSTALL_HINT['uvloop']}") from exc
        return uvloop.new_event_loop
    if name == "rloop":
        try:
            import rloop  # noqa: PLC0415 - optional
        except ImportError as exc:
            raise LoopUnavailable(f"event loop 'rloop' is not installed: {_INSTALL_HINT['rloop']}") from exc
        factory: Callable[[], asyncio.AbstractEventLoop] = rloop.new_event_loop
        return factory
    if name == "auto":
        try:
            return _factory("uvloop")
        except LoopUnavailable:
            return _asyncio_factory()
    raise LoopUnavailable(f"unknown event loop {name!r}: choose one of {', '.join(LOOP_NAMES)}")


def available_loops() -> list[str]:
    """Names of the event loops that can run here, "asyncio" first.

    >>> "asyncio" in available_loops()
    True
    """
    names = ["asyncio"]
    for name in ("uvloop", "rloop"):
        try:
            _factory(name)
        except LoopUnavailable:
            continue
        names.append(name)
    return names


def loop_name(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """Which implementation ``loop`` (default: the running loop) is: "uvloop", "rloop" or "asyncio".

    >>> import asyncio
    >>> async def main() -> str:
    ...     return loop_name()
    >>> asyncio.run(main())
    'asyncio'
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    # Walk the MRO: test tools (looptime) subclass the loop's class at runtime.
    for cls in type(loop).__mro__:
        module = cls.__module__ or ""
        if module.startswith("uvloop"):
            return "uvloop"
        if module.startswith("rloop"):
            return "rloop"
    return "asyncio"


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft limit on open files (RLIMIT_NOFILE) to the hard limit; return ``(old, new)``.

    What ``ulimit -n $(ulimit -Hn)`` does in a shell. Where the hard limit is unlimited, the kernel's
    ceiling (``/proc/sys/fs/nr_open`` on Linux, 10240 on macOS) is used. If the limit cannot be raised,
    ``new == old``; on platforms without rlimits both are -1.

    >>> old, new = raise_fd_limit()
    >>> new >= old
    True
    """
    try:
        import resource  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        target = _kernel_fd_ceiling()
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return (soft, soft)
        return (soft, target)
    return (soft, soft)


def _kernel_fd_ceiling() -> int:
    if sys.platform == "darwin":  # pragma: no cover
        return 10240  # OPEN_MAX: setrlimit refuses more
    try:
        with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1 << 20


def last_fd_limit() -> tuple[int, int] | None:
    """``(old, new)`` soft open-files limit from the most recent ``run()``; None before any.

    >>> async def main() -> None:
    ...     pass
    >>> run(main(), loop="asyncio")
    >>> last_fd_limit() is not None
    True
    """
    return _last_fd_limit


def open_files_headroom() -> tuple[int, int] | None:
    """``(limit, free)``: the soft open-files limit and how many more files this process may open now.

    None where it cannot be told (no rlimits, no ``/proc/self/fd`` or ``/dev/fd``, an unlimited limit).

    >>> limit, free = open_files_headroom() or (1, 0)
    >>> 0 <= free < limit
    True
    """
    try:
        import resource  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return None
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            in_use = len(os.listdir(listing)) - 1  # listing the folder opened one more
        except OSError:
            continue
        return soft, max(soft - in_use, 0)
    return None


def run(main: Coroutine[Any, Any, T], *, loop: str = "auto", raise_fds: bool = True) -> T:
    """Run ``main`` to completion on the named event loop and return its result.

    ``loop``: "auto" (uvloop when installed, else asyncio), "asyncio", "uvloop" or "rloop"; an unknown or
    missing loop raises ``surge.errors.LoopUnavailable`` naming what to install. Before starting, the
    open-files soft limit is raised to the hard limit (``raise_fds=False`` skips it); ``last_fd_limit()``
    tells what was set.

    >>> async def main() -> str:
    ...     return loop_name()
    >>> run(main(), loop="asyncio")
    'asyncio'
    """
    global _last_fd_limit
    try:
        factory = _factory(loop)
    except LoopUnavailable:
        main.close()  # never awaited: close it so Python does not warn about it
        raise
    if raise_fds:
        _last_fd_limit = raise_fd_limit()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
