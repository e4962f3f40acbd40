"""Feed exporters: a CSV that Excel opens correctly, and a fast orjson JSON-lines exporter.

Registered in settings as::

    FEED_EXPORTERS = {
        "csv": "pgy_spider.exporters.ExcelCsvItemExporter",
        # optional, for speed (~10x per normalized note):
        "jsonlines": "pgy_spider.exporters.OrjsonLinesItemExporter",
        "jsonl": "pgy_spider.exporters.OrjsonLinesItemExporter",
        "jl": "pgy_spider.exporters.OrjsonLinesItemExporter",
    }

No UTF-8 JSON-lines exporter is needed for correctness: Scrapy's own JsonLinesItemExporter
writes Chinese and emoji unescaped once FEED_EXPORT_ENCODING = "utf-8" (without that setting it
writes \\u escapes). OrjsonLinesItemExporter exists only for speed.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import IO, Any, Final

import orjson
from scrapy.exporters import BaseItemExporter, CsvItemExporter
from scrapy.utils.serialize import ScrapyJSONEncoder

from pgy_spider.notes import NOTE_FIELDS

__all__ = ["CSV_FIELDS", "FORMULA_STARTS", "ExcelCsvItemExporter", "OrjsonLinesItemExporter"]

logger = logging.getLogger(__name__)

# Default CSV columns: every normalized key in order, except the bulky raw API payload.
CSV_FIELDS: Final = tuple(name for name in NOTE_FIELDS if name != "raw")

# First characters that make a spreadsheet read a CSV cell as a formula (OWASP, CSV injection).
FORMULA_STARTS: Final = frozenset("=+-@\t\r")
_UTF8_NAMES: Final = frozenset({"utf-8", "utf-8-sig"})  # codecs.lookup() canonical names
_NO_META: Final[Mapping[str, Any]] = MappingProxyType({})  # what ItemAdapter gives plain dicts

# Same fallbacks as Scrapy's JSON exporters (sets, Decimal, items, Requests, ...). Datetimes are
# passed through to it too so both exporters format them identically (isoformat()).
_scrapy_default = ScrapyJSONEncoder().default
_ORJSON_OPTIONS: Final = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
# Fallback encoder for what orjson refuses (integers beyond 64 bits): the stdlib, unescaped.
_stdlib_encoder = ScrapyJSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dumps(value: Any, option: int = 0) -> bytes:
    try:
        return orjson.dumps(value, default=_scrapy_default, option=_ORJSON_OPTIONS | option)
    except orjson.JSONEncodeError:
        newline = "\n" if option & orjson.OPT_APPEND_NEWLINE else ""
        return (_stdlib_encoder.encode(value) + newline).encode("utf-8")


def _warn_if_not_utf8(encoding: str | None, exporter: str) -> None:
    # Not an error: the exporter is built on the first scraped item, after that item's paid
    # API call, and a raise there would lose every item of the crawl. Log and write UTF-8.
    if encoding and codecs.lookup(encoding).name not in _UTF8_NAMES:
        logger.warning("%s always writes UTF-8; ignoring encoding %r", exporter, encoding)


def _has_content(file: IO[bytes]) -> bool:
    """True when ``file`` is a seekable stream already holding data (an appended feed).

    Non-seekable streams (stdout pipes, compressing post-processors) count as fresh.
    """
    try:
        return bool(file.seekable() and file.tell() > 0)
    except (AttributeError, OSError, ValueError):
        return False


class _DictFastPathMixin(BaseItemExporter):
    """get_serialized_fields() with a shortcut for plain dict items, the only kind we export.

    Scrapy's generic path wraps every field lookup in ItemAdapter, which costs ~30 µs per
    normalized note; for a plain dict the field metadata is always empty, so the result is
    the same without it.
    """

    def get_serialized_fields(
        self, item: Any, default_value: Any = None, include_empty: bool | None = None
    ) -> Iterable[tuple[str, Any]]:
        if type(item) is not dict:
            return super().get_serialized_fields(item, default_value, include_empty)
        if include_empty is None:
            include_empty = self.export_empty_fields
        pairs = self._field_pairs(item, include_empty)
        serialize = self.serialize_field
        return [
            (out, serialize(_NO_META, out, item[src]) if src in item else default_value)
            for src, out in pairs
        ]

    def _field_pairs(self, item: dict[str, Any], include_empty: bool) -> list[tuple[str, str]]:
        fields = self.fields_to_export
        if fields is None:
            return [(name, name) for name in item]
        pairs = [
            (field, field) if isinstance(field, str) else field
            for field in (fields.items() if isinstance(fields, Mapping) else fields)
        ]
        return pairs if include_empty else [pair for pair in pairs if pair[0] in item]


class ExcelCsvItemExporter(_DictFastPathMixin, CsvItemExporter):
    """CSV for Excel: UTF-8 with a BOM, fixed columns, nested values as JSON text.

    - The BOM (which Excel needs to read UTF-8, i.e. Chinese, correctly) is written once, at the
      start of the file, with the first row; appending to a non-empty file (``-o``) adds
      neither a BOM nor a second header line, since the columns are fixed. A feed without
      items stays empty (0 bytes), as with Scrapy's CsvItemExporter.
    - Columns default to CSV_FIELDS; FEED_EXPORT_FIELDS / ``fields`` still override them.
    - None is an empty cell, booleans are ``true``/``false``; lists and dicts become compact,
      unescaped JSON.
    - Strings (IDs included) are written as they are, except that one starting with ``=``,
      ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (OWASP's advice
      against CSV injection): Excel and LibreOffice would run it as a formula. Decided by
      Python type, so numbers (``-5``) are never touched; note text comes from strangers.
      Only this exporter does it: JSON lines, MongoDB and the failed file keep the text.
    """

    def __init__(
        self,
        file: IO[bytes],
        include_headers_line: bool = True,
        join_multivalued: str = ",",
        errors: str | None = None,
        **kwargs: Any,
    ) -> None:
        _warn_if_not_utf8(kwargs.pop("encoding", None), type(self).__name__)
        # Plain UTF-8 for the text stream: the BOM is written by hand in export_item(), so it
        # depends on the file really being empty, not on TextIOWrapper's heuristics.
        kwargs["encoding"] = "utf-8"
        if not kwargs.get("fields_to_export"):
            kwargs["fields_to_export"] = list(CSV_FIELDS)
        self._appending = _has_content(file)
        super().__init__(
            file,  # type: ignore[arg-type]  # Scrapy annotates BytesIO, accepts any binary file
            include_headers_line=include_headers_line and not self._appending,
            join_multivalued=join_multivalued,
            errors=errors,
            **kwargs,
        )
        self._bom_written = self._appending

    def export_item(self, item: Any) -> None:
        # With the first row, not in start_exporting(): Scrapy also "exports" empty feeds
        # (FEED_STORE_EMPTY), and a BOM-only file would make the next append skip the header.
        if not self._bom_written:
            self._bom_written = True
            self.stream.write("\ufeff")
        super().export_item(item)

    def serialize_field(self, field: Mapping[str, Any], name: str, value: Any) -> Any:
        serializer = field.get("serializer")
        if serializer is not None:
            value = serializer(value)
        return _csv_cell(value)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True or value is False:  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, str):
        # value[:1], not value[0]: an empty string is a common, valid cell.
        return "'" + value if value[:1] in FORMULA_STARTS else value
    if isinstance(value, int | float):
        # Text already: Scrapy's _build_row() pays for a caught TypeError on every non-str.
        return str(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return _dumps(value).decode("utf-8")
    return str(value)


class OrjsonLinesItemExporter(_DictFastPathMixin, BaseItemExporter):
    """JSON lines via orjson: UTF-8, no \\u escapes, one compact object per line.

    Same objects as Scrapy's JsonLinesItemExporter with FEED_EXPORT_ENCODING="utf-8"; only the
    spacing differs (compact separators), plus NaN/Infinity become null (valid JSON) instead of
    bare NaN. FEED_EXPORT_INDENT is ignored, as in Scrapy's JSON-lines exporter.
    """

    def __init__(self, file: IO[bytes], **kwargs: Any) -> None:
        super().__init__(**kwargs)  # strict: unknown options are a TypeError, not ignored
        _warn_if_not_utf8(self.encoding, type(self).__name__)
        self.encoding = "utf-8"
        self.file = file
        # Identity serializers and no field selection: a plain dict can be dumped as it is.
        self._dump_dicts_directly = (
            self.fields_to_export is None
            and type(self).serialize_field is BaseItemExporter.serialize_field
        )

    def export_item(self, item: Any) -> None:
        if self._dump_dicts_directly and type(item) is dict:
            itemdict = item
        else:
            itemdict = dict(self.get_serialized_fields(item))
        self.file.write(_dumps(itemdict, orjson.OPT_APPEND_NEWLINE))  # no copy for the "\n"
