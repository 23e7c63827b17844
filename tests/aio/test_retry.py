"""Retries: backoff bounds as properties, Retry-After parsing, policy decisions, waits on a virtual clock."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.aio import Backoff, RetryPolicy, parse_retry_after, retry, retrying, set_testing
from surge.errors import BodyTooLarge, ConnectError, ReadTimeout


@pytest.fixture(autouse=True)
def _testing_off() -> Iterator[None]:
    set_testing(False)
    yield
    set_testing(False)


class RateLimited(Exception):
    """What a client raises on 429: carries the server's Retry-After."""

    def __init__(self, retry_after: float | str | None) -> None:
        super().__init__("429")
        self.retry_after = retry_after


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(min_value=0.0, max_value=100.0),
    cap=st.floats(min_value=0.0, max_value=1000.0),
    factor=st.floats(min_value=1.0, max_value=10.0),
    seed=st.integers(),
    attempts=st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=50),
)
def test_backoff_always_within_zero_and_cap(
    base: float, cap: float, factor: float, seed: int, attempts: list[int]
) -> None:
    backoff = Backoff(base, cap, factor, seed=seed)
    for attempt in attempts:
        delay = backoff.delay(attempt)
        assert 0.0 <= delay <= backoff.ceiling(attempt) <= cap


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(min_value=0.0, max_value=100.0),
    cap=st.floats(min_value=0.0, max_value=1000.0),
    factor=st.floats(min_value=1.0, max_value=10.0),
)
def test_unjittered_backoff_is_monotone_up_to_the_cap(base: float, cap: float, factor: float) -> None:
    backoff = Backoff(base, cap, factor, jitter=False)
    values = [backoff.delay(n) for n in range(1, 2000)]
    assert values == sorted(values)
    assert all(v <= cap for v in values)
    # Reaching the cap within 2,000 attempts needs base * factor**1999 >= cap.
    if base >= 1e-6 and factor >= 1.05:
        assert values[-1] == cap


def test_backoff_is_reproducible_with_a_seed() -> None:
    a = [Backoff(seed=7).delay(n) for n in range(1, 20)]
    b = [Backoff(seed=7).delay(n) for n in range(1, 20)]
    c = [Backoff(seed=8).delay(n) for n in range(1, 20)]
    assert a == b != c


