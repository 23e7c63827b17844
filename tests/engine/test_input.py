"""Input parsing: plain URLs, JSON lines, comments, bad lines, lazy -n repetition, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from surge.engine.input import (
    MAX_INVALID_LINE,
    ArgsSource,
    FileSource,
    IterSource,
    RequestDefaults,
    check_url,
    parse_line,
)
from surge.engine.items import WorkItem
from surge.errors import ConfigError, InvalidURL


def test_parse_plain_and_json_lines() -> None:
    d = RequestDefaults("get", [("A", "1")], b"x")
    item = parse_line("  http://h/p  \n", "7", d)
    assert item == WorkItem("http://h/p", "GET", (("A", "1"),), b"x", "7")
    assert parse_line("", "1", d) is None
    assert parse_line("# comment", "1", d) is None
    j = parse_line('{"url": "https://h/x", "method": "post", "headers": {"B": "2"}, "body": "hi", "key": 9}',
                   "3", d)
    assert j == WorkItem("https://h/x", "POST", (("A", "1"), ("B", "2")), b"hi", "9")
    b = parse_line('{"url": "http://h/", "body_base64": "AAE=", "headers": [["C", "3"]]}', "4", d)
    assert b is not None and b.body == b"\x00\x01" and b.headers[-1] == ("C", "3")


@pytest.mark.parametrize("line, match", [
    ("ftp://h/", "scheme"),
    ("http:///nohost", "no host"),
    ("http://h:99999/", "invalid URL"),
    ("notaurl", "scheme"),
    ('{"url": 5}', "url"),
    ('{"url": "http://h/", "headers": 5}', "headers"),
    ("{not json", "not JSON"),
])
def test_bad_lines_name_the_place(line: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        parse_line(line, "12", RequestDefaults(), "urls.txt:12")
    assert "urls.txt:12" in str(info.value)


def test_check_url() -> None:
    assert check_url("http://[::1]:8080/x") == "http://[::1]:8080/x"
    with pytest.raises(InvalidURL):
        check_url("http://h:0/")


def test_check_url_remembers_only_valid_origins() -> None:
    import surge.engine.input as inp

    urls = ["http://h/a", "http://h?q", "http://h#f", "http://h", "http://h:0/", "http://h:x/a", "ftp://h/a",
            "http://[::1/a", "http:///a", "http://h:8/a", "https://h/a", "HTTP://H/a", "http:/h/a://b/c",
            "http://h:99999/a", "http://h@/a"]

    def verdicts() -> list[bool]:
        out = []
        for u in urls:
            try:
                out.append(check_url(u) == u)
            except InvalidURL:
                out.append(False)
        return out

    inp._VALID_PREFIXES.clear()
    inp._last_valid = "\0"
    first = verdicts()  # each URL checked in full, valid prefixes remembered
    assert first == verdicts()  # the same answers from the remembered prefixes
    assert first.count(True) == 7
    assert "http://h" in inp._VALID_PREFIXES and "http://h:0" not in inp._VALID_PREFIXES


async def test_args_source_repeats_lazily_and_resumes() -> None:
    src = ArgsSource(["http://a/", "http://b/"], count=5)
    assert src.total == 5
    first = await src.read(3)
    assert [(i.url, i.key) for i in first] == [("http://a/", "1"), ("http://b/", "2"), ("http://a/", "3")]
    cp = src.checkpoint()
    again = ArgsSource(["http://a/", "http://b/"], count=5)
    again.restore(cp)
    assert [i.key for i in await again.read(10)] == ["4", "5"]
    assert await again.read(10) == []
    forever = ArgsSource(["http://a/"], forever=True)
    assert forever.total is None and len(await forever.read(1000)) == 1000


async def test_file_source_keys_are_line_numbers_and_offsets_resume(tmp_path: Path) -> None:
    f = tmp_path / "in.txt"
    f.write_text("http://h/1\n\n# skip\nhttp://h/4\nhttp://h/5\n")
    src = FileSource(str(f))
    items = await src.read(1)
    assert [(i.url, i.key) for i in items] == [("http://h/1", "1")]
    cp = src.checkpoint()
    src.close()
    src2 = FileSource(str(f))
    src2.restore(cp)
    assert [(i.url, i.key) for i in await src2.read(10)] == [("http://h/4", "4"), ("http://h/5", "5")]
    assert await src2.read(10) == []
    src2.close()


def test_file_source_unreadable_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        FileSource(str(tmp_path / "missing.txt"))


async def test_file_source_lines_that_are_not_requests_become_invalid_items(tmp_path: Path) -> None:
    f = tmp_path / "in.txt"
    long = "x" * 5000
    f.write_bytes(b"http://h/1\nbad line\n" + b'{"url": 5, "key": "k9"}\n' + b"\xff\xfe\n"
                  + long.encode() + b"\n# comment\nhttp://h/2\n")
    src = FileSource(str(f))
    items = await src.read(10)
    assert [(i.key, i.invalid is not None) for i in items] == [
        ("1", False), ("2", True), ("k9", True), ("4", True), ("5", True), ("7", False)]
    # The line as read is the item's url (cut at MAX_INVALID_LINE), the reason names the place.
    assert items[1].url == "bad line" and items[1].invalid is not None and "in.txt:2" in items[1].invalid
    assert items[2].url == '{"url": 5, "key": "k9"}' and "url" in (items[2].invalid or "")
    assert items[3].url == "\ufffd\ufffd" and "not UTF-8" in (items[3].invalid or "")
    assert items[4].url == long[:MAX_INVALID_LINE]
    assert src.invalid == 4 and src.first_invalid is not None and src.first_invalid.startswith(str(f) + ":2:")
    assert src.checkpoint()["line"] == 7  # past the bad lines: a rerun does not stop on them
    assert await src.read(10) == []
    src.close()


async def test_iter_source_marks_a_bad_string_invalid() -> None:
    src = IterSource(["http://h/1", "mailto:a@b", "http://h/3"])
    items = await src.read(10)
    assert [(i.key, i.url, i.invalid is not None) for i in items] == [
        ("1", "http://h/1", False), ("2", "mailto:a@b", True), ("3", "http://h/3", False)]


async def test_iter_source_sync_and_async() -> None:
    src = IterSource(["http://h/1", WorkItem("http://h/2", key="k")])
    assert [i.key for i in await src.read(10)] == ["1", "k"]

    async def gen():  # type: ignore[no-untyped-def]
        for i in range(5):
            yield f"http://h/{i}"

    asrc = IterSource(gen())
    assert len(await asrc.read(3)) == 3
    assert len(await asrc.read(3)) == 2
    assert await asrc.read(3) == []


async def test_file_source_skips_an_over_long_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import surge.engine.input as input_mod

    monkeypatch.setattr(input_mod, "MAX_LINE", 64)
    f = tmp_path / "in.txt"
    f.write_text("http://h/1\n" + "http://h/" + "a" * 300 + "\n" + "http://h/3\n" + "b" * 100)
    src = FileSource(str(f))
    items = await src.read(10)
    assert [(i.key, i.invalid is not None) for i in items] == [("1", False), ("2", True), ("3", False),
                                                                ("4", True)]
    assert "line longer than 64 bytes" in (items[1].invalid or "") and len(items[1].url) == 64
    assert src.checkpoint() == {"line": 4, "offset": f.stat().st_size}  # the skipped bytes are counted
    assert await src.read(10) == []
    src.close()


@pytest.mark.parametrize("url", ["http://a b/", "http://a\x00b/", "http://%zz/", "http://[::1]x/",
                                 "http://h<o>st/", "http://" + "a" * 10 + "/" + "b" * (64 * 1024)])
def test_urls_no_server_can_be_are_not_requests(url: str) -> None:
    # urlsplit accepts these; a DNS query for them would record a misleading "dns" outcome.
    with pytest.raises(InvalidURL):
        check_url(url)


@pytest.mark.parametrize("url", ["http://[::1]:8080/x", "http://bücher.de/", "http://u:p@h.example:80/",
                                 "http://127.0.0.1/?q=a b", "https://xn--bcher-kva.de/"])
def test_unusual_but_valid_hosts_pass(url: str) -> None:
    assert check_url(url) == url
