"""The documents benchmark's corpus: PDFs, DOCX and PPTX files written from a seeded RNG.

    generate_pdfs(folder, count) / generate_docx(folder, count) / generate_pptx(folder, count)
    big_pdf(folder, pages)

Words come from sample_docs' English prose (a real vocabulary, about two thousand words),
and Greek and Russian words for the pages set in DejaVu Sans where that font is installed
(fpdf2's core fonts are Latin-1 only; without the font those pages are Latin). File i of a
kind is seeded by i alone, so the first 20 PDFs of the full set are the quick set's 20.

A PDF has 10-50 pages, each one of: prose (a heading in the outline, paragraphs), two
columns, a table, a non-Latin page; about one page in twelve is then turned a quarter
(/Rotate 90, through pikepdf). DOCX: a title, Heading 1/2, paragraphs, bullets, a table.
PPTX: title slides and bullet slides, some with a table or speaker notes. Each generator
returns what the benchmark counts: pages of each PDF, slides of each deck. A writer's error
propagates (the corpus is then not cached).
"""

# ruff: noqa: RUF001  (Greek and Russian words, on purpose)

from __future__ import annotations

import datetime as dt
import random
import re
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["big_pdf", "generate_docx", "generate_pdfs", "generate_pptx", "words"]

ROOT = Path(__file__).resolve().parent.parent
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
WHEN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
GREEK = (
    "και το της η ο σε να για με από που δεν είναι θα αυτό ένα στην ουρά εργασία διακομιστής "
    "αρχείο σελίδα κείμενο δεδομένα χρόνος αναφορά ομάδα σύστημα βάση μήνυμα αποθήκευση"
).split()
RUSSIAN = (
    "и в не на что с по это как из для очередь задача сервер файл страница текст данные "
    "время отчёт команда система база сообщение хранение работа процесс запрос ответ"
).split()


_WORD = re.compile(r"[A-Za-z]{2,14}")


def words() -> list[str]:
    """The English words of sample_docs' prose, sorted (so the same on every machine)."""
    found: set[str] = set()
    for path in sorted((ROOT / "sample_docs").rglob("*")):
        if path.suffix in {".md", ".txt", ".rst"} and not {"i18n", "legacy"} & set(path.parts):
            text = path.read_text(encoding="utf-8", errors="replace")
            found.update(w.lower() for w in re.findall(r"\w+", text) if _WORD.fullmatch(w))
    return sorted(found)


def _sentence(rng: random.Random, vocab: list[str]) -> str:
    text = " ".join(rng.choices(vocab, k=rng.randint(6, 22)))
    return text[0].upper() + text[1:] + rng.choice("....?")


def _paragraph(rng: random.Random, vocab: list[str], sentences: int) -> str:
    return " ".join(_sentence(rng, vocab) for _ in range(sentences))


def _title(rng: random.Random, vocab: list[str]) -> str:
    return " ".join(rng.choices(vocab, k=rng.randint(2, 5))).capitalize()


# --- PDF ----------------------------------------------------------------------------------


