"""Excel workbook feed (``-O notes.xlsx``): XlsxWriter in constant-memory mode.

Registered in settings as ``FEED_EXPORTERS = {"xlsx": "pgy_spider.xlsxexport.XlsxItemExporter"}``.
Scrapy imports every registered exporter when a crawl starts, so XlsxWriter itself is imported
only when a workbook is really written.

Why XlsxWriter's constant_memory mode (measured on 100,000 simulator notes, see the README): the
same peak memory as openpyxl's write-only mode (both stream rows to a temporary file and write
strings inline), about a third less time, no dependency of its own, and it escapes what Excel
would decode (``_x0041_``) and refuses nothing, where openpyxl raises on control characters and
turns any string starting with ``=`` into a formula unless each cell is forced to text.

Policies (tested in tests/test_xlsx_export.py, stated in the README):

- Sheet "notes": the CSV's columns (or FEED_EXPORT_FIELDS). Text, IDs included, is always a
  string cell, never reinterpreted as a number, formula or link; text columns are formatted as
  Text (``@``) so that editing a cell keeps it text. Metrics and epoch times are numbers
  (integers beyond Excel's 15 significant digits are text, so no digit is lost); booleans are
  booleans; ``createdAt``-like ISO times are Excel date-times in UTC ("createdAt (UTC)");
  lists and dicts are compact, unescaped JSON text.
- Characters a workbook cannot hold (C0 control characters other than tab and line feed,
  U+FFFE/U+FFFF, lone surrogates) become U+FFFD; a carriage return becomes a line feed.
- A cell holds at most 32,767 characters (UTF-16 units, as Excel counts): longer text is cut
  and ends with a visible marker. Other feeds and MongoDB keep the whole text.
- A sheet holds at most 1,048,576 rows: the notes continue on "notes (2)", "notes (3)", ...
- Sheet "creators": one row per userId in the file, with the latest values seen and the number
  of notes in this file. One small record per creator is kept in memory until the end.
- A workbook is written whole: it cannot be appended to. ``xlsx_feed_problem()`` is the
  check the crawl command runs before any call.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import IO, TYPE_CHECKING, Any, Final
from urllib.parse import urlparse

from itemadapter import ItemAdapter
from scrapy.exporters import BaseItemExporter

from pgy_spider.exporters import CSV_FIELDS, _dumps, _has_content

if TYPE_CHECKING:
    from xlsxwriter.format import Format
    from xlsxwriter.workbook import Workbook
    from xlsxwriter.worksheet import Worksheet

__all__ = [
    "CELL_MAX_CHARS",
    "SHEET_MAX_ROWS",
    "XlsxItemExporter",
    "xlsx_feed_problem",
]

logger = logging.getLogger(__name__)

FORMAT: Final = "xlsx"
SHEET_MAX_ROWS: Final = 1_048_576  # Excel's rows per sheet, header row included
CELL_MAX_CHARS: Final = 32_767  # Excel's characters per cell, counted in UTF-16 units
CUT_MARKER: Final = "… [cut: {rest:,} more characters; an Excel cell holds at most 32,767]"
_MARKER_RESERVE: Final = 80  # >= len(CUT_MARKER) for any count of a str's length
NOTES_SHEET: Final = "notes"
CREATORS_SHEET: Final = "creators"
# Excel shows integers exactly up to 15 significant digits; beyond that a number loses digits.
_EXACT_INT: Final = 10**15
_DATE_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
_EXCEL_FIRST_YEAR: Final = 1900

# Characters an XML 1.0 workbook cannot hold (and CR, which Excel shows as a stray symbol).
_UNFIT = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")
_UNFIT_BUT_CR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What Excel decodes as an escaped character inside cell text (ST_Xstring); looked for at
# every position, overlaps included.
_ESCAPE_LIKE = re.compile("(?=_x[0-9a-fA-F]{4}_)")


# --- append check (before any call) ------------------------------------------------------


def xlsx_feed_problem(feeds: Mapping[str, Mapping[str, Any]], *, resuming: bool) -> str | None:
    """One line saying why these ``FEEDS`` cannot be written as workbooks, or None.

    A workbook is a zip archive written whole at the end: appending one to a file (``-o``,
    or FEEDS without ``overwrite: true`` on a local file) gives a file Excel cannot open,
    and a resumed ``JOBDIR`` job would replace the workbook with the last session's notes.
    """
    workbooks = [
        (str(uri), options) for uri, options in feeds.items() if options.get("format") == FORMAT
    ]
    for uri, options in workbooks:
        if _appends(uri, options):
            return (
                f"cannot append to the Excel workbook {uri!r} (-o, or FEEDS without "
                f"overwrite): a workbook is written whole; use -O {uri} to replace it, "
                "or choose a new file name"
            )
    if resuming and workbooks:
        uri = workbooks[0][0]
        return (
            f"cannot resume this JOBDIR job into the Excel workbook {uri!r}: a workbook cannot "
            "be added to, and rewriting it would drop the notes of earlier sessions; resume "
            "with -o notes.jsonl or -o notes.csv (they append), or start a new job (a new "
            "JOBDIR) to write a complete workbook"
        )
    return None


def _appends(uri: str, options: Mapping[str, Any]) -> bool:
    """Whether Scrapy's storage for ``uri`` would add to an existing file."""
    scheme = urlparse(uri).scheme
    if scheme in ("", "file") or len(scheme) == 1:  # local path (a Windows drive letter too)
        return not options.get("overwrite", False)  # FileFeedStorage: append unless overwrite
    if scheme in ("ftp", "ftps"):
        return options.get("overwrite", True) is False  # FTPFeedStorage: APPE when asked
    return False  # stdout, s3, gs: a fresh stream or object every time


