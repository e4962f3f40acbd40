"""Item pipeline: a note reaches the outputs once per run."""

from __future__ import annotations

from typing import Any

from pgy_spider.failures import DuplicateNote
from pgy_spider.noteid import note_id_to_int


class NoteDedupPipeline:
    """Safety net behind the seed-level dedup: a note reaches the outputs once per run."""

    def __init__(self) -> None:
        self._written: set[int] = set()

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        key = note_id_to_int(item["noteId"])
        if key in self._written:
            raise DuplicateNote(f"duplicate note {item['noteId']}")
        self._written.add(key)
        return item
