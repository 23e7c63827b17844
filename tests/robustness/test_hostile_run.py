"""surge fetch over every hostile case: bounded time, one record per input line, each of the right class.

Two runs of the real CLI, each in its own network namespace (fetch_runs.py): every case on one host:port,
and one port per case. The lines surge does not handle as it should yet are checked in
test_hostile_pending.py.
"""

from __future__ import annotations

import base64

import hostile
import pytest
from fetch_runs import (
    ABSURD_CAPPED,
    PER_PORT,
    RUNS,
    Run,
    Variant,
    check_ends_as_documented,
    check_outcome,
    outcome_params,
)

pytestmark = pytest.mark.slow

@pytest.mark.parametrize("variant", [*RUNS, ABSURD_CAPPED], ids=lambda v: v.name)
def test_run_ends_with_one_record_per_line(fetch_runs: dict[str, Run], variant: Variant) -> None:
    check_ends_as_documented(fetch_runs[variant.name])


@pytest.mark.parametrize(("variant", "label"), list(outcome_params(pending=False)))
def test_outcome(fetch_runs: dict[str, Run], variant: str, label: str) -> None:
    check_outcome(fetch_runs[variant], label)


@pytest.mark.parametrize("variant", RUNS, ids=lambda v: v.name)
def test_bad_lines_are_counted_on_stderr(fetch_runs: dict[str, Run], variant: Variant) -> None:
    run = fetch_runs[variant.name]
    invalid = sum(r["error"] == "invalid_input" for r in run.records)
    assert f"surge: {invalid} input lines were not a request" in run.stderr


@pytest.mark.parametrize("variant", RUNS, ids=lambda v: v.name)
def test_saved_bodies_and_headers(fetch_runs: dict[str, Run], variant: Variant) -> None:
    run = fetch_runs[variant.name]
    ok = run.record("ok")
    assert (ok["body"], ok["body_encoding"]) == ("ok\n", "utf-8")
    raw = run.record("non_utf8")
    assert raw["body_encoding"] == "base64"
    assert base64.b64decode(raw["body"]) == hostile.NON_UTF8_BODY
    assert ["X-Latin", hostile.NON_UTF8_HEADER.decode("latin-1")] in raw["headers"]
    text = run.record("non_utf8_text")  # not UTF-8, whatever its Content-Type says: kept exactly
    assert text["body_encoding"] == "base64"
    assert base64.b64decode(text["body"]) == hostile.NON_UTF8_TEXT


def test_stale_keepalive_is_retried_on_a_new_connection(fetch_runs: dict[str, Run]) -> None:
    # --per-host 1: the second URL goes on the first one's connection; the server closes it unanswered.
    run = fetch_runs["per_port"]
    assert run.server["stale_closes"] >= 1
    for label in ("keepalive_close", "keepalive_close#2"):
        r = run.record(label)
        assert (r["status"], r["error"], r["attempts"], r["body"]) == (200, None, 1, "ok\n")


@pytest.mark.parametrize("variant", RUNS, ids=lambda v: v.name)
def test_retry_after_is_waited_for(fetch_runs: dict[str, Run], variant: Variant) -> None:
    # The server's clock: the retry came no sooner than Retry-After said (lower bounds only).
    times = fetch_runs[variant.name].server["times"]
    for case, at_least in (("ra_seconds", 2.0), ("ra_date", 2.0), ("ra_503", 1.0)):
        first, second = times[hostile.BY_NAME[case].path]
        assert second - first >= at_least - 0.1, case


@pytest.mark.parametrize("variant", RUNS, ids=lambda v: v.name)
def test_what_reaches_the_server(fetch_runs: dict[str, Run], variant: Variant) -> None:
    run = fetch_runs[variant.name]
    hits = run.server["hits"]
    assert hits[run.target("redirect_loop")] == 6  # the first request and 5 redirects
    assert [hits.get(f"/case/redirect_hops?n={n}", 0) for n in range(13, 21)] == [0, 0, 1, 1, 1, 1, 1, 1]
    for case in ("redirect_file", "redirect_ftp", "bad_status", "huge_body", "gzip_bomb"):
        assert hits[run.target(case)] == 1, case  # not retried
    for case in ("slow_drip", "silence"):
        assert hits[run.target(case)] == 2, case  # retried once (--retries 1)
    for case in ("tls_self_signed", "tls_wrong_host", "tls_expired"):
        assert run.target(case) not in hits, case  # refused at the handshake
    assert hits[run.target("tls_ok")] == 1
    if variant is PER_PORT:
        assert hits[run.target("ra_absurd")] == 1  # longer than --max-retry-after: not retried
        assert hits[run.target("ra_ten")] == 1


def test_absurd_retry_after_pauses_its_host_for_the_cap_at_most(fetch_runs: dict[str, Run]) -> None:
    # --max-retry-after 2s, one request at a time: the host's next URLs wait for the cap, not for 3 years.
    run = fetch_runs["absurd_capped"]
    check_ends_as_documented(run)
    for line in run.lines:
        check_outcome(run, line.label)