@pytest.mark.parametrize("kwargs", [{"base": -1}, {"cap": float("inf")}, {"factor": 0.5}])
def test_backoff_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Backoff().delay(0)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0", 0.0),
        ("  30 ", 30.0),
        ("1.5", 1.5),
        ("61", 60.0),
        (email.utils.formatdate(NOW + 42, usegmt=True), 42.0),
        (email.utils.formatdate(NOW - 42, usegmt=True), 0.0),
        (email.utils.formatdate(NOW + 10_000, usegmt=True), 60.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 60.0),
        ("99999999", 60.0),
        ("9" * 200, 60.0),
        ("7, 7", 7.0),
        ("1.5", 1.5),
        ("Sun, 06 Nov 1994 08:49:37", 0.0),  # no zone: read as GMT, long past
        ("-5", None),
        ("", None),
        (None, None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("1e3", None),
        ("Funday, 99 Nox 2024 99:99:99 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@settings(max_examples=150, deadline=None)
@given(value=st.text(max_size=40), cap=st.floats(min_value=0.0, max_value=1e6))
def test_parse_retry_after_never_raises_and_respects_the_cap(value: str, cap: float) -> None:
    result = parse_retry_after(value, now=NOW, cap=cap)
    assert result is None or 0.0 <= result <= cap


def test_policy_gives_up_when_attempts_are_exhausted() -> None:
    policy = RetryPolicy(attempts=3, backoff=Backoff(base=1, jitter=False))
    assert [policy.next_delay(n, TimeoutError()) for n in (1, 2, 3, 4)] == [1.0, 2.0, None, None]


def test_policy_predicate_and_default_predicate() -> None:
    policy = RetryPolicy(attempts=5)
    assert policy.next_delay(1, ConnectError()) is not None
    assert policy.next_delay(1, ReadTimeout()) is not None
    assert policy.next_delay(1, ConnectionResetError()) is not None
    assert policy.next_delay(1, BodyTooLarge()) is None
    assert policy.next_delay(1, ValueError()) is None
    assert policy.next_delay(1, asyncio.CancelledError()) is None
    assert policy.next_delay(1, None) is not None  # a failure without exception (e.g. a 503)
    picky = RetryPolicy(attempts=5, retry_on=lambda exc: isinstance(exc, KeyError))
    assert picky.next_delay(1, KeyError()) is not None
    assert picky.next_delay(1, ConnectError()) is None


def test_policy_deadline() -> None:
    policy = RetryPolicy(attempts=10, deadline=10.0, backoff=Backoff(base=4, jitter=False))
    assert policy.next_delay(1, TimeoutError(), elapsed=5.0) == 4.0
    assert policy.next_delay(2, TimeoutError(), elapsed=5.0) is None  # 5 + 8 > 10


def test_policy_prefers_retry_after_and_caps_it() -> None:
    policy = RetryPolicy(attempts=5, backoff=Backoff(base=1, jitter=False), max_retry_after=60.0)
    assert policy.next_delay(1, TimeoutError(), retry_after=7.0) == 7.0
    assert policy.next_delay(1, TimeoutError(), retry_after=60.0) == 60.0
    # Longer than the cap: not obeyed, and not disobeyed by retrying sooner either: the failure stands.
    assert policy.next_delay(1, TimeoutError(), retry_after=600.0) is None
    assert policy.next_delay(1, RateLimited(12.0)) == 12.0
    assert policy.next_delay(1, RateLimited("3")) == 3.0
    assert policy.next_delay(1, RateLimited("9999")) is None
    assert policy.next_delay(1, RateLimited(float("inf"))) is None
    assert policy.next_delay(1, RateLimited("garbage")) == 1.0  # unreadable: back off instead
    assert policy.next_delay(1, RateLimited(None)) is None  # nothing says it is worth retrying
    deadline = RetryPolicy(attempts=5, deadline=5.0)
    assert deadline.next_delay(1, RateLimited(30.0)) is None


def test_set_testing_keeps_decisions_but_zeroes_waits() -> None:
    policy = RetryPolicy(attempts=2, deadline=1.0, backoff=Backoff(base=5, jitter=False))
    set_testing(True)
    assert policy.next_delay(1, TimeoutError(), retry_after=0.5) == 0.0
    assert policy.next_delay(1, TimeoutError()) is None  # 5 s would pass the deadline: still gives up
    assert policy.next_delay(2, TimeoutError(), retry_after=0.5) is None


@pytest.mark.looptime
async def test_retrying_waits_the_backoff_on_the_loop_clock() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    seen: list[tuple[int, float, str | None]] = []
    async for attempt in retrying(attempts=4, backoff=Backoff(base=1, jitter=False)):
        with attempt:
            last = attempt.last_exception
            seen.append((attempt.number, loop.time() - start, str(last) if last else None))
            if attempt.number < 4:
                raise ConnectError(f"refused {attempt.number}")
    assert seen == [(1, 0.0, None), (2, 1.0, "refused 1"), (3, 3.0, "refused 2"), (4, 7.0, "refused 3")]


@pytest.mark.looptime
async def test_retrying_raises_the_last_error_when_giving_up() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    calls = 0
    with pytest.raises(ConnectError, match="3"):
        async for attempt in retrying(attempts=3, backoff=Backoff(base=1, jitter=False)):
            with attempt:
                calls += 1
                raise ConnectError(str(calls))
    assert calls == 3
    assert loop.time() - start == pytest.approx(3.0)  # waited 1 + 2, not after the last one


async def test_retrying_does_not_retry_other_errors() -> None:
    calls = 0
    with pytest.raises(ValueError):
        async for attempt in retrying(attempts=5, on=ConnectError):
            with attempt:
                calls += 1
                raise ValueError
    assert calls == 1


@pytest.mark.looptime
async def test_retrying_honours_retry_after_from_the_exception() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    async for attempt in retrying(attempts=2, backoff=Backoff(base=100, jitter=False)):
        with attempt:
            if attempt.number == 1:
                raise RateLimited("2")
    assert loop.time() - start == pytest.approx(2.0)


@pytest.mark.looptime
async def test_cancelling_during_the_wait_stops_retrying() -> None:
    calls = 0

    async def job() -> None:
        nonlocal calls
        async for attempt in retrying(attempts=10, backoff=Backoff(base=10, jitter=False)):
            with attempt:
                calls += 1
                raise TimeoutError

    task = asyncio.create_task(job())
    await asyncio.sleep(5)  # inside the first 10 s wait
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(100)
    assert calls == 1


@pytest.mark.looptime
async def test_cancelled_error_inside_an_attempt_is_never_retried() -> None:
    calls = 0

    async def job() -> None:
        nonlocal calls
        async for attempt in retrying(attempts=10, on=BaseException):
            with attempt:
                calls += 1
                await asyncio.sleep(100)

    task = asyncio.create_task(job())
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1


@pytest.mark.looptime
async def test_retry_decorator() -> None:
    loop = asyncio.get_running_loop()
    calls: list[tuple[int, str]] = []

    @retry(attempts=3, on=TimeoutError, backoff=Backoff(base=0.5, jitter=False))
    async def fetch(n: int, *, label: str) -> str:
        calls.append((n, label))
        if len(calls) < 3:
            raise TimeoutError
        return f"{label}{n}"

    start = loop.time()
    assert await fetch(1, label="x") == "x1"
    assert calls == [(1, "x")] * 3
    assert loop.time() - start == pytest.approx(1.5)
    assert fetch.__name__ == "fetch"

    @retry(RetryPolicy(attempts=2))
    async def always_fails() -> None:
        raise ConnectError("down")

    with pytest.raises(ConnectError):
        await always_fails()


@pytest.mark.looptime
async def test_set_testing_removes_the_waits() -> None:
    loop = asyncio.get_running_loop()
    set_testing(True)
    start = loop.time()
    calls = 0
    async for attempt in retrying(attempts=5, backoff=Backoff(base=3600, jitter=False)):
        with attempt:
            calls += 1
            if calls < 5:
                raise TimeoutError
    assert calls == 5
    assert loop.time() - start == 0.0  # an hour-long backoff, not waited


def test_policy_and_keywords_do_not_mix() -> None:
    with pytest.raises(TypeError):
        retrying(RetryPolicy(), attempts=2)
    with pytest.raises(TypeError):
        retry(on=KeyError, retry_on=lambda exc: True)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
