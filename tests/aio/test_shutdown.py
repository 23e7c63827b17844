"""Shutdown: real signals to this process, drain deadline on the loop clock, handlers restored."""

from __future__ import annotations

import asyncio
import doctest
import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

import surge.aio.shutdown as shutdown_module
from surge.aio.shutdown import Shutdown


def test_docstring_examples_run() -> None:
    assert doctest.testmod(shutdown_module).failed == 0


@pytest.fixture
def sentinel_handlers() -> Iterator[dict[int, list[int]]]:
    """Install recognisable Python-level handlers for SIGINT/SIGTERM; put the originals back after."""
    seen: dict[int, list[int]] = {signal.SIGINT: [], signal.SIGTERM: []}

    def handler(signum: int, frame: FrameType | None) -> None:
        seen[signum].append(signum)

    originals = {sig: signal.getsignal(sig) for sig in seen}
    for sig in seen:
        signal.signal(sig, handler)
    yield seen
    for sig, original in originals.items():
        signal.signal(sig, original)


def kill(sig: int) -> None:
    os.kill(os.getpid(), sig)


@pytest.mark.looptime
async def test_first_signal_requests_stop_and_work_drains(sentinel_handlers: dict[int, list[int]]) -> None:
    stopped: list[str] = []
    finished: list[int] = []
    async with Shutdown(drain_timeout=10.0) as sd:
        sd.on_stop(stopped.append, "intake closed")
        assert not sd.requested
        kill(signal.SIGTERM)
        await sd.wait()
        assert sd.requested and sd.stopping.is_set()
        assert sd.received_signal == signal.SIGTERM
        assert stopped == ["intake closed"]
        assert sd.deadline == pytest.approx(asyncio.get_running_loop().time() + 10.0)
        await asyncio.sleep(9)  # in-flight work finishing within the deadline
        finished.append(1)
    assert finished == [1]
    assert not sd.forced
    assert sentinel_handlers[signal.SIGTERM] == []  # ours handled it, not the previous one


@pytest.mark.looptime
async def test_deadline_cancels_the_block(sentinel_handlers: dict[int, list[int]]) -> None:
    loop = asyncio.get_running_loop()
    cancelled_at: list[float] = []
    async with Shutdown(drain_timeout=5.0) as sd:
        kill(signal.SIGINT)
        await sd.wait()
        try:
            await asyncio.sleep(100)  # work that does not finish in time
        except asyncio.CancelledError:
            cancelled_at.append(loop.time())
            raise
    assert sd.forced
    assert cancelled_at == [pytest.approx(5.0)]
    # The block's cancellation was absorbed: we are still running, and not being cancelled.
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0


@pytest.mark.looptime
async def test_second_signal_cancels_at_once(sentinel_handlers: dict[int, list[int]]) -> None:
    loop = asyncio.get_running_loop()
    async with Shutdown(drain_timeout=30.0) as sd:
        kill(signal.SIGINT)
        await sd.wait()
        await asyncio.sleep(1)
        kill(signal.SIGINT)
        await asyncio.sleep(100)
    assert sd.forced
    assert loop.time() == pytest.approx(1.0, abs=0.01)


async def test_previous_handlers_restored(sentinel_handlers: dict[int, list[int]]) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    async with Shutdown() as sd:
        assert signal.getsignal(signal.SIGINT) is not before[signal.SIGINT]
        kill(signal.SIGINT)
        await sd.wait()
    assert {sig: signal.getsignal(sig) for sig in before} == before
    # And the restored handler really receives the signal again.
    kill(signal.SIGTERM)
    assert sentinel_handlers[signal.SIGTERM] == [signal.SIGTERM]


async def test_handlers_restored_when_the_block_raises(sentinel_handlers: dict[int, list[int]]) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(ZeroDivisionError):
        async with Shutdown(signals=(signal.SIGTERM,)):
            _ = 1 / 0
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.looptime
async def test_request_is_a_programmatic_first_signal() -> None:
    calls: list[tuple[int, int]] = []
    async with Shutdown(drain_timeout=1.0, signals=()) as sd:
        sd.on_stop(lambda a, b: calls.append((a, b)), 1, 2)
        sd.request()
        sd.request()
        assert calls == [(1, 2)]
        sd.on_stop(lambda a, b: calls.append((a, b)), 3, 4)  # late registration runs at once
        assert calls == [(1, 2), (3, 4)]
        await asyncio.sleep(0.5)
    assert sd.requested and not sd.forced and sd.received_signal is None


@pytest.mark.looptime
async def test_no_drain_timeout_means_no_forced_cancel() -> None:
    async with Shutdown(drain_timeout=None, signals=()) as sd:
        sd.request()
        await asyncio.sleep(10_000)
    assert sd.deadline is None and not sd.forced


@pytest.mark.looptime
async def test_outside_cancellation_still_propagates() -> None:
    entered = asyncio.Event()

    async def body() -> None:
        async with Shutdown(drain_timeout=5.0, signals=()) as sd:
            sd.request()
            entered.set()
            await asyncio.sleep(100)

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.looptime
async def test_forced_then_outside_cancel_propagates() -> None:
    async def body() -> None:
        async with Shutdown(drain_timeout=1.0, signals=()) as sd:
            sd.request()
            try:
                await asyncio.sleep(100)
            finally:
                # While the forced cancellation unwinds, someone else cancels us too.
                current = asyncio.current_task()
                assert current is not None
                current.cancel()
                await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(body())


async def test_failing_callback_goes_to_loop_handler() -> None:
    reported: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))

    def bad() -> None:
        raise RuntimeError("callback broke")

    ran: list[int] = []
    async with Shutdown(signals=()) as sd:
        sd.on_stop(bad)
        sd.on_stop(ran.append, 1)
        sd.request()
    assert ran == [1]
    assert len(reported) == 1 and isinstance(reported[0]["exception"], RuntimeError)


@pytest.mark.looptime
async def test_request_before_enter_starts_drain_clock_on_enter() -> None:
    sd = Shutdown(drain_timeout=2.0, signals=())
    sd.request()
    await asyncio.sleep(10)
    async with sd:
        assert sd.deadline == pytest.approx(12.0)
        await asyncio.sleep(100)
    assert sd.forced
    assert asyncio.get_running_loop().time() == pytest.approx(12.0)


async def test_misuse() -> None:
    with pytest.raises(ValueError, match="drain_timeout"):
        Shutdown(drain_timeout=-1)
    sd = Shutdown(signals=())
    async with sd:
        with pytest.raises(RuntimeError, match="already"):
            await sd.__aenter__()
    assert "running" in repr(sd)
