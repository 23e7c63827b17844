"""``Shutdown``: SIGINT/SIGTERM turned into a graceful stop, then a forced one.

First signal: stop taking work and let in-flight work drain; deadline or second signal: cancel.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

__all__ = ["Shutdown"]

_Handler = Callable[[int, Any], Any] | int | signal.Handlers | None


class Shutdown:
    """Async context manager that wires signals to a two-stage stop of the task that enters it.

    - First signal (or :meth:`request`): ``requested`` becomes True, the ``stopping`` event is set and
      the ``on_stop`` callbacks run. The code inside stops taking new work and lets work in flight
      finish; it has ``drain_timeout`` seconds (loop time; ``None``: no limit) to leave the block.
    - Deadline passed, or a second signal: the task that entered the context is cancelled. Like
      ``asyncio.timeout()``, that cancellation ends the block and is absorbed on exit (``forced``
      becomes True); a cancellation from anyone else propagates as usual.
    - On exit the previous signal handlers are back in place (those set with ``signal.signal``; a
      handler another owner set with ``loop.add_signal_handler`` for the same signal is not restored).

    Signal handlers go through ``loop.add_signal_handler`` (main thread, Unix); ``signals=()`` gives
    a Shutdown driven by :meth:`request` alone.

    >>> import asyncio
    >>> async def main() -> tuple[bool, bool, int]:
    ...     done = 0
    ...     async with Shutdown(drain_timeout=1.0, signals=()) as sd:
    ...         sd.on_stop(print, "stopping intake")
    ...         for i in range(100):
    ...             if sd.requested:
    ...                 break                # stop taking work
    ...             await asyncio.sleep(0)   # ... one unit of work ...
    ...             done += 1
    ...             if i == 2:
    ...                 sd.request()         # what SIGINT/SIGTERM does
    ...     return sd.requested, sd.forced, done
    >>> asyncio.run(main())
    stopping intake
    (True, False, 3)
    """

    def __init__(
        self,
        drain_timeout: float | None = 30.0,
        signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM),
    ) -> None:
        if drain_timeout is not None and drain_timeout < 0:
            raise ValueError(f"drain_timeout must be >= 0 or None, got {drain_timeout}")
        self.drain_timeout = drain_timeout
        self.signals: tuple[signal.Signals, ...] = tuple(signal.Signals(s) for s in signals)
        self.stopping = asyncio.Event()
        self._requested = False
        self._forced = False
        self._signal: signal.Signals | None = None
        self._callbacks: list[tuple[Callable[..., object], tuple[Any, ...]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._previous: dict[signal.Signals, _Handler] = {}
        self._installed: list[signal.Signals] = []
        self._active = False

    def __repr__(self) -> str:
        state = "forced" if self._forced else "stopping" if self._requested else "running"
        return f"<Shutdown {state} drain_timeout={self.drain_timeout}>"

    @property
    def requested(self) -> bool:
        """True once a stop was requested (first signal or :meth:`request`)."""
        return self._requested

    @property
    def forced(self) -> bool:
        """True if the block was cancelled (drain deadline passed or second signal)."""
        return self._forced

    @property
    def received_signal(self) -> signal.Signals | None:
        """The first signal received, if a signal started the stop."""
        return self._signal

    @property
    def deadline(self) -> float | None:
        """Loop time at which the block is cancelled, once a stop was requested (None without limit)."""
        return self._deadline

    async def wait(self) -> None:
        """Wait until a stop is requested."""
        await self.stopping.wait()

    def on_stop(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` when a stop is requested (at once, if it already was).

        ``fn`` is a plain callable run from the event loop; to start async work it can create a task
        or set an event. An exception it raises goes to the loop's exception handler.
        """
        if self._requested:
            self._call(fn, args)
        else:
            self._callbacks.append((fn, args))

    def request(self) -> None:
        """Start the graceful stop, as a first signal does. Later calls do nothing."""
        if self._requested:
            return
        self._requested = True
        self.stopping.set()
        if self._active and self.drain_timeout is not None and self._loop is not None:
            self._deadline = self._loop.time() + self.drain_timeout
            self._timer = self._loop.call_at(self._deadline, self._force, "drain deadline passed")
        callbacks, self._callbacks = self._callbacks, []
        for fn, args in callbacks:
            self._call(fn, args)

    def _call(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception as exc:
            loop = self._loop or asyncio.get_running_loop()
            loop.call_exception_handler(
                {"message": f"Shutdown on_stop callback {fn!r} failed", "exception": exc}
            )

    def _on_signal(self, signum: signal.Signals) -> None:
        if not self._requested:
            self._signal = signum
            self.request()
        else:
            self._force(f"second signal ({signum.name})")

    def _force(self, why: str) -> None:
        if self._forced or not self._active or self._task is None:
            return
        self._forced = True
        self._task.cancel(msg=f"shutdown: {why}")

    async def __aenter__(self) -> Shutdown:
        if self._active:
            raise RuntimeError("Shutdown is already entered")
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Shutdown must be entered from a task")
        self._loop = loop
        self._task = task
        self._cancelling = task.cancelling()
        try:
            for sig in self.signals:
                self._previous[sig] = signal.getsignal(sig)
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._installed.append(sig)
        except BaseException:
            self._restore()
            raise
        self._active = True
        if self._requested and self.drain_timeout is not None:
            # request() came before the block started: the drain clock starts now.
            self._deadline = loop.time() + self.drain_timeout
            self._timer = loop.call_at(self._deadline, self._force, "drain deadline passed")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._active = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._restore()
        # Absorb only our own cancellation, exactly as asyncio.timeout() does.
        return (
            self._forced
            and self._task is not None
            and self._task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        )

    def _restore(self) -> None:
        loop = self._loop
        while self._installed:
            sig = self._installed.pop()
            if loop is not None:
                loop.remove_signal_handler(sig)
            previous = self._previous.pop(sig, None)
            if previous is not None:
                # remove_signal_handler() resets to the default; put back what was there before.
                signal.signal(sig, previous)
