"""Excel workbooks (XLSX, XLSM): each worksheet a section of Markdown table rows.

A sheet's section is headed by its name; its first row with a value is the table's header,
and also a heading under the sheet's (`columns: Name | Age`), so every chunk of the sheet's
rows carries the header in its heading path while its text stays a slice of the document.
`Document.pages` holds where each sheet starts (`unit="sheet"`). Values are shown as Excel
stores them: numbers without a trailing `.0`, dates (by their cell's number format) as ISO
dates, booleans as TRUE/FALSE, formulas by their cached value.

Rows are read with lxml's iterparse, as they come, in bounded memory: python-calamine
builds a dense grid of each sheet, so a few kilobytes with a cell at A1 and one at XFD200000
abort the process asking for 100 GB.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from typing import Any

from ragidx.models import Document
from ragidx.read.base import Source
from ragidx.read.markdown import Markdown, cell
from ragidx.read.zipped import Archive, Format, add_format, office_package, safe_iterparse

__all__ = ["MAX_COLUMNS", "XLSX", "read_xlsx"]

MAX_COLUMNS = 16_384  # Excel's own: column XFD
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_C, _V, _T = f"{_S}c", f"{_S}v", f"{_S}t"
_COLUMN = re.compile(r"[A-Z]{1,3}")
# Built-in number formats that show dates, times, or both.
_DATE_FORMATS = frozenset(range(14, 18)) | {22, 27, 30, 36, 50, 57}
_TIME_FORMATS = frozenset({18, 19, 20, 21, 45, 46, 47})
_ELAPSED = re.compile(r"\[([hms]+)\]")  # [h]:mm counts hours past a day: still a time
_QUOTED = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')
_LAST_SERIAL = 2_958_465  # 9999-12-31


def read_xlsx(source: Source, archive: Archive) -> Document:
    """The Markdown of a workbook's worksheets."""
    main = archive.main_part("xl/workbook.xml")
    workbook = archive.xml(main, required=True)
    rels = archive.rels(main)
    strings, styles = [], None
    for kind, target in rels.values():
        if kind.endswith("/sharedStrings"):
            strings = _shared_strings(archive, target)
        elif kind.endswith("/styles"):
            styles = archive.xml(target)
    pr = workbook.find(f"{_S}workbookPr")
    values = _Values(strings, styles, pr is not None and pr.get("date1904") in ("1", "true"))
    out = Markdown()
    for sheet in workbook.iterfind(f"{_S}sheets/{_S}sheet"):
        rel = rels.get(sheet.get(_R_ID) or "")
        if rel is None or not rel[0].endswith("/worksheet"):
            continue  # chart sheets and dialogs hold no rows
        out.page()
        out.heading(1, sheet.get("name") or "Sheet", text=False)
        data = archive.read(rel[1])
        if data is not None:
            out.table(_rows(data, values), header_level=2)
    return out.document(source, "xlsx", unit="sheet")


def _shared_strings(archive: Archive, part: str) -> list[str]:
    data = archive.read(part)
    if data is None:
        return []
    found = []
    for si in safe_iterparse(data, f"{_S}si"):
        # A string's runs; its phonetic guide (rPh) is not what the cell shows.
        found.append(
            cell("".join(t.text or "" for t in si.iter(_T) if t.getparent().tag != f"{_S}rPh"))
        )
    return found


def _rows(data: bytes, values: _Values) -> Iterator[list[str]]:
    """A sheet's rows as cells, empty ones where a row skips columns."""
    columns: dict[str, int] = {}
    show = values.show
    for row in safe_iterparse(data, f"{_S}row"):
        cells: dict[int, str] = {}
        column = 0
        for c in row.iterchildren(_C):
            ref = c.get("r")
            letters = ref.rstrip("0123456789") if ref else ""
            known = columns.get(letters)
            if known is None:
                known = columns[letters] = _column_number(letters)
            column = known or column + 1
            if column <= MAX_COLUMNS:
                shown = show(c)
                if shown:
                    cells[column] = shown
        if cells:
            yield [cells.get(k, "") for k in range(1, max(cells) + 1)]


