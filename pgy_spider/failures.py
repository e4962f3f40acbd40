"""Why a seed did not become a note: the record written to the failed file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scrapy.exceptions import DropItem, IgnoreRequest


@dataclass(slots=True)
class FailureRecord:
    note_id: str | None
    code: int | None
    reason: str
    attempts: int = 0
    request_id: str | None = None
    seed: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "noteId": self.note_id,
            "code": self.code,
            "reason": self.reason,
            "attempts": self.attempts,
            "requestId": self.request_id,
        }
        if self.seed is not None:
            doc["seed"] = self.seed
        if self.message:
            doc["message"] = self.message
        return doc


class NoteFailed(IgnoreRequest):
    """Raised by the API middleware when a note is given up on; carries the record."""

    def __init__(self, record: FailureRecord):
        super().__init__(f"{record.note_id}: {record.reason} (code {record.code})")
        self.record = record


class DuplicateNote(DropItem):
    """The note was already written in this run; never written twice."""
