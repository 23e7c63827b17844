"""HostPolicy as pure logic (no loop): limits, round robin, Retry-After parking, retries, rate, breaker."""

from __future__ import annotations

from surge.engine.hostpolicy import HostPolicy, origin_of
from surge.engine.items import WorkItem
from surge.engine.workqueue import Lease

_n = 0


def lease(url: str) -> Lease:
    global _n
    _n += 1
    return Lease(WorkItem(url, key=str(_n)), _n)


def test_origin_of() -> None:
    assert origin_of("http://H:80/a/b?c") == "http://h:80"
    assert origin_of("https://h?q=1") == "https://h"
    assert origin_of("http://h") == "http://h"


def test_per_host_limit_and_round_robin() -> None:
    p = HostPolicy(per_host=2)
    p.push_many([lease("http://a/1"), lease("http://a/2"), lease("http://a/3"), lease("http://b/1")])
    taken = [p.take(0.0) for _ in range(4)]
    urls = [t[1].item.url for t in taken if t is not None]
    # a gets 2 (its limit), b gets its one, then nothing: a is full.
    assert sorted(urls) == ["http://a/1", "http://a/2", "http://b/1"]
    assert taken[3] is None
    assert p.in_flight == 3 and p.queued == 1
    host_a = next(t[0] for t in taken if t is not None and t[0].key == "http://a")
    assert p.release(host_a, 0.1, rtt=0.1, status=200) is True  # room again: a is ready
    got = p.take(0.1)
    assert got is not None and got[1].item.url == "http://a/3"


def test_retry_after_parks_host_and_others_run_meanwhile() -> None:
    p = HostPolicy()
    p.push_many([lease("http://slow/1"), lease("http://slow/2"), lease("http://fast/1"), lease("http://fast/2")])
    got = p.take(0.0)
    assert got is not None and got[0].key == "http://slow"
    p.release(got[0], 0.0, status=429, retry_after=5.0)
    seen = []
    while (t := p.take(1.0)) is not None:
        seen.append(t[1].item.url)
    assert seen == ["http://fast/1", "http://fast/2"]  # slow/2 waits: its host is paused
    assert p.next_wake() == 5.0
    t = p.take(5.0)
    assert t is not None and t[1].item.url == "http://slow/2"


def test_delayed_retry_is_not_runnable_before_its_time() -> None:
    p = HostPolicy()
    first = lease("http://a/1")
    p.push(first)
    h, got = p.take(0.0)  # type: ignore[misc]
    p.release(h, 0.0, status=503)
    p.push(got, not_before=2.0, now=0.0)
    assert p.queued == 1
    assert p.take(1.9) is None
    assert p.next_wake() == 2.0
    again = p.take(2.0)
    assert again is not None and again[1] is first


def test_host_rate_spaces_requests() -> None:
    t = [0.0]
    p = HostPolicy(host_rate=2.0, clock=lambda: t[0])
    p.push_many([lease("http://a/1"), lease("http://a/2"), lease("http://b/1")])
    first = p.take(0.0)
    assert first is not None and first[0].key == "http://a"
    second = p.take(0.0)
    assert second is not None and second[0].key == "http://b"  # a is rate-limited: parked, b goes
    p.release(first[0], 0.0, status=200)
    assert p.take(0.0) is None
    wake = p.next_wake()
    assert wake is not None and 0.4 < wake <= 0.5
    t[0] = wake
    nxt = p.take(wake)
    assert nxt is not None and nxt[1].item.url == "http://a/2"


def test_adaptive_limit_shrinks_on_429() -> None:
    p = HostPolicy(per_host=10, adaptive=True, clock=lambda: 0.0)
    p.push_many([lease(f"http://a/{i}") for i in range(30)])
    taken = [p.take(0.0) for _ in range(10)]
    assert all(t is not None for t in taken) and p.take(0.0) is None
    h = taken[0][0]  # type: ignore[index]
    for _ in range(5):
        p.release(h, 0.0, rtt=0.01, status=429)
    assert h.limit < 10
    # With 5 still in flight and a lower limit, fewer new requests start.
    started = 0
    while p.take(0.0) is not None:
        started += 1
    assert 5 + started <= h.limit