def _pdf(path: Path, seed: int, pages: int, vocab: list[str], varied: bool = True) -> str:
    """Writes the PDF; returns its layout, a letter a page: p prose, c two columns, t a
    table, u Greek or Russian, r turned a quarter (whatever it holds)."""
    from fpdf import FPDF

    rng = random.Random(seed)
    pdf = FPDF(format="A4")
    pdf.set_creation_date(WHEN)
    pdf.set_auto_page_break(False)
    pdf.set_margins(20, 20, 20)
    unicode = varied and DEJAVU.is_file()
    if unicode:
        pdf.add_font("dejavu", "", str(DEJAVU))
    bottom = pdf.h - 45
    widths: dict[tuple[str, str], float] = {}
    layout = []
    for n in range(pages):
        pdf.add_page()
        roll = rng.random() if varied and n else 1.0
        heading = f"{n + 1}. {_title(rng, vocab)}"
        pdf.start_section(heading, level=0 if n % 4 == 0 else 1)
        pdf.set_font("helvetica", "B", 15)
        pdf.cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        layout.append(
            "c" if roll < 0.12 else "t" if roll < 0.22 else "u" if roll < 0.28 and unicode else "p"
        )
        if roll < 0.12:
            _columns(pdf, rng, vocab)
        elif roll < 0.22:
            _table(pdf, rng, vocab)
        elif roll < 0.28 and unicode:
            pdf.set_font("dejavu", "", 11)
            lang = GREEK if rng.random() < 0.5 else RUSSIAN
            while pdf.get_y() < bottom:
                _wrapped(pdf, _paragraph(rng, lang, rng.randint(2, 4)), widths)
        else:
            pdf.set_font("helvetica", "", 11)
            while pdf.get_y() < bottom:
                if rng.random() < 0.15:
                    pdf.set_font("helvetica", "B", 12)
                    pdf.cell(0, 8, _title(rng, vocab), new_x="LMARGIN", new_y="NEXT")
                    pdf.set_font("helvetica", "", 11)
                _wrapped(pdf, _paragraph(rng, vocab, rng.randint(2, 4)), widths)
    pdf.output(str(path))
    if varied:
        rotated = [n for n in range(1, pages) if rng.random() < 1 / 12]
        if rotated:
            import pikepdf

            with pikepdf.open(path, allow_overwriting_input=True) as doc:
                for n in rotated:
                    doc.pages[n].obj[pikepdf.Name.Rotate] = 90
                    layout[n] = "r"
                doc.save(path, deterministic_id=True)
    return "".join(layout)


def _wrapped(pdf: Any, text: str, widths: dict[tuple[str, str], float]) -> None:
    """`text` as a left-aligned paragraph, 6 mm a line: fpdf2's `multi_cell` spends 50 ms
    a page finding line breaks, this a tenth of that (each word measured once)."""
    room, font = pdf.w - pdf.l_margin - pdf.r_margin, pdf.font_family + pdf.font_style

    def width(word: str) -> float:
        key = (font, word)
        if key not in widths:
            widths[key] = pdf.get_string_width(word)
        return widths[key]

    space, line, used = width(" "), [], 0.0
    y = pdf.get_y() + 4.5
    for word in text.split():
        w = width(word)
        if line and used + space + w > room:
            pdf.text(pdf.l_margin, y, " ".join(line))
            y, line, used = y + 6, [], 0.0
        used += (space if line else 0.0) + w
        line.append(word)
    if line:
        pdf.text(pdf.l_margin, y, " ".join(line))
    pdf.set_y(y + 4.5)


def _columns(pdf: Any, rng: random.Random, vocab: list[str]) -> None:
    pdf.set_font("helvetica", "", 10)
    with pdf.text_columns(ncols=2, gutter=8, balance=True) as cols:
        for _ in range(rng.randint(5, 7)):
            cols.write(_paragraph(rng, vocab, 3))
            cols.ln()
            cols.ln()


def _table(pdf: Any, rng: random.Random, vocab: list[str]) -> None:
    pdf.set_font("helvetica", "", 10)
    with pdf.table(col_widths=(40, 60, 30, 40)) as table:
        for r in range(rng.randint(10, 22)):
            row = table.row()
            if r == 0:
                cells = ["Name", "Description", "Count", "Owner"]
            else:
                cells = [
                    _title(rng, vocab),
                    " ".join(rng.choices(vocab, k=rng.randint(3, 8))),
                    str(rng.randint(0, 99999)),
                    rng.choice(vocab).capitalize(),
                ]
            for cell in cells:
                row.cell(cell)


def _pdf_job(args: tuple[Path, int]) -> str:
    path, seed = args
    vocab = words()
    pages = random.Random(seed).randint(10, 50)
    return _pdf(path, seed, pages, vocab)


def generate_pdfs(folder: Path, count: int) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"doc{i:04d}.pdf", 1000 + i) for i in range(count)]
    with ProcessPoolExecutor(2) as pool:
        layouts = dict(zip((p.name for p, _ in jobs), pool.map(_pdf_job, jobs), strict=True))
    units = {name: len(layout) for name, layout in layouts.items()}
    return {"files": count, "units": units, "layouts": layouts}


def big_pdf(folder: Path, pages: int) -> dict[str, Any]:
    """One PDF of `pages` pages of prose: the memory check's."""
    folder.mkdir(parents=True, exist_ok=True)
    _pdf(folder / f"big{pages}.pdf", 7, pages, words(), varied=False)  # prose only
    return {"files": 1, "units": {f"big{pages}.pdf": pages}}