# --- cells --------------------------------------------------------------------------------


def fit_text(text: str) -> str:
    """``text`` as a workbook can hold it: unfit characters replaced, cut to one cell."""
    if _UNFIT.search(text) is not None:
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        text = _UNFIT_BUT_CR.sub("\ufffd", text)
    # Fewer code points than half the limit cannot exceed it in UTF-16 units: skip encoding.
    if len(text) > CELL_MAX_CHARS // 2:
        encoded = text.encode("utf-16-le", "surrogatepass")
        if len(encoded) > 2 * CELL_MAX_CHARS:
            keep = encoded[: 2 * (CELL_MAX_CHARS - _MARKER_RESERVE)]
            kept = keep.decode("utf-16-le", "ignore")  # drops half a surrogate pair at the cut
            text = kept + CUT_MARKER.format(rest=len(text) - len(kept))
    return text


def _rich_fragments(text: str) -> list[str]:
    """``text`` in pieces for write_rich_string(): at least three, none holding ``_xHHHH_``.

    XlsxWriter's constant_memory mode writes a string that starts with ``<r>`` and ends with
    ``</r>`` as raw XML (its own rich-string form), so such a title could inject cells into
    the sheet. Written as a rich string instead, every piece is escaped. Its pieces are
    escaped for Excel's ``_xHHHH_`` twice, so the text is split inside each such sequence,
    where neither escape sees it; Excel joins the pieces back to ``text`` exactly.
    """
    cuts = {1, 2, *(match.start() + 1 for match in _ESCAPE_LIKE.finditer(text))}
    points = [0, *sorted(cut for cut in cuts if 0 < cut < len(text)), len(text)]
    return [text[a:b] for a, b in pairwise(points)]


