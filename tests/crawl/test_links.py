"""Link extraction: which links of a page the crawler takes, in what order, and that no page can break it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from surge.crawl.links import MAX_LINKS, extract_links
from surge.crawl.urls import canonicalize

PAGE = "http://127.0.0.1:8080/site/p/3"


def links(html: str | bytes, page_url: str = PAGE, **kwargs: int) -> list[str]:
    found, nofollow = extract_links(html, page_url, **kwargs)
    assert not nofollow
    return found


def test_a_and_area_links_in_document_order_each_once() -> None:
    html = """<html><head><title>t</title></head><body>
      <a href="../p/7">seven</a>
      <map name="m"><area shape="rect" href="/img/1" alt="x"></map>
      <a href="http://OTHER.example:80/x?b=2&amp;a=1#top">other</a>
      <a href="7">seven again, spelled otherwise</a>
      <p><a href="/site/p/./7#f">and again</a></p>
      <a href="//cdn.example/js">cdn</a>
      <link rel="next" href="/not-a-link"><img src="/not-a-link-either.png">
    </body></html>"""
    assert links(html) == [
        "http://127.0.0.1:8080/site/p/7",
        "http://127.0.0.1:8080/img/1",
        "http://other.example/x?a=1&b=2",
        "http://cdn.example/js",
    ]


def test_links_that_go_nowhere_are_skipped() -> None:
    html = """<a>no href</a><a href>valueless</a><a href="">empty</a><a href="  ">blank</a>
      <a href="#top">fragment</a><a href="javascript:void(0)">js</a><a href=" JavaScript:go()">js</a>
      <a href="mailto:a@b.example">mail</a><a href="tel:+1">tel</a><a href="ftp://h/f">ftp</a>
      <a href="data:text/html,hi">data</a><a href="http://h:99999/">bad port</a><a href="http://[::1">bad</a>
      <a href="/kept">kept</a>"""
    assert links(html) == ["http://127.0.0.1:8080/kept"]


def test_base_href_is_the_base_of_relative_links() -> None:
    html = """<head><base target="_blank"><base href="/docs/v2/"><base href="http://ignored.example/">
      </head><a href="intro">intro</a><a href="../v1/old">old</a><a href="//h2.example/x">abs</a>"""
    assert links(html) == [
        "http://127.0.0.1:8080/docs/v2/intro",
        "http://127.0.0.1:8080/docs/v1/old",
        "http://h2.example/x",
    ]
    elsewhere = '<base href="https://Mirror.example/a/b"><a href="c?y=1&x=2">c</a>'
    assert links(elsewhere) == ["https://mirror.example/a/c?x=2&y=1"]


def test_an_unusable_base_leaves_the_page_url_as_base() -> None:
    for base in ["javascript:void(0)", "", "http://h:99999/"]:
        assert links(f'<base href="{base}"><a href="q">q</a>') == ["http://127.0.0.1:8080/site/p/q"]


def test_rel_nofollow_links_are_ignored() -> None:
    html = """<a href="/a" rel="nofollow">a</a><a href="/b" rel="NoFollow">b</a>
      <a href="/c" rel="noopener  nofollow noreferrer">c</a><a href="/d" rel="nofollowing">d</a>
      <a href="/e" rel="noopener">e</a><area href="/f" rel="nofollow"><a href="/a">a, followable here</a>"""
    assert links(html) == [
        "http://127.0.0.1:8080/d",
        "http://127.0.0.1:8080/e",
        "http://127.0.0.1:8080/a",
    ]


def test_robots_meta_nofollow_means_no_links() -> None:
    for meta in ['<meta name="robots" content="noindex, nofollow">',
                 '<meta name="ROBOTS" content="NOFOLLOW">',
                 '<meta name="Robots" content="none">',
                 '<meta content="index,nofollow" name="robots">']:
        assert extract_links(f"<head>{meta}</head><a href='/x'>x</a>", PAGE) == ([], True)
    for meta in ['<meta name="robots" content="noindex">',
                 '<meta name="robots">',
                 '<meta name="googlebot" content="nofollow">',
                 '<meta name="robots" content="nonesuch, nofollowing">']:
        assert extract_links(f"<head>{meta}</head><a href='/x'>x</a>", PAGE) == (
            ["http://127.0.0.1:8080/x"], False)
    assert extract_links('<meta name="robots" content="none">', PAGE, limit=0) == ([], True)


def test_limit_keeps_the_first_distinct_links() -> None:
    html = "".join(f'<a href="/{i % 5}">x</a>' for i in range(50))
    assert links(html, limit=3) == [f"http://127.0.0.1:8080/{i}" for i in range(3)]
    assert len(links(html, limit=5)) == 5
    assert len(links(html)) == 5
    assert links(html, limit=0) == []


def test_bytes_are_decoded_by_the_parser() -> None:
    utf8 = '<a href="/résumé">r</a><a href="/naïve?q=é">n</a>'.encode()
    assert links(utf8) == ["http://127.0.0.1:8080/r%C3%A9sum%C3%A9", "http://127.0.0.1:8080/na%C3%AFve?q=%C3%A9"]
    legacy = '<meta charset="windows-1251"><a href="/привет">hi</a>'.encode("cp1251")
    assert links(legacy) == ["http://127.0.0.1:8080/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82"]
    broken = b'<a href="/ok\xff\xfe">bad bytes</a><a href="/\xc3">cut</a><a href="/next">n</a>'
    found = links(broken)
    assert len(found) == 3 and found[-1] == "http://127.0.0.1:8080/next"


def test_malformed_document() -> None:
    html = """<html><body><div><p>unclosed <b>bold <a href=/a>one<a href=/b?x=1&y=2>two
      <table><tr><td><a HREF='/c' REL=NOFOLLOW>c</a><td><AREA href=/d><a href="/e
      """
    assert links(html) == ["http://127.0.0.1:8080/a", "http://127.0.0.1:8080/b?x=1&y=2",
                           "http://127.0.0.1:8080/d"]
    assert links("<a href='/x'") == []
    assert links("</a></a><a/href=/y>") == ["http://127.0.0.1:8080/y"]  # "/" separates attributes too
    assert links("<!-- <a href=/hidden> --><script>'<a href=/in-script>'</script><a href=/z>") == [
        "http://127.0.0.1:8080/z"]


def test_a_link_farm_gives_max_links() -> None:
    # About 5 MB, 200,000 distinct links: the first MAX_LINKS are taken, the rest not even resolved.
    html = "<html><body>" + "".join(f"<a href=/farm/{i}>{i}</a>\n" for i in range(200_000)) + "</body></html>"
    assert len(html) > 5_000_000
    found = links(html)
    assert len(found) == MAX_LINKS
    assert found[0] == "http://127.0.0.1:8080/farm/0"
    assert found[-1] == f"http://127.0.0.1:8080/farm/{MAX_LINKS - 1}"


def check(found: list[str], nofollow: bool, limit: int = MAX_LINKS) -> None:
    assert isinstance(nofollow, bool)
    assert len(found) == len(set(found)) <= limit
    assert all(canonicalize(url) == url for url in found)
    assert not (nofollow and found)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([PAGE, "https://[::1]/", "not a url", ""]))
def test_any_bytes_parse(html: bytes, page_url: str) -> None:
    check(*extract_links(html, page_url))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_any_text_parses(html: str) -> None:
    check(*extract_links(html, PAGE))


# Markup-shaped text: tags, attributes and quotes in any order, closed or not.
MARKUP = ["<a href=", "<a href='", '<a href="', "<area href=", "<base href=", "<meta name=robots content=",
          "nofollow", "none", " rel=nofollow", "'", '"', ">", "</a>", "<", "/", "../", "?", "#", "&amp;", "=",
          "javascript:", "http://", "https://", "//", "[::1]", ":8080", "x", "é", "\x00", "\n", "<!--", "-->",
          "<script>", "<template>", "<svg>", "<table>", "<p>"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(MARKUP), st.text(max_size=3)), max_size=60).map("".join),
       st.integers(min_value=0, max_value=5))
def test_any_markup_parses(html: str, limit: int) -> None:
    check(*extract_links(html, PAGE, limit=limit), limit=limit)


def test_sitemaps_plain_gzipped_indexed_escaped_and_cut_short() -> None:
    import gzip

    from surge.crawl.links import extract_sitemap, is_sitemap

    base = "http://127.0.0.1:8080/sitemap.xml"
    doc = (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
           b"<url><loc> http://127.0.0.1:8080/a?x=1&amp;y=2 </loc></url>"
           b"<url><loc><![CDATA[http://127.0.0.1:8080/b]]></loc></url>"
           b"<url><loc>http://127.0.0.1:8080/a?y=2&amp;x=1</loc></url>"  # the first one again
           b"<url><loc>javascript:alert(1)</loc></url></urlset>")
    want = ["http://127.0.0.1:8080/a?x=1&y=2", "http://127.0.0.1:8080/b"]
    assert is_sitemap(doc) and extract_sitemap(doc, base) == want
    assert is_sitemap(gzip.compress(doc)) and extract_sitemap(gzip.compress(doc), base) == want
    index = b"<sitemapindex><sitemap><loc>http://127.0.0.1:8080/s2.xml.gz</loc></sitemap></sitemapindex>"
    assert is_sitemap(index) and extract_sitemap(index, base) == ["http://127.0.0.1:8080/s2.xml.gz"]
    cut = doc[:doc.index(b"<![CDATA[")]  # cut short in the second entry: the first is there
    assert extract_sitemap(cut, base) == ["http://127.0.0.1:8080/a?x=1&y=2"]
    assert not is_sitemap(b"<html><body>urlset</body></html>") and not is_sitemap(b"\x1f\x8bnot gzip")


def test_a_gzip_bomb_sitemap_stops_at_the_size_limit() -> None:
    import zlib

    from surge.crawl.links import MAX_SITEMAP_BYTES, extract_sitemap

    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = b"<urlset><url><loc>http://h/1</loc></url>"
    bomb = c.compress(head) + c.compress(b" " * (MAX_SITEMAP_BYTES * 4)) + \
        c.compress(b"<url><loc>http://h/2</loc></url></urlset>") + c.flush()
    assert len(bomb) < MAX_SITEMAP_BYTES // 100
    assert extract_sitemap(bomb, "http://h/s.xml.gz") == ["http://h/1"]  # the rest lies past the limit
