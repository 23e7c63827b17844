"""`surge bench loops`: the playbook's §6 event-loop benchmark (gather N coroutines awaiting sleep(0.001))
plus task, call_soon, future and loopback TCP echo micro-benchmarks on every installed loop, one process each.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from surge.aio.loops import available_loops, run
from surge.bench.targets import HarnessError, machine_facts, pinned, plan_cores

__all__ = [
    "KNOWN_LOOPS",
    "LoopsResult",
    "WorkloadResult",
    "installed_loops",
    "run_loops",
]

KNOWN_LOOPS = ("asyncio", "uvloop", "rloop")
MESSAGE = b"x" * 100
ECHO_CONNECTIONS = 10


def installed_loops() -> list[str]:
    """The loops importable here, in the order asyncio, uvloop, rloop."""
    found = available_loops()
    return sorted(found, key=lambda n: (KNOWN_LOOPS.index(n) if n in KNOWN_LOOPS else len(KNOWN_LOOPS), n))


def _run_on(loop: str, main: Coroutine[Any, Any, float]) -> float:
    # The loop is made exactly as surge makes it for its own runs.
    return run(main, loop=loop, raise_fds=False)


# ---------------------------------------------------------------------------------------------- workloads
# Each returns the seconds its timed part took; setup (servers, connections) stays outside the timing.


async def _simple_task(task_id: int) -> int:
    # The playbook's §6 coroutine, unchanged.
    await asyncio.sleep(0.001)
    return task_id


async def gather_sleep(n: int) -> float:
    """§6 as written: gather ``n`` coroutines that each await sleep(0.001)."""
    start = time.perf_counter()
    results = await asyncio.gather(*[_simple_task(i) for i in range(n)])
    elapsed = time.perf_counter() - start
    assert len(results) == n
    return elapsed


async def _noop() -> None:
    return None


async def task_create_await(n: int) -> float:
    """Create a task and await it, ``n`` times: the cost of one task's life cycle."""
    start = time.perf_counter()
    for _ in range(n):
        await asyncio.create_task(_noop())
    return time.perf_counter() - start


async def call_soon_chain(n: int) -> float:
    """A callback that schedules the next one with call_soon, ``n`` hops: the loop's ready-queue speed."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    left = n

    def hop() -> None:
        nonlocal left
        left -= 1
        if left:
            loop.call_soon(hop)
        else:
            done.set_result(None)

    start = time.perf_counter()
    loop.call_soon(hop)
    await done
    return time.perf_counter() - start


async def future_chain(n: int) -> float:
    """Await ``n`` futures in turn, each resolved by a call_soon callback: the wake-up cost of a coroutine."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    for _ in range(n):
        fut = loop.create_future()
        loop.call_soon(fut.set_result, None)
        await fut
    return time.perf_counter() - start


class _EchoServer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's and rloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _EchoClient(asyncio.Protocol):
    """Sends a message, waits for all of it to come back, repeats ``rounds`` times."""

    def __init__(self, rounds: int, done: asyncio.Future[None]) -> None:
        self.rounds = rounds
        self.done = done
        self.pending = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's and rloop's transports are not asyncio.Transport subclasses: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def start(self) -> None:
        self.pending = len(MESSAGE)
        self.transport.write(MESSAGE)

    def data_received(self, data: bytes) -> None:
        self.pending -= len(data)
        if self.pending > 0:
            return
        self.rounds -= 1
        if self.rounds > 0:
            self.start()
        elif not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("echo connection closed early"))


