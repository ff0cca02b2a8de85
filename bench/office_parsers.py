"""Reading Office files: ragidx's lxml readers against python-docx, python-pptx, openpyxl and
python-calamine on the same generated files.

    uv run python bench/office_parsers.py [--files 100] [--repeat 3]

Makes --files DOCX (60 paragraphs under 6 headings, a 10-row table), PPTX (12 slides, each
a title, 5 bullets and notes) and XLSX (2 sheets of 1,000 rows by 6 columns) in memory with
the writer libraries, then times each way of getting their text from the bytes (median of
--repeat passes, one process) and prints documents per second. "agree" is the share of the
peer's non-empty paragraphs, shapes or cells that ragidx's text holds too: the check that
the faster way is also correct. python-calamine is listed for speed only: it builds a dense
grid of each sheet, so a small hostile file makes it ask for 100 GB (tests/read/test_office).
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import docx
import openpyxl
import pptx
import python_calamine
from pptx.util import Inches

from ragidx.read import Source, reader_for

READER = reader_for("x", b"PK\x03\x04")  # the reader of every zip-based document
WORDS = "copper kettle brass lamp iron gate tin cup steel pan zinc roof lead pipe".split()


def _sentence(i: int) -> str:
    return " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(12)) + f" number {i}."


def make_docx(n: int) -> bytes:
    d = docx.Document()
    d.add_heading(f"Report {n}", 0)
    for i in range(60):
        if i % 10 == 0:
            d.add_heading(f"Part {i // 10}", 1)
        d.add_paragraph(_sentence(n * 100 + i))
    table = d.add_table(rows=10, cols=3)
    for r in range(10):
        for c in range(3):
            table.cell(r, c).text = f"cell {r} {c}"
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def make_pptx(n: int) -> bytes:
    deck = pptx.Presentation()
    for s in range(12):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {s} of deck {n}"
        slide.placeholders[1].text = "\n".join(_sentence(n * 100 + s * 5 + k) for k in range(5))
        slide.notes_slide.notes_text_frame.text = _sentence(s)
        slide.shapes.add_textbox(Inches(1), Inches(6), Inches(4), Inches(1)).text = "footnote"
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def make_xlsx(n: int) -> bytes:
    book = openpyxl.Workbook()
    for s, sheet in enumerate([book.active, book.create_sheet()]):
        sheet.append(["Name", "Count", "Share", "Day", "Ok", "Note"])
        for r in range(1000):
            day = datetime.date(2020, 1, 1) + datetime.timedelta(days=r)
            sheet.append([f"item {n} {s} {r}", r, r / 7, day, r % 2 == 0, WORDS[r % 14]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def ragidx_text(data: bytes) -> str:
    return READER.read(Source(Path("x"), data, 0)).text


def docx_pieces(data: bytes) -> list[str]:
    d = docx.Document(io.BytesIO(data))
    pieces = []
    for block in d.iter_inner_content():
        if isinstance(block, docx.table.Table):
            pieces.extend(c.text for row in block.rows for c in row.cells)
        else:
            pieces.append(block.text)
    return pieces


def pptx_pieces(data: bytes) -> list[str]:
    deck = pptx.Presentation(io.BytesIO(data))
    pieces = []
    for slide in deck.slides:
        for shape in slide.shapes:
            if shape.has_text_frame:
                pieces.extend(p.text for p in shape.text_frame.paragraphs)
        if slide.has_notes_slide:
            pieces.append(slide.notes_slide.notes_text_frame.text)
    return pieces


def openpyxl_pieces(data: bytes) -> list[str]:
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    pieces = [
        _shown(v)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for v in row
    ]
    book.close()
    return pieces


def calamine_pieces(data: bytes) -> list[str]:
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    return [
        _shown(v)
        for name in book.sheet_names
        for row in book.get_sheet_by_name(name).to_python()
        for v in row
    ]


def _shown(value: object) -> str:
    """A cell's value as ragidx shows it, to compare."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _time(files: list[bytes], way: Callable[[bytes], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for data in files:
            way(data)
        runs.append(time.perf_counter() - start)
    return len(files) / statistics.median(runs)


def _agree(files: list[bytes], peer: Callable[[bytes], list[str]]) -> float:
    found = total = 0
    for data in files[:10]:
        text = ragidx_text(data)
        pieces = [" ".join(p.split()) for p in peer(data) if p.strip()]
        total += len(pieces)
        found += sum(f" {p} " in text or f"{p}\n" in text for p in pieces)
    return found / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sets = [
        ("DOCX", make_docx, [("python-docx", docx_pieces)]),
        ("PPTX", make_pptx, [("python-pptx", pptx_pieces)]),
        ("XLSX", make_xlsx, [("openpyxl", openpyxl_pieces), ("calamine", calamine_pieces)]),
    ]
    load = os.getloadavg()[0]
    print(f"load average {load:.2f}; {args.files} files each, median of {args.repeat}")
    print(f"{'format':<6} {'way':<12} {'docs/s':>8} {'agree':>6}")
    for name, make, peers in sets:
        files = [make(n) for n in range(args.files)]
        print(f"{name:<6} {'ragidx lxml':<12} {_time(files, ragidx_text, args.repeat):>8.1f}")
        for peer, way in peers:
            rate = _time(files, way, args.repeat)
            print(f"{name:<6} {peer:<12} {rate:>8.1f} {_agree(files, way):>6.3f}")


if __name__ == "__main__":
    main()
