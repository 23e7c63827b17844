"""The playbook's own client code (§5 crawler steps, §7 MassiveRequestHandler), reproduced faithfully.

Only the target URL and the request count are parameters; each module runs as a subprocess and prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["peer_main", "run_on_loop"]


def peer_main(description: str, run: Callable[[argparse.Namespace], dict[str, Any]]) -> None:
    """Subprocess entry shared by the peers: ``--url URL -n N [--loop NAME]``, result as one JSON line.

    The playbook's code prints progress of its own; it goes to stderr so stdout holds only the JSON.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True)
    parser.add_argument("-n", type=int, required=True)
    parser.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop", "rloop"))
    args = parser.parse_args()
    with contextlib.redirect_stdout(sys.stderr):
        result = run(args)
    print(json.dumps(result))


def run_on_loop(loop: str, main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the named loop, chosen before the loop starts.

    The playbook's §7 calls ``uvloop.install()`` from inside a running asyncio loop, which changes the policy
    for loops created later but not the loop already running: its "uvloop" experiment ran on asyncio. Each
    peer here runs in a fresh process on the loop it names, which is what that experiment meant to measure.
    """
    if loop == "asyncio":
        return asyncio.run(main)
    factory = importlib.import_module(loop).new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
