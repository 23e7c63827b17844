"""The file under the byte-stream sinks: opened fresh or cut back to a resume position, appended by batches.

A resume position is a byte offset that an earlier flush returned, so appending after it is idempotent.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from surge.errors import ConfigError, OutputMismatch, StorageError

__all__ = ["OutputFile"]


class OutputFile:
    """An output file (or stdout for ``-``) that grows by whole batches of records, one ``write`` each.

    Fresh (``resume_at`` None or negative): create or empty the file. Resume: truncate it to ``resume_at``
    and append after it, so rows written after the last recorded flush are replaced, never duplicated; a file
    shorter than ``resume_at`` (deleted, cut) raises :class:`~surge.errors.OutputMismatch`.

    A write that fails half-way (disk full) is cut off again before its error is raised, as a
    :class:`~surge.errors.StorageError` naming the file: the file ends after the last complete batch, never in
    a torn record. Writes go straight to the OS (no buffer to lose or to flush twice), which is what the
    batches are for. Stdout is buffered and cannot be cut back.
    """

    def __init__(self, path: str, resume_at: int | None) -> None:
        self.path = path
        self.owned = path != "-"
        self._fd = -1
        self._end = 0  # where the last complete write ended: the position to resume at
        if not self.owned:
            return
        try:
            if resume_at is None or resume_at < 0:
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            else:
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
                size = os.fstat(self._fd).st_size
                if size < resume_at:
                    self.close()
                    raise OutputMismatch(f"{path} holds {size} bytes, less than the {resume_at} recorded")
                os.ftruncate(self._fd, resume_at)
                os.lseek(self._fd, resume_at, os.SEEK_SET)
                self._end = resume_at
        except OSError as exc:
            if self._fd >= 0:
                os.close(self._fd)
            raise ConfigError(f"cannot write {path}: {exc.strerror}") from None

    def write(self, data: bytes) -> None:
        """Append ``data``, whole records; on failure nothing of it stays in the file."""
        if not self.owned:
            with _writing("stdout"):
                sys.stdout.buffer.write(data)
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            error = StorageError.from_os(exc, self.path)
            if error is None:
                raise
            # Freeing what the part written took cannot fail for lack of space; if it fails for another
            # reason, a resume still cuts the file back to its recorded position.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._end)
                os.lseek(self._fd, self._end, os.SEEK_SET)
            raise error from exc
        self._end += len(data)

    def flush(self) -> int:
        """Make what was written durable against a crash of this process; the position to resume at (0 for
        stdout). A file's writes already are: they went to the OS."""
        if not self.owned:
            with _writing("stdout"):
                sys.stdout.buffer.flush()
            return 0
        return self._end

    def close(self) -> None:
        """Release the file (stdout is flushed, not closed)."""
        if not self.owned:
            self.flush()
        elif self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


@contextlib.contextmanager
def _writing(path: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        error = StorageError.from_os(exc, path)
        if error is None:
            raise
        raise error from exc
