"""Redirects cannot walk from a public address into a private network; the URLs asked for are never refused.

The address classes are tested in test_address_class.py. What the client does with them is tested here in two
places: on 127.0.0.1 (every address there is private: nothing is refused), and in a network namespace where
1.2.3.4 and 5.6.7.8 stand for the internet (ssrf_netns.py), with the real ``surge fetch``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import ssrf_netns
from ssrf_client_checks import go

from surge.errors import BlockedAddress
from surge.http import Client

SURGE = str(Path(sys.executable).with_name("surge"))
CHECKS = str(Path(__file__).with_name("ssrf_client_checks.py"))


# -- on 127.0.0.1: everything is private, nothing is refused ----------------------------------------------


async def test_urls_asked_for_and_local_redirects_are_never_refused(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    async with Client() as c:
        assert c.peer_class(server + "/headers") is None  # no connection yet
        assert (await c.request("GET", server + "/headers")).status == 200
        assert c.peer_class(server + "/headers") == "private"
        for spelling in ("localhost", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]"):
            url = f"{server}/redirect-to?url={quote(f'http://{spelling}:{port}/headers', safe='')}"
            r = await c.request("GET", url)
            assert (r.status, len(r.history)) == (200, 1), spelling


async def test_refuse_private_refuses_even_a_url_asked_for(server: str) -> None:
    async with Client() as c:
        with pytest.raises(BlockedAddress):
            await c.request("GET", server + "/headers", refuse_private=True)
        assert c.statistics().opened == 0
        assert (await c.request("GET", server + "/headers")).status == 200
        with pytest.raises(BlockedAddress):  # nor over the connection kept alive from the request before
            await c.request("GET", server + "/headers", refuse_private=True)
        assert c.statistics().requests == 1


# -- in a namespace: 1.2.3.4 and 5.6.7.8 are the internet -------------------------------------------------


def private_paths(workdir: Path) -> list[str]:
    return [r["path"] for r in ssrf_netns.requests_seen(workdir) if r["server"] == "private"]


@pytest.mark.slow
def test_client_in_namespace(tmp_path: Path) -> None:
    done = ssrf_netns.run(tmp_path, [sys.executable, CHECKS])
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got == {
        "direct-loopback": 200,
        "direct-metadata": 200,
        "direct-name": 200,
        "pooled-name": "BlockedAddress",  # a connection kept alive to 127.0.0.1 is not reused for it
        "public-to-public": 200,
        "private-to-private": 200,
        "private-public-private": "BlockedAddress",  # public -> private, whatever came before
        "refuse-private": "BlockedAddress",
        "refuse-private-public": 200,
        "peer-class": ["public", "private", None],
        "table-name": "BlockedAddress",
        "table-v6": "BlockedAddress",
        "table-mixed": 200,  # the public address of the two
        "allow-private": 200,
        "deny-private-direct": "BlockedAddress",
        "deny-private-mapped": "BlockedAddress",
        "deny-private-public": 200,
    }
    # What was refused never reached the private server: the guard stopped it, not a failed connection.
    back = go(ssrf_netns.REDIRECTOR, "http://127.0.0.1:8080/back")
    assert private_paths(tmp_path) == ["/direct", "/direct", "/warm", go("", "http://[::1]:8080/p2p"), "/p2p",
                                       go("", back), "/allowed"]


def fetch_urls() -> list[str]:
    redirects = [f"{ssrf_netns.REDIRECTOR}/to/{name}/redirect" for name in ssrf_netns.TARGETS]
    direct = [ssrf_netns.target(name, "direct") for name in ("loopback", "metadata", "name", "decimal")]
    return redirects + direct


@pytest.mark.slow
@pytest.mark.parametrize("allow", [False, True], ids=["guarded", "allow-private"])
def test_surge_fetch_in_namespace(tmp_path: Path, allow: bool) -> None:
    (tmp_path / "urls.txt").write_text("\n".join(fetch_urls()) + "\n")
    flags = ["--allow-private"] if allow else []
    done = ssrf_netns.run(tmp_path, [SURGE, "fetch", "-i", "urls.txt", "-o", "out.jsonl", "--no-progress",
                                     *flags])
    assert done.returncode == 0, done.stderr
    got = ssrf_netns.records(tmp_path / "out.jsonl")
    assert len(got) == len(fetch_urls())
    for name in ssrf_netns.TARGETS:
        r = got[f"{ssrf_netns.REDIRECTOR}/to/{name}/redirect"]
        if allow or name in ssrf_netns.PUBLIC_TARGETS:
            want = (200, None, ssrf_netns.target(name, "redirect"))
            assert (r["status"], r["error"], r["final_url"]) == want, name
        else:
            assert (r["status"], r["error"]) == (None, "blocked"), name
    for name in ("loopback", "metadata", "name", "decimal"):  # asked for: never refused
        assert got[ssrf_netns.target(name, "direct")]["status"] == 200
    reached = sorted(p for p in private_paths(tmp_path) if p.endswith("/redirect"))
    assert reached == (sorted(f"/{n}/redirect" for n in ssrf_netns.PRIVATE_TARGETS) if allow else [])