def _excel_time(value: Any) -> datetime | None:
    """A naive UTC datetime Excel can show, from an ISO-8601 text or a datetime; else None."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    elif isinstance(value, datetime):
        moment = value
    else:
        return None
    if moment.tzinfo is not None:  # the libraries refuse aware datetimes: convert, then drop
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment if moment.year >= _EXCEL_FIRST_YEAR else None


@dataclass(frozen=True)
class _Column:
    header: str
    width: float
    kind: str  # "text" (formatted @), "time" (UTC date-time), "value" (by Python type)


_TEXT = "text"
_TIME = "time"
_VALUE = "value"
_URL_WIDTH = 40.0
_COLUMN_STYLE: Final[dict[str, tuple[float, str]]] = {
    "noteId": (26, _TEXT),
    "noteLink": (_URL_WIDTH, _TEXT),
    "noteType": (9, _TEXT),
    "type": (6, _VALUE),
    "title": (36, _TEXT),
    "content": (60, _TEXT),
    "topics": (28, _TEXT),
    "userId": (26, _TEXT),
    "name": (18, _TEXT),
    "redId": (14, _TEXT),
    "headPhoto": (_URL_WIDTH, _TEXT),
    "createTime": (15, _VALUE),
    "updateTime": (15, _VALUE),
    "userUpdateTime": (15, _VALUE),
    "createdAt": (20, _TIME),
    "updatedAt": (20, _TIME),
    "userUpdatedAt": (20, _TIME),
    "createTimeText": (17, _TEXT),
    "metricsAllZero": (15, _VALUE),
    "imageCount": (11, _VALUE),
    "imageUrls": (_URL_WIDTH, _TEXT),
    "videoUrl": (_URL_WIDTH, _TEXT),
    "videoDuration": (13, _VALUE),
    "kol": (50, _TEXT),
    "fetchedAt": (20, _TIME),
}
_DEFAULT_STYLE: Final = (12.0, _VALUE)  # metrics and any column of FEED_EXPORT_FIELDS

# userId first, then the kol's fields, then how many notes of the file are theirs.
CREATOR_COLUMNS: Final = (
    _Column("userId", 26, _TEXT),
    _Column("nickName", 20, _TEXT),
    _Column("fansNum", 12, _VALUE),
    _Column("picturePrice", 13, _VALUE),
    _Column("videoPrice", 12, _VALUE),
    _Column("currentLevel", 13, _VALUE),
    _Column("location", 12, _TEXT),
    _Column("contentTags", 30, _TEXT),
    _Column("notesInFile", 12, _VALUE),
)
_KOL_KEYS: Final = ("fansNum", "picturePrice", "videoPrice", "currentLevel", "location")


def _column(source: str, header: str) -> _Column:
    """Width and kind follow the note's key; the header is the feed's name for the column."""
    width, kind = _COLUMN_STYLE.get(source, _DEFAULT_STYLE)
    return _Column(f"{header} (UTC)" if kind == _TIME else header, width, kind)


def _tags_text(tags: Any) -> str | None:
    """The kol's contentTags as analysts read them: ``美妆: 护肤, 彩妆; 时尚: 穿搭``."""
    if not isinstance(tags, list):
        return None
    parts = []
    for tag in tags:
        if not isinstance(tag, Mapping):
            continue
        head = str(tag.get("taxonomy1Tag") or "")
        subs = ", ".join(str(sub) for sub in tag.get("taxonomy2Tags") or ())
        parts.append(f"{head}: {subs}" if subs else head)
    return "; ".join(parts)


class _SheetSeries:
    """Sheets named ``base``, ``base (2)``, ...: the next one starts when one is full.

    Each sheet gets the header row (frozen, with filters over the rows written), the column
    widths and the column formats. Rows are written in order, as constant_memory requires.
    """

    def __init__(
        self, book: Workbook, base: str, columns: list[_Column], max_rows: int, formats: _Formats
    ) -> None:
        self.book = book
        self.base = base
        self.columns = columns
        self.max_rows = max_rows
        self.formats = formats
        self.count = 0
        self.sheet: Worksheet = self._new_sheet()
        self.row = 1

    def next_row(self) -> int:
        if self.row >= self.max_rows:
            self._end_sheet()
            self.sheet = self._new_sheet()
            self.row = 1
        self.row += 1
        return self.row - 1

    def close(self) -> None:
        self._end_sheet()

    def _new_sheet(self) -> Worksheet:
        self.count += 1
        sheet = self.book.add_worksheet(
            self.base if self.count == 1 else f"{self.base} ({self.count})"
        )
        for col, column in enumerate(self.columns):
            sheet.set_column(col, col, column.width, self.formats.for_kind(column.kind))
            sheet.write_string(0, col, column.header, self.formats.header)
        sheet.freeze_panes(1, 0)
        # IDs made of digits are text on purpose: no "number stored as text" triangles.
        sheet.ignore_errors({"number_stored_as_text": "A1:XFD1048576"})
        return sheet

    def _end_sheet(self) -> None:
        self.sheet.autofilter(0, 0, self.row - 1, len(self.columns) - 1)


