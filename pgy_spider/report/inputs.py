"""The report's inputs: the run summary, the feed, an ID file and a date.

A feed can be far bigger than memory, so it is streamed: JSON lines one line at a time,
a JSON array (Scrapy's ``-O notes.json``, or several arrays appended by ``-o``) item by
item with ijson. Every problem is an :class:`InputError` whose message is one line that
names the input and says what to do.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

import orjson

__all__ = ["InputError", "iter_feed", "load_summary", "parse_since", "read_note_ids"]

_BOM = b"\xef\xbb\xbf"
_SNIFF_BYTES = 4096
_MAX_SUMMARY_BYTES = 64 * 1024 * 1024


class InputError(Exception):
    """An input cannot be used: the message is one line, for the user."""


def _check_file(path: str, what: str, hint: str) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} {path!r} does not exist: {hint}") from None
    except OSError as exc:
        raise InputError(f"{what} {path!r} cannot be accessed ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{what} {path!r} is a directory: pass the path of a file inside it")
    if not os.access(path, os.R_OK):
        raise InputError(
            f"{what} {path!r} is not readable (permission denied): fix its permissions"
        )


def _open(path: str, what: str) -> IO[bytes]:
    try:
        return open(path, "rb")  # the caller closes it
    except OSError as exc:
        raise InputError(f"{what} {path!r} cannot be read ({exc.strerror})") from None


def _one_line(text: str, limit: int = 120) -> str:
    return " ".join(text.split())[:limit]


# -- the summary ----------------------------------------------------------------


def load_summary(path: str) -> dict[str, Any]:
    """The run's ``summary.json`` as a dict."""
    _check_file(path, "summary", "run a crawl first, or pass --summary PATH")
    with _open(path, "summary") as fh:
        try:
            data = fh.read(_MAX_SUMMARY_BYTES + 1)
        except OSError as exc:
            raise InputError(f"summary {path!r} cannot be read ({exc.strerror})") from None
    if len(data) > _MAX_SUMMARY_BYTES:
        raise InputError(f"summary {path!r} is over 64 MiB: it is not a run summary")
    try:
        summary = orjson.loads(data.removeprefix(_BOM))
    except orjson.JSONDecodeError as exc:
        raise InputError(
            f"summary {path!r} is not valid JSON ({_one_line(str(exc))}): "
            "pass the summary.json a crawl wrote"
        ) from None
    if not isinstance(summary, dict):
        raise InputError(
            f"summary {path!r} is not a JSON object: pass the summary.json a crawl wrote"
        )
    return summary


# -- the feed -------------------------------------------------------------------


def iter_feed(path: str) -> Iterator[dict[str, Any]]:
    """Yield the notes of a JSON-lines or JSON-array feed, one dict at a time.

    The path is checked when this is called; a broken line or item raises
    :class:`InputError` when the iteration reaches it.
    """
    _check_file(path, "feed", "run a crawl first, or pass --feed PATH")
    fh = _open(path, "feed")
    try:
        head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        fh.close()
        raise InputError(f"feed {path!r} cannot be read ({exc.strerror})") from None
    first = head.removeprefix(_BOM).lstrip()[:1]
    if first not in (b"", b"[", b"{"):
        fh.close()
        raise InputError(
            f"feed {path!r} is neither JSON lines nor a JSON array "
            "(CSV feeds cannot be read): pass the .jsonl or .json feed"
        )
    fh.seek(0)
    return _iter_array(fh, path) if first == b"[" else _iter_lines(fh, path)


def _iter_lines(fh: IO[bytes], path: str) -> Iterator[dict[str, Any]]:
    with fh:
        lineno = 0
        try:
            # Split on b"\n" only (binary iteration): orjson writes U+2028 unescaped.
            for lineno, line in enumerate(fh, 1):  # lineno: for the messages
                text = line.removeprefix(_BOM) if lineno == 1 else line
                if not text.strip():
                    continue
                try:
                    note = orjson.loads(text)
                except orjson.JSONDecodeError as exc:
                    raise InputError(
                        f"feed {path!r} line {lineno} is not valid JSON ({_one_line(str(exc))}): "
                        "fix or remove that line"
                    ) from None
                if not isinstance(note, dict):
                    raise InputError(f"feed {path!r} line {lineno} is not a JSON object (a note)")
                yield note
        except OSError as exc:
            raise InputError(
                f"feed {path!r} cannot be read after line {lineno} ({exc.strerror})"
            ) from None


def _iter_array(fh: IO[bytes], path: str) -> Iterator[dict[str, Any]]:
    import ijson  # only JSON-array feeds need it

    with fh:
        count = 0
        try:
            # multiple_values: `-o notes.json` appended over two runs is "[...][...]".
            for note in ijson.items(fh, "item", use_float=True, multiple_values=True):
                count += 1
                if not isinstance(note, dict):
                    raise InputError(f"feed {path!r} item {count} is not a JSON object (a note)")
                yield note
        except ijson.JSONError as exc:
            raise InputError(
                f"feed {path!r} is not valid JSON after item {count} "
                f"({_one_line(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)})"
            ) from None
        except OSError as exc:
            raise InputError(
                f"feed {path!r} cannot be read after item {count} ({exc.strerror})"
            ) from None


# -- scoping the database ----------------------------------------------------------


def read_note_ids(path: str) -> set[str]:
    """The note IDs in an ID file (text, CSV or JSONL, as for ``ids_file``)."""
    from pgy_spider.seeds import SeedFileError, check_sources, iter_seeds

    try:
        check_sources([path])
        return {seed.note_id for seed in iter_seeds([path]) if seed.note_id}
    except SeedFileError as exc:
        raise InputError(f"--ids-file: {exc}") from None
    except OSError as exc:
        raise InputError(f"--ids-file {path!r} cannot be read ({exc.strerror})") from None


def parse_since(text: str) -> datetime:
    """``2024-05-01`` (midnight UTC) or an ISO-8601 date and time (UTC unless it says)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--since {text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+08:00]"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
