"""The API's recorded response (tests/data/, copied from ../shared/api/), and the note ID and
fetch time the tests normalize it with."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SAMPLE_RESPONSE = (
    Path(__file__).resolve().parents[1] / "data" / "note-detail-v1.sample-response.json"
)


def load_sample_data() -> dict[str, Any]:
    """A fresh copy of the recorded response's ``data`` object."""
    data: dict[str, Any] = json.loads(SAMPLE_RESPONSE.read_text(encoding="utf-8"))["data"]
    return data


NOTE_ID = "65c0b3fc000000002c037a49"
FETCHED_AT = datetime(2026, 11, 27, 8, 30, 15, tzinfo=UTC)
# The recorded response of ../shared/api/, copied into tests/data/ so that the suite does
# not depend on a file outside the repository.
SAMPLE_DATA: dict[str, Any] = load_sample_data()


def sample_data() -> dict[str, Any]:
    """A fresh deep copy of the sample's ``data``, safe to mutate."""
    return copy.deepcopy(SAMPLE_DATA)
