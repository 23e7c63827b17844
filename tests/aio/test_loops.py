"""Event loop selection and the open-files limit."""

from __future__ import annotations

import asyncio
import inspect
import resource
import sys
from collections.abc import Iterator

import pytest

from surge.aio import available_loops, last_fd_limit, loop_name, raise_fd_limit, run
from surge.errors import ConfigError, LoopUnavailable


async def which() -> str:
    return loop_name()


@pytest.mark.parametrize("name", available_loops())
def test_run_on_each_available_loop(name: str) -> None:
    assert run(which(), loop=name) == name


def test_auto_prefers_uvloop() -> None:
    expected = "uvloop" if "uvloop" in available_loops() else "asyncio"
    assert run(which()) == expected


def test_available_loops_lists_asyncio_first() -> None:
    loops = available_loops()
    assert loops[0] == "asyncio"
    assert set(loops) <= {"asyncio", "uvloop", "rloop"}


def test_run_returns_the_result_and_propagates_errors() -> None:
    async def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        run(boom(), loop="asyncio")


def test_unknown_loop_is_a_config_error_and_the_coroutine_is_closed() -> None:
    coro = which()
    with pytest.raises(LoopUnavailable, match=r"unknown event loop 'tokio'.*asyncio, uvloop, rloop") as info:
        run(coro, loop="tokio")
    assert isinstance(info.value, ConfigError)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


@pytest.mark.parametrize("name, hint", [("uvloop", "pip install uvloop"), ("rloop", "surge[bench]")])
def test_missing_loop_names_the_install(name: str, hint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # makes `import name` fail
    with pytest.raises(LoopUnavailable, match=f"'{name}' is not installed") as info:
        run(which(), loop=name)
    assert hint in str(info.value)
    assert name not in available_loops()


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert run(which()) == "asyncio"


async def test_loop_name_of_the_running_loop() -> None:
    assert loop_name() == "asyncio"
    assert loop_name(asyncio.get_running_loop()) == "asyncio"


@pytest.fixture
def restore_nofile() -> Iterator[tuple[int, int]]:
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def test_raise_fd_limit_raises_soft_to_hard(restore_nofile: tuple[int, int]) -> None:
    _, hard = restore_nofile
    if hard == resource.RLIM_INFINITY or hard < 512:
        pytest.skip("needs a finite hard limit of at least 512")
    low = hard // 2  # low enough to see it raised, high enough for the fds this process holds
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    assert raise_fd_limit() == (low, hard)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    assert raise_fd_limit() == (hard, hard)  # already there: nothing to do


def test_run_raises_the_limit_and_reports_it(restore_nofile: tuple[int, int]) -> None:
    _, hard = restore_nofile
    if hard == resource.RLIM_INFINITY or hard < 512:
        pytest.skip("needs a finite hard limit of at least 512")
    low = hard // 2  # low enough to see it raised, high enough for the fds this process holds
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    async def current() -> int:
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    assert run(current(), loop="asyncio") == hard
    assert last_fd_limit() == (low, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    assert run(current(), loop="asyncio", raise_fds=False) == low


@pytest.mark.parametrize("module", ["loops", "ratelimit", "concurrency", "retry"])
def test_every_public_name_has_a_runnable_example(module: str) -> None:
    import doctest
    import importlib

    mod = importlib.import_module(f"surge.aio.{module}")
    assert mod.__doc__
    for name in mod.__all__:
        obj = getattr(mod, name)
        if isinstance(obj, tuple):
            continue  # constants
        assert obj.__doc__ and ">>>" in obj.__doc__, f"{module}.{name} has no example"
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
