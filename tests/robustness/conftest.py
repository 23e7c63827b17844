"""Fixtures for the robustness tests: the hostile server in-process, and the CLI runs against it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme
from fetch_runs import ABSURD_CAPPED, ONE_PORT, PER_PORT, Run, launch
from hostile import Hostile


@pytest.fixture(scope="session")
def hostile_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def hostile_ca_file(hostile_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile-ca") / "ca.pem"
    hostile_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def hostile_server(hostile_ca: trustme.CA) -> AsyncIterator[Hostile]:
    """Every hostile case on 127.0.0.1, in the test's event loop: ``hostile_server.url("silence")``."""
    async with Hostile(hostile_ca) as server:
        yield server


@pytest.fixture(scope="session")
def fetch_runs(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """The CLI runs the hostile tests read, made once per session, together."""
    variants = [ONE_PORT, PER_PORT, ABSURD_CAPPED]
    yield launch(variants, tmp_path_factory.mktemp("fetch-runs"))
