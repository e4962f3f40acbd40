"""Workbook helpers shared by the workbook tests: the header, IDs Excel would turn into numbers,
and a sheet's rows as dicts."""

from __future__ import annotations

from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from pgy_spider.exporters import CSV_FIELDS

TIME_COLUMNS = ("createdAt", "updatedAt", "userUpdatedAt", "fetchedAt")
HEADER = [f"{name} (UTC)" if name in TIME_COLUMNS else name for name in CSV_FIELDS]
ALL_DIGIT_ID = "651234560000000000123456"
EXPONENT_ID = "6512e340000000000000" + "1234"  # digits around one "e": a number to Excel


def rows(sheet: Worksheet) -> list[dict[str, Any]]:
    header = [cell.value for cell in sheet[1]]
    return [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]
