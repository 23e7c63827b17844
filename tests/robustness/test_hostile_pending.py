"""Hostile cases surge does not handle as it should yet: each test states the behaviour wanted.

These fail today. When a fix lands, move its case out of ``fetch_runs.PENDING`` (the outcome checks then run
in test_hostile_run.py) or move its test to the file its layer's tests live in.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from client_checks import PENDING as CLIENT_PENDING
from client_checks import check_case
from fetch_runs import ABSURD_DEFAULT, Run, check_ends_as_documented, check_outcome, outcome_params
from hostile import Hostile


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "label"), list(outcome_params(pending=True)))
def test_outcome(fetch_runs: dict[str, Run], variant: str, label: str) -> None:
    # stacked_codings (six gzip layers), many_headers (500 fields): protocol.
    check_outcome(fetch_runs[variant], label)


@pytest.mark.slow
def test_absurd_retry_after_leaves_its_host_alone(fetch_runs: dict[str, Run]) -> None:
    # Retry-After: 99999999 under the default --max-retry-after (60 s): that URL is not retried, so the
    # server's answer is not obeyed, and the host's other URLs must not wait for it either. With one request
    # at a time they run within the 20 s bound only if the host is not paused for the 60 s cap.
    run = fetch_runs[ABSURD_DEFAULT.name]
    check_ends_as_documented(run)
    for line in run.lines:
        check_outcome(run, line.label)


@pytest.mark.looptime
@pytest.mark.parametrize("name", sorted(CLIENT_PENDING))
async def test_client_case(hostile_server: Hostile, hostile_ca_file: Path, name: str) -> None:
    # Six stacked codings and 500 header fields: ProtocolError from surge.http.Client.
    await check_case(hostile_server, str(hostile_ca_file), name)
