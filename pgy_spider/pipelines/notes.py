"""Item pipeline: a note reaches the outputs once per run."""

from __future__ import annotations

from typing import Any

from pgy_spider.failures import DuplicateNote
from pgy_spider.idset import CompactIdSet
from pgy_spider.noteid import note_id_to_int


class NoteDedupPipeline:
    """Safety net behind the seed-level dedup: a note reaches the outputs once per run.

    The written IDs are kept in the compact set of the seed dedup (~13 bytes per note, a
    Python set of ints ~80): a run that writes 10 million notes holds ~130 MB here, not ~800.
    """

    def __init__(self) -> None:
        self._written = CompactIdSet()

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        if not self._written.add(note_id_to_int(item["noteId"])):
            raise DuplicateNote(f"duplicate note {item['noteId']}")
        return item