def test_a_limit_that_shrinks_below_in_flight_stops_a_ready_host() -> None:
    # The host stays in the ready queue while its adaptive limit drops under what is in flight: take() must
    # not start more (it did, and the limiter's count then ran below the host's: a crash at release).
    p = HostPolicy(per_host=4, adaptive=True, clock=lambda: 0.0)
    p.push_many([lease(f"http://a/{i}") for i in range(10)])
    taken = [p.take(0.0) for _ in range(3)]
    h = taken[0][0]  # type: ignore[index]
    assert h.in_ready and h.in_flight == 3
    p.release(h, 0.0, rtt=0.01, status=503)
    assert h.in_flight == 2 and h.limit <= 2
    assert p.take(0.0) is None
    assert h.limiter is not None and h.limiter.in_flight == h.in_flight
    for _ in range(2):
        p.release(h, 0.0, rtt=0.01, status=200)
    got = p.take(0.0)
    assert got is not None and h.in_flight == 1 and h.limiter.in_flight == 1


def test_breaker_opens_fails_fast_then_probes() -> None:
    p = HostPolicy(breaker_threshold=3, breaker_cooldown=10.0)
    p.push_many([lease(f"http://dead/{i}") for i in range(10)])
    for _ in range(3):
        h, _l = p.take(0.0)  # type: ignore[misc]
        p.release(h, 0.0, error="connect")
    h, _l = p.take(1.0)  # type: ignore[misc]
    assert h.tripped == "connect" and p.in_flight == 0  # handed out to fail fast, not in flight
    # After the cooldown a single probe goes out; nothing else until it reports.
    probe = p.take(10.0)
    assert probe is not None and probe[0].tripped is None and probe[0].probing
    assert p.take(10.0) is None
    p.release(probe[0], 10.5, status=200)
    assert probe[0].fails == 0 and not probe[0].probing
    assert p.take(10.5) is not None


def test_failed_probe_doubles_the_cooldown() -> None:
    p = HostPolicy(breaker_threshold=1, breaker_cooldown=10.0)
    p.push_many([lease(f"http://dead/{i}") for i in range(5)])
    h, _l = p.take(0.0)  # type: ignore[misc]
    p.release(h, 0.0, error="dns")
    probe = p.take(10.0)
    assert probe is not None
    p.release(probe[0], 10.0, error="dns")
    assert h.tripped == "dns" and h.open_until == 30.0


def test_idle_hosts_are_forgotten() -> None:
    p = HostPolicy(per_host=4)
    for i in range(100):
        p.push(lease(f"http://h{i}/"))
        h, _l = p.take(0.0)  # type: ignore[misc]
        p.release(h, 0.0, status=200)
    assert len(p.hosts) == 0


def test_untake_and_drain() -> None:
    p = HostPolicy(per_host=1)
    a = lease("http://a/1")
    p.push(a)
    p.push(lease("http://a/2"), not_before=5.0)
    h, got = p.take(0.0)  # type: ignore[misc]
    p.untake(h, got)
    assert p.in_flight == 0 and p.queued == 2
    assert {x.item.url for x in p.drain()} == {"http://a/1", "http://a/2"}
    assert p.queued == 0 and p.take(10.0) is None


def test_an_untaken_lease_is_taken_again_first_and_teaches_the_limit_nothing() -> None:
    p = HostPolicy(per_host=4, adaptive=True)
    p.push(lease("http://a/1"))
    h, only = p.take(0.0)  # type: ignore[misc]
    assert h.limiter is not None and h.limiter.in_flight == 1 and not h.in_ready
    learned = h.limiter.limit
    p.untake(h, only, 0.0)
    assert h.limiter.in_flight == 0 and h.limiter.limit == learned
    again = p.take(0.0)  # its host is ready again
    assert again is not None and again[1] is only


def test_an_origins_own_rate_holds_and_outlives_the_forgotten_host() -> None:
    clock = [0.0]
    p = HostPolicy(host_rate=100.0, clock=lambda: clock[0])
    p.set_host_rate("HTTP://a", 2.0)  # a robots.txt Crawl-delay of 0.5 s; the lower rate holds
    p.set_host_rate("http://b", 1000.0)
    p.push_many([lease("http://a/1"), lease("http://a/2"), lease("http://b/1"), lease("http://b/2")])
    first = [p.take(0.0) for _ in range(3)]
    assert sorted(t[1].item.url for t in first if t is not None) == ["http://a/1", "http://b/1"]
    clock[0] = 0.01
    b2 = p.take(0.01)  # b: 100/s, host_rate being the lower
    assert b2 is not None and b2[1].item.url == "http://b/2"
    clock[0] = 0.49
    assert p.take(0.49) is None
    clock[0] = 0.5
    later = p.take(0.5)
    assert later is not None and later[1].item.url == "http://a/2"
    assert p.host_rates == {"http://a": 2.0, "http://b": 100.0}