@dataclass(frozen=True)
class _Formats:
    header: Format
    text: Format
    time: Format

    def for_kind(self, kind: str) -> Format | None:
        return self.text if kind == _TEXT else self.time if kind == _TIME else None


# --- the exporter -----------------------------------------------------------------------------

_Writer = Callable[["Worksheet", int, int, Any], None]


class XlsxItemExporter(BaseItemExporter):
    """Notes as an Excel workbook: sheet "notes" (and "notes (2)", ...) and sheet "creators".

    ``sheet_max_rows`` (rows per sheet, header included) is Excel's limit; only tests lower it.
    """

    sheet_max_rows: int = SHEET_MAX_ROWS

    def __init__(self, file: IO[bytes], **kwargs: Any) -> None:
        super().__init__(**kwargs)  # strict: unknown options are a TypeError, not ignored
        # encoding and indent mean nothing for a workbook (its XML is always UTF-8).
        if not self.fields_to_export:
            self.fields_to_export = list(CSV_FIELDS)
        self.file = file
        fields = self.fields_to_export
        pairs = fields.items() if isinstance(fields, Mapping) else fields
        self._fields: list[tuple[str, str]] = [
            (field, field) if isinstance(field, str) else tuple(field) for field in pairs
        ]
        self._plain_dicts_ok = type(self).serialize_field is XlsxItemExporter.serialize_field
        self._book: Workbook | None = None
        self._notes: _SheetSeries | None = None
        self._formats: _Formats | None = None
        self._writers: list[_Writer] = []
        # userId -> [nickName, fansNum, picturePrice, videoPrice, currentLevel, location,
        #            contentTags text, notes in this file]
        self._creators: dict[str, list[Any]] = {}
        if _has_content(file) or "a" in str(getattr(file, "mode", "")):
            # The crawl command refuses this before any call (xlsx_feed_problem); reached
            # only from other entry points.
            logger.error(
                "An Excel workbook cannot be appended to: the feed file will not open; "
                "write it with -O (overwrite) instead"
            )

    # -- BaseItemExporter -----------------------------------------------------------------

    def start_exporting(self) -> None:
        import xlsxwriter  # here, not at import time: every crawl imports this module

        book = xlsxwriter.Workbook(
            self.file,
            {
                "constant_memory": True,
                # write_string() is used for text anyway; these keep write() honest too.
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
            },
        )
        self._book = book
        self._formats = _Formats(
            header=book.add_format({"bold": True, "bottom": 1}),
            text=book.add_format({"num_format": "@"}),
            time=book.add_format({"num_format": _DATE_FORMAT}),
        )
        columns = [_column(source, header) for source, header in self._fields]
        self._writers = [
            self._write_time if c.kind == _TIME else self._write_value for c in columns
        ]
        self._notes = _SheetSeries(book, NOTES_SHEET, columns, self.sheet_max_rows, self._formats)

    def export_item(self, item: Any) -> None:
        notes = self._notes
        assert notes is not None, "start_exporting() first"
        if type(item) is dict and self._plain_dicts_ok:
            values = [item.get(source) for source, _ in self._fields]
            self._count_creator(item)
        else:
            values = [value for _, value in self.get_serialized_fields(item, include_empty=True)]
            self._count_creator(ItemAdapter(item))
        row = notes.next_row()
        sheet = notes.sheet
        for col, (write, value) in enumerate(zip(self._writers, values, strict=True)):
            if value is not None:
                write(sheet, row, col, value)

    def finish_exporting(self) -> None:
        book, notes = self._book, self._notes
        assert book is not None and notes is not None and self._formats is not None
        notes.close()
        creators = _SheetSeries(
            book, CREATORS_SHEET, list(CREATOR_COLUMNS), self.sheet_max_rows, self._formats
        )
        for user_id, record in self._creators.items():
            row = creators.next_row()
            sheet = creators.sheet
            for col, value in enumerate((user_id, *record)):
                if value is not None:
                    self._write_value(sheet, row, col, value)
        creators.close()
        self._creators.clear()
        book.close()

    def serialize_field(self, field: Mapping[str, Any], name: str, value: Any) -> Any:
        serializer = field.get("serializer")
        return value if serializer is None else serializer(value)

    def get_serialized_fields(
        self, item: Any, default_value: Any = None, include_empty: bool | None = None
    ) -> Any:
        # In column order with every column present (Scrapy's own skips missing keys).
        adapter = ItemAdapter(item)
        return [
            (out, self.serialize_field(adapter.get_field_meta(src), out, adapter[src]))
            if src in adapter
            else (out, default_value)
            for src, out in self._fields
        ]

    # -- cells ----------------------------------------------------------------------------------

    def _write_text(self, sheet: Worksheet, row: int, col: int, text: str) -> None:
        if not text:  # an empty cell, as for None (not a "" that COUNTA counts)
            return
        text = fit_text(text)
        if text.startswith("<r>") and text.endswith("</r>"):
            sheet.write_rich_string(row, col, *_rich_fragments(text), self._text_format)
        else:
            sheet.write_string(row, col, text)

    @property
    def _text_format(self) -> Format:
        assert self._formats is not None
        return self._formats.text

    def _write_value(self, sheet: Worksheet, row: int, col: int, value: Any) -> None:
        kind = type(value)
        if kind is str:
            self._write_text(sheet, row, col, value)
        elif kind is int:
            if -_EXACT_INT < value < _EXACT_INT:
                sheet.write_number(row, col, value)
            else:
                self._write_text(sheet, row, col, str(value))
        elif kind is bool:
            sheet.write_boolean(row, col, value)
        elif kind is float:
            if math.isfinite(value):  # XlsxWriter refuses NaN and infinities: leave empty
                sheet.write_number(row, col, value)
        elif isinstance(value, Mapping | list | tuple | set | frozenset):
            self._write_text(sheet, row, col, _dumps(value).decode("utf-8"))
        elif isinstance(value, datetime):
            self._write_time(sheet, row, col, value)
        else:  # Decimal, other int/str subclasses, anything else: its text
            self._write_text(sheet, row, col, str(value))

    def _write_time(self, sheet: Worksheet, row: int, col: int, value: Any) -> None:
        moment = _excel_time(value)
        if moment is None:  # not a time after all: keep what it is
            if isinstance(value, datetime):
                self._write_text(sheet, row, col, value.isoformat())
            else:
                self._write_value(sheet, row, col, value)
            return
        assert self._formats is not None
        sheet.write_datetime(row, col, moment, self._formats.time)

    # -- creators -------------------------------------------------------------------------------

    def _count_creator(self, item: Mapping[str, Any] | ItemAdapter) -> None:
        kol = item.get("kol")
        if not isinstance(kol, Mapping):
            kol = None
        user_id = item.get("userId") or (kol.get("userId") if kol else None)
        if not isinstance(user_id, str) or not user_id:
            return
        record = self._creators.get(user_id)
        if record is None:
            record = self._creators[user_id] = [item.get("name"), *([None] * 6), 0]
        record[7] += 1
        if kol is not None:  # the latest values seen win
            record[0] = kol.get("nickName") or record[0]
            record[1:6] = [kol.get(key) for key in _KOL_KEYS]
            record[6] = _tags_text(kol.get("contentTags"))
