"""The frontier's decisions: scope, traps, depth, budget, each URL once (pure logic, no I/O)."""

from __future__ import annotations

import pytest

from surge.crawl.frontier import MAX_PATH_SEGMENTS, Frontier, Scope, trap_reason
from surge.errors import ConfigError

SEEDS = ["http://www.example.com/docs/index.html", "http://127.0.0.1:8080/site/"]


@pytest.mark.parametrize("mode, url, allowed", [
    ("host", "http://www.example.com/other", True),
    ("host", "https://www.example.com/other", True),      # http and https of one host: one site
    ("host", "http://example.com/", False),
    ("host", "http://127.0.0.1:8080/x", True),
    ("host", "http://127.0.0.1:8081/x", False),            # another port is another origin
    ("host", "http://localhost:8080/x", False),
    ("domain", "http://example.com/", True),               # www. dropped: the domain and its subdomains
    ("domain", "http://docs.example.com/a", True),
    ("domain", "http://notexample.com/", False),
    ("domain", "http://127.0.0.1:9999/", True),            # any port
    ("prefix", "http://www.example.com/docs/a/b.html", True),
    ("prefix", "http://www.example.com/blog/", False),
    ("prefix", "http://127.0.0.1:8080/site/p/1", True),
    ("any", "http://anything.invalid/", True),
])
def test_scope_modes(mode: str, url: str, allowed: bool) -> None:
    assert Scope(SEEDS, mode).allows(url) is allowed


def test_include_and_exclude() -> None:
    scope = Scope(SEEDS, "host", include=[r"/site/"], exclude=[r"/private/", r"\.pdf$"])
    assert scope.allows("http://127.0.0.1:8080/site/p/1")
    assert not scope.allows("http://127.0.0.1:8080/other")          # include: must match one
    assert not scope.allows("http://127.0.0.1:8080/site/private/1")
    assert not scope.allows("http://127.0.0.1:8080/site/a.pdf")


@pytest.mark.parametrize("bad", [{"mode": "galaxy"}, {"include": ["("]}])
def test_bad_scope_is_a_config_error(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Scope(SEEDS, **bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("url, reason", [
    ("http://h/a/b/c?x=1", None),
    ("http://h/", None),
    ("http://h" + "".join(f"/s{i}" for i in range(MAX_PATH_SEGMENTS)), None),
    ("http://h" + "".join(f"/s{i}" for i in range(MAX_PATH_SEGMENTS + 1)), "path_depth"),
    ("http://h/cal/2024/cal/2025/cal/2026", "repeated_segment"),
    ("http://h/a/b/a/b?a=a&a=a&a=a", None),                 # the query is not the path
])
def test_trap_shapes(url: str, reason: str | None) -> None:
    assert trap_reason(url) == reason


def test_each_url_once_with_depth_budget_and_reasons() -> None:
    f = Frontier(Scope(SEEDS, "host"), depth=2, max_pages=5)
    seeds = f.seeds(["http://127.0.0.1:8080/site/", "HTTP://127.0.0.1:8080/site/#top"])
    assert [(s.url, s.key, s.depth) for s in seeds] == [("http://127.0.0.1:8080/site/", "1", 0)]
    links = ["http://127.0.0.1:8080/site/p/1", "http://127.0.0.1:8080/site/p/1", "http://other/",
             "http://127.0.0.1:8080/c/c/c", "http://127.0.0.1:8080/site/p/2"]
    new = f.admit(links, depth=1, parent="http://127.0.0.1:8080/site/")
    assert [(i.url, i.key, i.depth, i.parent) for i in new] == [
        ("http://127.0.0.1:8080/site/p/1", "2", 1, "http://127.0.0.1:8080/site/"),
        ("http://127.0.0.1:8080/site/p/2", "3", 1, "http://127.0.0.1:8080/site/"),
    ]
    assert f.admit(["http://127.0.0.1:8080/site/p/9"], depth=3, parent="x") == []
    more = f.admit([f"http://127.0.0.1:8080/site/q/{i}" for i in range(5)], depth=2, parent="x")
    assert len(more) == 2 and f.admitted == 5  # the budget counts the seed
    assert dict(f.counts) == {"duplicate": 1, "out_of_scope": 1, "trap": 1, "too_deep": 1, "over_budget": 3}


def test_restore_continues_keys_and_skips_known_urls() -> None:
    f = Frontier(Scope(SEEDS, "host"), depth=None)
    f.seeds([SEEDS[1]])
    f.restore([SEEDS[1], "http://127.0.0.1:8080/site/p/1", "http://127.0.0.1:8080/site/p/2"])
    new = f.admit(["http://127.0.0.1:8080/site/p/2", "http://127.0.0.1:8080/site/p/3"], depth=1, parent="x")
    assert [(i.url, i.key) for i in new] == [("http://127.0.0.1:8080/site/p/3", "4")]


@pytest.mark.parametrize("bad", [{"depth": -1}, {"max_pages": 0}])
def test_bad_limits_are_config_errors(bad: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        Frontier(Scope(SEEDS), **bad)  # type: ignore[arg-type]


def test_a_seed_that_is_no_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not an http"):
        Frontier(Scope(SEEDS)).seeds(["javascript:alert(1)"])
