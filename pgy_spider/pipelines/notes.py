"""Item pipelines: validate and normalize the API's note, never write one twice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pgy_spider.failures import DuplicateNote, InvalidNoteResponse
from pgy_spider.noteid import note_id_to_int
from pgy_spider.notes import InvalidNote, normalize_note


class NoteValidationPipeline:
    """API ``data`` -> a normalized, typed note; a malformed one is dropped, never half-written."""

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        note_id = item["noteId"]
        try:
            return normalize_note(item["data"], requested_id=note_id, fetched_at=datetime.now(UTC))
        except InvalidNote as exc:
            raise InvalidNoteResponse(f"invalid_response for {note_id}: {exc}") from None


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
