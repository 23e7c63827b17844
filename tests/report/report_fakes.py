"""Hand-built outcomes and a manual clock shared by the report tests."""

from __future__ import annotations

from dataclasses import dataclass


class ManualClock:
    """A clock that moves only when a test sets ``now``."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(slots=True)
class FakeOutcome:
    """The fields of the engine's Outcome that Stats reads."""

    status: int | None = 200
    ok: bool = True
    error: str | None = None
    attempts: int = 1
    elapsed_ms: float = 1.0
    bytes: int = 100
