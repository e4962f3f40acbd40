"""Output files that say when they cannot be written, and can be written through at once.

Plain module. Scrapy's local feed storage writes through a buffer, and an exporter error
inside the ``item_scraped`` signal is only logged: a disk that fills up mid-run would
silently lose notes that were paid for. A file opened here reports the first write that
fails (the run stops, see :mod:`pgy_spider.runtime`), never lets a short write pass for a
whole one, and has no buffer: every write reaches the file at once (one ``write()`` per
note), so what the file holds is exactly what was exported.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

OnError = Callable[[str, OSError], None]


class _GuardedRaw(io.FileIO):
    """A file whose writes are whole or fail loudly, once."""

    def __init__(self, path: str, mode: str, on_error: OnError) -> None:
        super().__init__(path, mode)
        self._path = path
        self._on_error = on_error
        self.failed: OSError | None = None

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        if self.failed is not None:
            return size  # reported once already; the run is stopping
        try:
            while view:
                written = super().write(view)
                if not written:
                    raise OSError(f"no progress writing {self._path}")
                view = view[written:]
        except OSError as exc:
            self.failed = exc
            self._on_error(self._path, exc)
        return size


def open_output(path: str | Path, mode: str, *, on_error: OnError) -> IO[bytes]:
    """Open ``path`` for writing through (``"wb"`` or ``"ab"``); errors go to ``on_error``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return _GuardedRaw(str(target), mode.replace("b", ""), on_error)
