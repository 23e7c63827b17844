"""Opening an output file either fresh or cut back to a resume position; shared by the byte-stream sinks.

A resume position is a byte offset that an earlier flush returned, so appending after it is idempotent.
"""

from __future__ import annotations

import os
import sys
from typing import IO

from surge.errors import ConfigError

__all__ = ["open_output"]


def open_output(path: str, resume_at: int | None) -> tuple[IO[bytes], bool]:
    """``(file, owned)``: stdout for ``-`` (not owned, never truncated), else the file opened for writing.

    Fresh (``resume_at`` None or negative): create or empty the file. Resume: truncate to ``resume_at`` and
    append after it, so rows written after the last recorded flush are replaced, never duplicated.
    """
    if path == "-":
        return sys.stdout.buffer, False
    try:
        if resume_at is None or resume_at < 0:
            return open(path, "wb", buffering=1 << 16), True
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, resume_at)
        f = os.fdopen(fd, "r+b", buffering=1 << 16)
        f.seek(resume_at)
        return f, True
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