# --- DOCX and PPTX ------------------------------------------------------------------------


def _fixed_zip(path: Path) -> None:
    """Entries restamped with a fixed time: the writers stamp the clock."""
    with zipfile.ZipFile(path) as old:
        entries = [(info.filename, old.read(info)) for info in old.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for name, data in entries:
            info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            new.writestr(info, data)


def _docx(path: Path, seed: int, vocab: list[str]) -> int:
    from docx import Document

    rng = random.Random(seed)
    doc = Document()
    doc.core_properties.created = doc.core_properties.modified = WHEN.replace(tzinfo=None)
    doc.add_heading(_title(rng, vocab), level=0)
    for _ in range(rng.randint(4, 14)):
        doc.add_heading(_title(rng, vocab), level=1)
        for _ in range(rng.randint(1, 4)):
            roll = rng.random()
            if roll < 0.15:
                doc.add_heading(_title(rng, vocab), level=2)
            if roll < 0.3:
                for _ in range(rng.randint(2, 6)):
                    doc.add_paragraph(_sentence(rng, vocab), style="List Bullet")
            elif roll < 0.4:
                rows, cols = rng.randint(3, 8), rng.randint(2, 4)
                table = doc.add_table(rows=rows, cols=cols)
                for row in table.rows:
                    for cell in row.cells:
                        cell.text = " ".join(rng.choices(vocab, k=rng.randint(1, 4)))
            else:
                doc.add_paragraph(_paragraph(rng, vocab, rng.randint(2, 7)))
    doc.save(str(path))
    _fixed_zip(path)
    return 1


def _pptx(path: Path, seed: int, vocab: list[str]) -> int:
    from pptx import Presentation
    from pptx.util import Inches

    rng = random.Random(seed)
    deck = Presentation()
    deck.core_properties.created = deck.core_properties.modified = WHEN.replace(tzinfo=None)
    slides = rng.randint(8, 30)
    for n in range(slides):
        roll = rng.random()
        if n == 0:
            slide = deck.slides.add_slide(deck.slide_layouts[0])
            slide.shapes.title.text = _title(rng, vocab)
            slide.placeholders[1].text = _sentence(rng, vocab)
        elif roll < 0.15:
            slide = deck.slides.add_slide(deck.slide_layouts[5])
            slide.shapes.title.text = _title(rng, vocab)
            rows, cols = rng.randint(3, 6), rng.randint(2, 4)
            shape = slide.shapes.add_table(
                rows, cols, Inches(0.5), Inches(1.8), Inches(9), Inches(0.4 * rows)
            )
            for r in range(rows):
                for c in range(cols):
                    shape.table.cell(r, c).text = " ".join(rng.choices(vocab, k=rng.randint(1, 3)))
        else:
            slide = deck.slides.add_slide(deck.slide_layouts[1])
            slide.shapes.title.text = _title(rng, vocab)
            body = slide.placeholders[1].text_frame
            body.text = _sentence(rng, vocab)
            for _ in range(rng.randint(1, 5)):
                body.add_paragraph().text = _sentence(rng, vocab)
        if rng.random() < 0.3:
            slide.notes_slide.notes_text_frame.text = _paragraph(rng, vocab, 2)
    deck.save(str(path))
    _fixed_zip(path)
    return slides


def _office_job(args: tuple[str, Path, int]) -> int:
    kind, path, seed = args
    return (_docx if kind == "docx" else _pptx)(path, seed, words())


def _office(folder: Path, count: int, kind: str, base: int) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(kind, folder / f"doc{i:04d}.{kind}", base + i) for i in range(count)]
    with ProcessPoolExecutor(2) as pool:
        units = list(pool.map(_office_job, jobs))
    return {"files": count, "units": dict(zip((p.name for _, p, _ in jobs), units, strict=True))}


def generate_docx(folder: Path, count: int) -> dict[str, Any]:
    return _office(folder, count, "docx", 5000)


def generate_pptx(folder: Path, count: int) -> dict[str, Any]:
    return _office(folder, count, "pptx", 9000)
