"""What the crawl needs to know about a note store, whatever the store is.

Plain module. A store (the MongoDB pipeline today) registers itself with the run's
runtime (:mod:`pgy_spider.runtime`); the spider asks the stores which seeds are fresh
enough to skip, and the run's accounting asks them how storing went. Neither imports a
store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pgy_spider.errors import StorageUnavailable

__all__ = ["FreshnessSource", "NoteStore", "StorageOutcome", "StorageUnavailable"]


@dataclass(frozen=True, slots=True)
class StorageOutcome:
    """How storing went, for the summary and the exit status."""

    name: str  # e.g. "mongo"
    spilled: int = 0  # notes not stored but kept in the spill file
    lost: int = 0  # notes neither stored nor spilled
    spill_path: str | None = None  # set once something was spilled

    @property
    def failed(self) -> bool:
        return bool(self.spilled or self.lost)


@runtime_checkable
class FreshnessSource(Protocol):
    """Knows which notes were fetched recently enough not to be fetched again."""

    @property
    def refresh_enabled(self) -> bool: ...

    async def find_fresh(self, note_ids: list[str]) -> set[str]:
        """The IDs among ``note_ids`` that are fresh; raises StorageUnavailable when the
        store cannot tell (going on would pay again for stored notes)."""
        ...


@runtime_checkable
class NoteStore(Protocol):
    """A place notes are stored besides the feeds."""

    def outcome(self) -> StorageOutcome: ...
