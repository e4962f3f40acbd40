"""The API's recorded response (tests/data/, copied from ../shared/api/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLE_RESPONSE = (
    Path(__file__).resolve().parents[1] / "data" / "note-detail-v1.sample-response.json"
)


def load_sample_data() -> dict[str, Any]:
    """A fresh copy of the recorded response's ``data`` object."""
    data: dict[str, Any] = json.loads(SAMPLE_RESPONSE.read_text(encoding="utf-8"))["data"]
    return data