def _column_number(letters: str) -> int:
    """A column's number from its letters (A is 1), 0 for what is no column."""
    if not _COLUMN.fullmatch(letters):
        return 0
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - 64
    return number


class _Values:
    """Cells as text: shared and inline strings, numbers, dates by their number format."""

    def __init__(self, strings: list[str], styles: Any, date1904: bool) -> None:
        self.strings = strings
        self.epoch = dt.datetime(1904, 1, 1) if date1904 else dt.datetime(1899, 12, 30)
        self.kinds: list[str | None] = []  # by style index: "date", "time", "datetime" or None
        if styles is None:
            return
        custom = {
            int(f.get("numFmtId") or -1): f.get("formatCode") or ""
            for f in styles.iterfind(f"{_S}numFmts/{_S}numFmt")
            if (f.get("numFmtId") or "").isdigit()
        }
        for xf in styles.iterfind(f"{_S}cellXfs/{_S}xf"):
            fid = xf.get("numFmtId") or "0"
            self.kinds.append(_format_kind(int(fid), custom) if fid.isdigit() else None)

    def show(self, c: Any) -> str:
        """A cell's value as a Markdown table cell."""
        kind = c.get("t")
        if kind == "inlineStr":
            return cell("".join(t.text or "" for t in c.iter(_T)))
        value = None
        for child in c:
            if child.tag == _V:
                value = child.text
                break
        if value is None:
            return ""
        if kind == "s":
            index = int(value) if value.isdigit() else -1
            return self.strings[index] if 0 <= index < len(self.strings) else ""
        if kind == "b":
            return "TRUE" if value.strip() == "1" else "FALSE"
        if kind in ("str", "e", "d"):
            return cell(value)
        return self._number(value, c.get("s"))

    def _number(self, value: str, style: str | None) -> str:
        try:
            number = float(value)
        except ValueError:
            return cell(value)
        index = int(style) if style and style.isdigit() else 0
        kind = self.kinds[index] if index < len(self.kinds) else None
        if kind is not None and 0 <= number <= _LAST_SERIAL:
            try:
                return self._date(number, kind)
            except OverflowError:  # past 9999 from a 1904 epoch
                pass
        if number.is_integer() and abs(number) < 1e16:
            return str(int(number))
        return repr(number)

    def _date(self, serial: float, kind: str) -> str:
        epoch = self.epoch
        if epoch.year == 1899 and serial < 60:
            epoch += dt.timedelta(days=1)  # Excel counts a 29 February 1900 that was not
        moment = epoch + dt.timedelta(seconds=round(serial * 86400))
        if kind == "time" or (kind == "datetime" and serial < 1):
            return moment.strftime("%H:%M:%S")
        if kind == "date" and moment.time() == dt.time():
            return moment.date().isoformat()
        return moment.isoformat(sep=" ")


def _format_kind(fid: int, custom: dict[int, str]) -> str | None:
    if fid in _DATE_FORMATS:
        return "date"
    if fid in _TIME_FORMATS:
        return "time"
    code = custom.get(fid)
    if not code:
        return None
    code = _QUOTED.sub("", _ELAPSED.sub(r"\1", code.split(";", 1)[0].lower()))
    # m is months beside days or years, minutes beside hours or seconds.
    has_date = any(ch in code for ch in "dy") or ("m" in code and not any(c in code for c in "hs"))
    has_time = any(ch in code for ch in "hs")
    if has_date and has_time:
        return "datetime"
    return "date" if has_date else "time" if has_time else None


XLSX = Format(
    "XLSX",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    (".xlsx", ".xlsm"),
    functools.partial(office_package, "xl/"),
    read_xlsx,
)
add_format(XLSX)
