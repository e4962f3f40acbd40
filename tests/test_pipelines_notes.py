"""The note dedup pipeline (pgy_spider/pipelines/notes.py)."""

from __future__ import annotations

import tracemalloc

import pytest

from pgy_spider.failures import DuplicateNote
from pgy_spider.pipelines.notes import NoteDedupPipeline
from tests.support.ids import make_note_id


def test_a_note_passes_once() -> None:
    pipeline = NoteDedupPipeline()
    first = {"noteId": make_note_id(1)}
    assert pipeline.process_item(first) is first
    assert pipeline.process_item({"noteId": make_note_id(2)})
    with pytest.raises(DuplicateNote, match=make_note_id(1)):
        pipeline.process_item({"noteId": make_note_id(1)})


def test_memory_per_written_note_is_compact() -> None:
    # A run may write tens of millions of notes: a plain set of ints costs ~80 bytes each
    # (20 MB here); the compact set ~13 bytes each plus the IDs not yet merged (~7 MB here).
    notes = 300_000
    items = [{"noteId": f"{i * 7919:024x}"} for i in range(notes)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        pipeline = NoteDedupPipeline()
        for item in items:
            pipeline.process_item(item)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 12_000_000, f"{held / notes:.0f} bytes per note"
