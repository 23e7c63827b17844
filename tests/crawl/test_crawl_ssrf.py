"""A crawl's links and redirects cannot walk from a public page into a private network; its seeds always go.

PrivateGuard's rules against a fake client, then the real ``surge crawl`` in a network namespace where 1.2.3.4
and 5.6.7.8 stand for the internet (tests/http/ssrf_netns.py).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from surge.crawl import Crawler, PrivateGuard, canonicalize
from surge.engine.hostpolicy import origin_of
from surge.engine.items import WorkItem


def _netns() -> Any:
    # The namespace helper lives with the client's SSRF tests; it is loaded from there, by path.
    path = Path(__file__).parents[1] / "http" / "ssrf_netns.py"
    spec = importlib.util.spec_from_file_location("ssrf_netns_for_crawl", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ssrf_netns = _netns()
SURGE = str(Path(sys.executable).with_name("surge"))
SEED = "http://127.0.0.1:8080/"


class FakeClient:
    """Answers peer_class from a table by origin, and records what it is asked to send."""

    def __init__(self, classes: dict[str, str]) -> None:
        self.classes = classes
        self.sent: list[tuple[str, str, bool]] = []

    def peer_class(self, url: str) -> str | None:
        return self.classes.get(origin_of(url))

    def submit(self, method: str, url: str, ticket: Any, keep_body: bool = True) -> bool:
        self.sent.append(("submit", url, False))
        return True

    async def request(self, method: str, url: str, **kw: Any) -> str:
        self.sent.append(("request", url, kw.get("refuse_private", False)))
        return "response"


def items(*urls: str) -> list[WorkItem]:
    return [WorkItem(u) for u in urls]


def guard_for(classes: dict[str, str]) -> tuple[PrivateGuard, FakeClient]:
    client = FakeClient(classes)
    return PrivateGuard(client, client, [SEED]), client


async def test_seeds_and_links_from_private_pages_go_as_they_are() -> None:
    guard, client = guard_for({"http://127.0.0.1:8080": "private"})
    guard.found(SEED, items("http://10.0.0.1/a", "http://8.8.8.8/b"))
    assert not guard.guarded(SEED)
    assert not guard.guarded("http://10.0.0.1/a") and not guard.guarded("http://8.8.8.8/b")
    assert guard.submit("GET", "http://10.0.0.1/a", None)
    assert await guard.request("GET", SEED) == "response"
    assert client.sent == [("submit", "http://10.0.0.1/a", False), ("request", SEED, False)]


@pytest.mark.parametrize("page_class", ["public", "mixed", None], ids=["public", "mixed", "unknown"])
async def test_links_from_a_page_not_known_private_are_guarded(page_class: str | None) -> None:
    page = "http://5.6.7.8/page"
    guard, client = guard_for({"http://5.6.7.8": page_class} if page_class else {})
    guard.found(page, items("http://127.0.0.1:8080/x", "http://1.2.3.4/y"))
    assert guard.guarded("http://127.0.0.1:8080/x") and guard.guarded("http://1.2.3.4/y")
    # A guarded URL takes the request path, with refuse_private: the client judges the addresses it reaches.
    assert not guard.submit("GET", "http://127.0.0.1:8080/x", None)
    await guard.request("GET", "http://127.0.0.1:8080/x", keep_body=False)
    assert client.sent == [("request", "http://127.0.0.1:8080/x", True)]


def test_a_url_done_or_queued_by_an_earlier_run_goes_by_its_host() -> None:
    guard, _ = guard_for({"http://5.6.7.8": "public"})
    guard.found("http://5.6.7.8/page", items("http://127.0.0.1:8080/x"))
    guard.done("http://127.0.0.1:8080/x")
    # No record (done, or restored from --state): on a seed's host it goes as the seeds do, elsewhere guarded.
    assert not guard.guarded("http://127.0.0.1:8080/x")
    assert not guard.guarded("http://127.0.0.1:9999/other-port")
    assert guard.guarded("http://10.0.0.1/x") and guard.guarded("http://5.6.7.8/y")


def test_the_guard_is_wired_unless_private_is_allowed() -> None:
    client = FakeClient({})
    crawler = Crawler([SEED])
    assert crawler.wrap(client) is crawler.guard and crawler.guard is not None
    assert Crawler([SEED], robots=False).wrap(client).__class__ is PrivateGuard
    allowed = Crawler([SEED], allow_private=True)
    assert allowed.wrap(client) is allowed.gate and allowed.guard is None
    # No peer_class: not a surge Client, no guard.
    assert Crawler([SEED], robots=False).wrap(object()).__class__ is object


# -- in a namespace ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("allow", [False, True], ids=["guarded", "allow-private"])
def test_surge_crawl_in_namespace(tmp_path: Path, allow: bool) -> None:
    seed = f"{ssrf_netns.REDIRECTOR}/site/"
    flags = ["--allow-private"] if allow else []
    done = ssrf_netns.run(tmp_path, [SURGE, "crawl", seed, "--scope", "any", "-d", "2", "-o", "pages.jsonl",
                                     "--no-progress", *flags])
    assert done.returncode == 0, done.stderr
    got = ssrf_netns.records(tmp_path / "pages.jsonl")
    assert got[seed]["status"] == 200
    for name in ssrf_netns.TARGETS:
        link = got[canonicalize(ssrf_netns.target(name, "link"))]
        hop = got[canonicalize(f"{ssrf_netns.REDIRECTOR}/to/{name}/redirect")]
        target = got[canonicalize(ssrf_netns.target(name, "redirect"))]
        assert (link["parent"], hop["status"], target["parent"]) == (seed, 302, hop["url"])
        if allow or name in ssrf_netns.PUBLIC_TARGETS:
            assert (link["status"], target["status"]) == (200, 200), name
        else:
            # One record each, nothing sent.
            assert (link["error"], link["attempts"], target["error"], target["attempts"]) == \
                ("blocked", 0, "blocked", 0), name
    private = sorted(r["path"] for r in ssrf_netns.requests_seen(tmp_path) if r["server"] == "private")
    if allow:
        pages = [f"/{name}/{how}" for name in ssrf_netns.PRIVATE_TARGETS for how in ("link", "redirect")]
        assert sorted(p for p in private if p != "/robots.txt") == sorted(pages)  # each page once
        assert "/robots.txt" in private
    else:
        assert private == []  # not a page, not a robots.txt
