"""Writing a whole file so that a reader never sees half of it. Plain module."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_file(path: str | Path, *, durable: bool = False) -> Iterator[IO[bytes]]:
    """A file to write that replaces ``path`` in one step when the block ends: a crash
    leaves the old file or the new one, never a mix. With ``durable`` the bytes are on
    disk (fsync) before the rename, so the new file also survives a power loss."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A temporary file of its own in the same directory: concurrent writers (Scrapyd jobs)
    # never truncate or rename each other's half-written copy.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` in one step (see :func:`atomic_file`)."""
    with atomic_file(path, durable=durable) as fh:
        fh.write(data)