def _split(n: int, parts: int) -> list[int]:
    # n round trips shared out over at most `parts` connections, none of them idle.
    parts = max(1, min(parts, n))
    base, extra = divmod(n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


async def tcp_echo_protocol(n: int) -> float:
    """``n`` 100-byte round trips over 10 loopback connections, Protocols on both ends."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoServer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients: list[_EchoClient] = []
    try:
        for rounds in _split(n, ECHO_CONNECTIONS):
            done: asyncio.Future[None] = loop.create_future()
            proto = _EchoClient(rounds, done)
            await loop.create_connection(lambda p=proto: p, "127.0.0.1", port)  # type: ignore[misc]
            clients.append(proto)
        start = time.perf_counter()
        for c in clients:
            c.start()
        await asyncio.gather(*(c.done for c in clients))
        return time.perf_counter() - start
    finally:
        for c in clients:
            c.transport.close()
        server.close()
        await server.wait_closed()


async def tcp_echo_streams(n: int) -> float:
    """``n`` 100-byte round trips over 10 loopback connections, asyncio streams on both ends."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rounds: int) -> None:
        for _ in range(rounds):
            writer.write(MESSAGE)
            await writer.drain()
            await reader.readexactly(len(MESSAGE))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conns = [(await asyncio.open_connection("127.0.0.1", port), rounds)
             for rounds in _split(n, ECHO_CONNECTIONS)]
    try:
        start = time.perf_counter()
        await asyncio.gather(*(client(r, w, rounds) for (r, w), rounds in conns))
        return time.perf_counter() - start
    finally:
        for (_, w), _rounds in conns:
            w.close()
        server.close()
        await server.wait_closed()


WORKLOADS: dict[str, tuple[Callable[[int], Awaitable[float]], str]] = {
    "gather_sleep": (gather_sleep, "coroutines"),
    "task_create_await": (task_create_await, "tasks"),
    "call_soon_chain": (call_soon_chain, "callbacks"),
    "future_chain": (future_chain, "futures"),
    "tcp_echo_protocol": (tcp_echo_protocol, "round trips"),
    "tcp_echo_streams": (tcp_echo_streams, "round trips"),
}


# ---------------------------------------------------------------------------------------------- results


@dataclass(slots=True)
class WorkloadResult:
    """One workload on one loop: the median of ``repeat`` runs, or the error that stopped it."""

    workload: str
    n: int
    loop: str
    elapsed_s: float | None
    ops_per_s: float | None
    runs_s: list[float] = field(default_factory=list)
    ratio_to_asyncio: float | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        """Row label: workload name with its size, e.g. ``gather_sleep 10,000``."""
        return f"{self.workload} {self.n:,}"


@dataclass(slots=True)
class LoopsResult:
    """The whole `surge bench loops` run: per-loop, per-workload results plus the machine they ran on."""

    loops: list[str]
    results: list[WorkloadResult]
    machine: dict[str, Any]
    command: str = ""
    repeat: int = 1

    def rows(self) -> list[str]:
        """Row labels in run order (one per workload and size)."""
        seen: dict[str, None] = {}
        for r in self.results:
            seen.setdefault(r.label, None)
        return list(seen)

    def get(self, label: str, loop: str) -> WorkloadResult | None:
        """The result for one row and loop, if that loop ran it."""
        for r in self.results:
            if r.label == label and r.loop == loop:
                return r
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`--json`)."""
        return {"benchmark": "loops", "command": self.command, "repeat": self.repeat, "loops": self.loops,
                "machine": self.machine, "results": [asdict(r) for r in self.results]}

    def markdown(self) -> str:
        """The table: one row per workload, ops/s and ratio to asyncio per loop."""
        head = "| workload | " + " | ".join(f"{lp} ops/s | {lp} ×asyncio" for lp in self.loops) + " |"
        sep = "|---|" + "---:|---:|" * len(self.loops)
        lines = [head, sep]
        for label in self.rows():
            cells = []
            for lp in self.loops:
                r = self.get(label, lp)
                if r is None or r.ops_per_s is None:
                    cells += [f"failed: {r.error}" if r and r.error else "—", "—"]
                else:
                    ratio = f"{r.ratio_to_asyncio:.2f}" if r.ratio_to_asyncio is not None else "—"
                    cells += [f"{r.ops_per_s:,.0f}", ratio]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _sizes(tasks: Sequence[int], ops: int, echo: int) -> list[tuple[str, int]]:
    plan = [("gather_sleep", n) for n in tasks]
    plan += [("task_create_await", ops), ("call_soon_chain", ops), ("future_chain", ops)]
    plan += [("tcp_echo_protocol", echo), ("tcp_echo_streams", echo)]
    return plan


def _worker(loop: str, plan: list[tuple[str, int]], repeat: int) -> list[dict[str, Any]]:
    """Run every workload on ``loop`` in this process (a fresh loop per run), median of ``repeat``."""
    out = []
    for name, n in plan:
        fn = WORKLOADS[name][0]
        runs: list[float] = []
        error = None
        try:
            for _ in range(repeat):
                runs.append(_run_on(loop, fn(n)))  # type: ignore[arg-type]
        except Exception as exc:  # a loop that lacks a feature fails that row, not the run
            error = f"{type(exc).__name__}: {exc}"[:120]
        med = statistics.median(runs) if runs and error is None else None
        out.append({"workload": name, "n": n, "loop": loop, "elapsed_s": med, "runs_s": runs,
                    "ops_per_s": (n / med) if med else None, "error": error})
    return out


def run_loops(*, loops: Sequence[str] | None = None, tasks: Sequence[int] = (10_000, 100_000),
              ops: int = 100_000, echo: int = 20_000, repeat: int = 3, core: int | None = None,
              timeout: float = 600.0) -> LoopsResult:
    """Run the loop benchmark: each loop in its own subprocess (pinned to ``core``), ratios to asyncio.

    >>> res = run_loops(tasks=(200,), ops=200, echo=20, repeat=1)   # doctest: +SKIP
    >>> print(res.markdown())                                       # doctest: +SKIP
    """
    available = installed_loops()
    chosen = list(loops) if loops else available
    missing = [lp for lp in chosen if lp not in available]
    if missing:
        raise HarnessError(f"loop not installed: {', '.join(missing)} (installed: {', '.join(available)})")
    if core is None:
        core = plan_cores().client
    plan = _sizes(tasks, ops, echo)
    results: list[WorkloadResult] = []
    for lp in chosen:
        cmd = [sys.executable, "-m", "surge.bench.loops", "--worker", lp, "--plan", json.dumps(plan),
               "--repeat", str(repeat)]
        proc = subprocess.run(pinned(cmd, core), capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            results += [WorkloadResult(name, n, lp, None, None, error=f"process failed: {last}"[:120])
                        for name, n in plan]
            continue
        results += [WorkloadResult(**d) for d in json.loads(proc.stdout)]
    base = {r.label: r.elapsed_s for r in results if r.loop == "asyncio" and r.elapsed_s}
    for r in results:
        b = base.get(r.label)
        if b and r.elapsed_s:
            r.ratio_to_asyncio = b / r.elapsed_s
    return LoopsResult(loops=chosen, results=results, machine=machine_facts(), repeat=repeat)


def _main(argv: Sequence[str]) -> int:
    # Subprocess entry: `python -m surge.bench.loops --worker LOOP --plan JSON --repeat R` prints JSON rows.
    args = list(argv)
    loop = args[args.index("--worker") + 1]
    plan = [(str(a), int(b)) for a, b in json.loads(args[args.index("--plan") + 1])]
    repeat = int(args[args.index("--repeat") + 1])
    print(json.dumps(_worker(loop, plan, repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
