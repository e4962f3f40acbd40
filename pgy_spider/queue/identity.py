"""What a run's seed sources are: an identity every process compares before it reads.

Plain module. A run's seeds are read once, by whichever process holds the reader role, and a
process that takes the role over goes on from the run's cursor: its sources must be the same,
in the same order, byte for byte. Each source is identified by its kind, its size and a
SHA-256 of its content (of its first and last :data:`PART` bytes and its size for a file
larger than :data:`WHOLE_UP_TO`), never by its path (hosts keep files in different places).
An ``ids_url`` is identified by a hash of the URL here; its content is compared when it is
downloaded (:func:`file_identity`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import orjson

WHOLE_UP_TO = 64 * 1024 * 1024  # files up to this size are hashed whole
PART = 4 * 1024 * 1024  # larger ones: their head and their tail


def file_identity(path: str) -> str:
    size = os.path.getsize(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= WHOLE_UP_TO:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
            return f"file:{size}:{digest.hexdigest()}"
        digest.update(fh.read(PART))
        fh.seek(size - PART)
        digest.update(fh.read(PART))
    return f"file:{size}:ends:{digest.hexdigest()}"


def source_identities(inline: str, files: Sequence[str], ids_url: str | None) -> list[str]:
    """One identity per source, in reading order (inline seeds, the files, the URL)."""
    found = []
    if any(value.strip() for value in inline.split(",")):
        digest = hashlib.sha256(inline.encode("utf-8", "surrogateescape")).hexdigest()
        found.append(f"ids:{len(inline)}:{digest}")
    found.extend(file_identity(path) for path in files)
    if ids_url:
        found.append(f"url:{hashlib.sha256(ids_url.encode()).hexdigest()}")
    return found


def encode(identities: Sequence[str]) -> str:
    return orjson.dumps(list(identities)).decode()


def decode(text: str | bytes) -> list[str]:
    if not text:
        return []
    value = orjson.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []


def difference(run: str, theirs: Sequence[str], ours: Sequence[str]) -> str | None:
    """None when the sources are the run's; else one line saying how they differ."""
    if list(theirs) == list(ours):
        return None
    kinds = ", ".join(_kind(i) for i in theirs) or "none"
    if len(theirs) != len(ours):
        what = (
            f"run {run!r} reads {len(theirs)} seed source(s) ({kinds}), "
            f"this process has {len(ours)}"
        )
    else:
        index = next(i for i, (a, b) in enumerate(zip(theirs, ours, strict=True)) if a != b)
        what = (
            f"seed source {index + 1} ({_kind(ours[index])}) differs from run {run!r}'s "
            f"({_describe(theirs[index])} there, {_describe(ours[index])} here)"
        )
    return (
        f"the seeds given differ from those of the run: {what}; give every process of the "
        "run the same files in the same order (or no seed argument to join as a worker), "
        "or choose another PGY_RUN"
    )


def _kind(identity: str) -> str:
    return {"ids": "-a ids", "file": "a file", "url": "-a ids_url"}.get(
        identity.split(":", 1)[0], "?"
    )


def _describe(identity: str) -> str:
    parts = identity.split(":")
    if parts[0] == "file":
        return f"{parts[1]} bytes, sha256 {parts[-1][:12]}"
    if parts[0] == "ids":
        return f"{parts[1]} characters"
    return f"{_kind(identity)} {parts[-1][:12]}"
