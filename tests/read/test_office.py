"""Word, PowerPoint and Excel files made here with python-docx, python-pptx and openpyxl, and
OpenDocument text written by hand: every sentence comes back once, in order, under its
heading path and on its slide or sheet; tables become rows, speaker notes are read."""

from __future__ import annotations

import datetime
import io
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from helpers import db_rows, file_info
from pptx.util import Inches
from test_zip_safety import bomb

import ragidx
from ragidx.chunk import chunk_document
from ragidx.config import ChunkConfig, IndexConfig
from ragidx.embed import HashEmbedder
from ragidx.models import Chunk, Document, FileStatus
from ragidx.read import NotText, Unreadable, read_document

SMALL = ChunkConfig(chunk_tokens=40, chunk_overlap=0)


def _in_order(doc: Document, sentences: list[str]) -> None:
    positions = [doc.text.find(s) for s in sentences]
    missing = [s for s, p in zip(sentences, positions, strict=True) if p < 0]
    assert not missing, missing
    assert positions == sorted(positions)
    assert all(doc.text.count(s) == 1 for s in sentences)


def _chunk_of(chunks: list[Chunk], text: str) -> Chunk:
    (found,) = [c for c in chunks if text in c.text]
    return found


def _docx() -> bytes:
    d = docx.Document()
    d.add_heading("Household Metals", 0)
    d.add_heading("Kettles", 1)
    d.add_paragraph("Copper kettles boil water quickly.")
    d.add_paragraph("# A line that only looks like a heading.")
    d.add_paragraph("Kettles need descaling twice a year.", style="List Bullet")
    d.add_paragraph("Handles should stay cool to the touch.", style="List Bullet")
    table = d.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "Metal", (0, 1): "Use", (1, 0): "Brass", (1, 1): "Lamps"}.items():
        table.cell(r, c).text = text
    # A localized heading style: its name is no "Heading 1", its outline level (0: the first)
    # says it is one; a style based on it is a heading too.
    styles = d.styles
    local = styles.add_style("Überschrift Eigen", WD_STYLE_TYPE.PARAGRAPH)
    local.element.get_or_add_pPr().append(parse_xml(f'<w:outlineLvl {nsdecls("w")} w:val="0"/>'))
    derived = styles.add_style("Abgeleitet", WD_STYLE_TYPE.PARAGRAPH)
    derived.base_style = local
    d.add_paragraph("Lamps", style=local)
    paragraph = d.add_paragraph("Brass lamps glow")
    paragraph.add_run().add_tab()
    paragraph.add_run("in the evening.")
    # Tracked changes: a deletion is left out, an insertion kept.
    paragraph._p.append(
        parse_xml(
            f'<w:del {nsdecls("w")} w:id="1" w:author="a"><w:r><w:delText>'
            "Deleted words never show.</w:delText></w:r></w:del>"
        )
    )
    paragraph._p.append(
        parse_xml(
            f'<w:ins {nsdecls("w")} w:id="2" w:author="a"><w:r><w:t xml:space="preserve">'
            " Inserted words do.</w:t></w:r></w:ins>"
        )
    )
    d.add_paragraph("Gates", style=derived)
    d.add_paragraph("Iron gates creak in the wind.")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def test_a_docx_gives_its_paragraphs_in_order_under_its_headings(tmp_path: Path) -> None:
    doc = read_document(file_info(tmp_path / "metals.docx", _docx()))
    assert doc.format == "markdown"
    _in_order(
        doc,
        [
            "# Household Metals",
            "Copper kettles boil water quickly.",
            "A line that only looks like a heading.",
            "- Kettles need descaling twice a year.\n- Handles should stay cool",
            "| Metal | Use |\n| --- | --- |\n| Brass | Lamps |",
            "Brass lamps glow\tin the evening. Inserted words do.",
            "Iron gates creak in the wind.",
        ],
    )
    assert "Deleted words" not in doc.text
    assert "\\# A line that only looks like a heading." in doc.text
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=24, chunk_overlap=0))
    assert all(doc.text[c.char_start : c.char_end] == c.text for c in chunks)
    assert _chunk_of(chunks, "Copper kettles").heading_path == ("Household Metals", "Kettles")
    assert _chunk_of(chunks, "| Brass |").heading_path == ("Household Metals", "Kettles")
    assert _chunk_of(chunks, "Brass lamps glow").heading_path == ("Household Metals", "Lamps")
    assert _chunk_of(chunks, "Iron gates").heading_path == ("Household Metals", "Gates")
    assert all("only looks like" not in " ".join(c.heading_path) for c in chunks)


def _pptx() -> bytes:
    deck = pptx.Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Quarterly kettles"
    first.placeholders[1].text = "Sales of kettles rose.\nReturns of kettles fell."
    first.notes_slide.notes_text_frame.text = "Mention the copper line first."
    second = deck.slides.add_slide(deck.slide_layouts[6])  # blank: no title
    box = second.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1))
    box.text_frame.text = "A slide without a title speaks of lamps."
    grid = second.shapes.add_table(2, 2, Inches(1), Inches(3), Inches(4), Inches(1)).table
    for (r, c), text in {(0, 0): "Lamp", (0, 1): "Watts", (1, 0): "Desk", (1, 1): "40"}.items():
        grid.cell(r, c).text = text
    third = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    third.shapes.title.text = "Gates"
    box = third.shapes.add_textbox(Inches(1), Inches(2), Inches(4), Inches(1))
    box.text_frame.text = "Iron gates close the deck."
    # Presentation order is sldIdLst's, not the parts' names: the third slide comes second.
    ids = deck.slides._sldIdLst
    ids.insert(1, ids[2])
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def test_a_pptx_gives_each_slide_as_a_section_with_its_notes(tmp_path: Path) -> None:
    doc = read_document(file_info(tmp_path / "deck.pptx", _pptx()))
    assert doc.unit == "slide" and len(doc.pages) == 3 and doc.pages[0] == 0
    sentences = [
        "# Quarterly kettles",
        "Sales of kettles rose.\nReturns of kettles fell.",
        "Notes:\nMention the copper line first.",
        "# Gates",
        "Iron gates close the deck.",
        "# Slide 3",
        "A slide without a title speaks of lamps.",
        "| Lamp | Watts |\n| --- | --- |\n| Desk | 40 |",
    ]
    _in_order(doc, sentences)
    assert [doc.text.find(s) for s in ("# Quarterly", "# Gates", "# Slide 3")] == list(doc.pages)
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=20, chunk_overlap=0))
    for text, slide, title in [
        ("Sales of kettles", 1, "Quarterly kettles"),
        ("Mention the copper", 1, "Quarterly kettles"),
        ("Iron gates", 2, "Gates"),
        ("| Desk | 40 |", 3, "Slide 3"),
    ]:
        chunk = _chunk_of(chunks, text)
        assert (chunk.page_start, chunk.page_end, chunk.heading_path) == (slide, slide, (title,))


def _xlsx() -> bytes:
    book = openpyxl.Workbook()
    people = book.active
    people.title = "People"
    people.append(["Name", "Age", "Born", "Member", "Share"])
    for i in range(30):
        people.append([f"Person {i}", 20 + i, datetime.date(1990, 1, 1 + i), i % 2 == 0, i / 4])
    places = book.create_sheet("Places")
    places.append(["City", "Country"])
    places.append(["Oslo", "Norway"])
    places["D5"] = "a cell off to the side"
    book.create_sheet("Empty")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_gives_each_sheet_as_rows_under_its_header(tmp_path: Path) -> None:
    doc = read_document(file_info(tmp_path / "book.xlsx", _xlsx()))
    assert doc.unit == "sheet" and len(doc.pages) == 3
    header = "| Name | Age | Born | Member | Share |\n| --- | --- | --- | --- | --- |"
    rows = [f"| Person {i} | {20 + i} | 1990-01-{1 + i:02d} |" for i in range(30)]
    _in_order(doc, ["# People", header, *rows, "# Places", "| Oslo | Norway |", "# Empty"])
    assert "| Person 1 | 21 | 1990-01-02 | FALSE | 0.25 |" in doc.text
    assert "|  |  |  | a cell off to the side |" in doc.text
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=128, chunk_overlap=0))
    people = [c for c in chunks if "Person" in c.text]
    assert len(people) > 3  # the rows are cut into several chunks
    columns = "columns: Name | Age | Born | Member | Share"
    for chunk in people:
        # The header is in every chunk's heading path, so in what the embedder reads.
        assert chunk.heading_path == ("People", columns)
        assert chunk.input.startswith(f"People > {columns}\n\n")
        assert (chunk.page_start, chunk.page_end) == (1, 1)
    oslo = _chunk_of(chunks, "Oslo")
    assert oslo.heading_path == ("Places", "columns: City | Country") and oslo.page_start == 2


def test_a_sheet_with_a_far_cell_reads_in_little_memory(tmp_path: Path) -> None:
    """A cell at A1 and one at XFD200000: python-calamine asks for 100 GB here."""
    book = openpyxl.Workbook()
    book.active["A1"] = "near"
    book.active.cell(row=200_000, column=16_384, value="far")
    out = io.BytesIO()
    book.save(out)
    doc = read_document(file_info(tmp_path / "far.xlsx", out.getvalue()))
    assert doc.text.count("|") == 2 + 2 + 16_385  # header, separator, the far row
    assert doc.text.rstrip().endswith("| far |")


_ODT_CONTENT = """<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" office:version="1.3">
<office:body><office:text>
<text:tracked-changes><text:changed-region text:id="c1"><text:deletion>
<text:p>Removed words stay out.</text:p></text:deletion></text:changed-region>
</text:tracked-changes>
<text:h text:outline-level="1">Kettles</text:h>
<text:p>Copper <text:span>kettles</text:span> boil<text:s text:c="2"/>fast.<text:note>
<text:note-body><text:p>A footnote.</text:p></text:note-body></text:note></text:p>
<text:list><text:list-item><text:p>Descale them.</text:p>
<text:list><text:list-item><text:p>Twice a year.</text:p></text:list-item></text:list>
</text:list-item></text:list>
<text:section><text:h text:outline-level="2">Lamps</text:h>
<table:table><table:table-row><table:table-cell><text:p>Lamp</text:p></table:table-cell>
<table:table-cell><text:p>Watts</text:p></table:table-cell></table:table-row>
<table:table-rows><table:table-row><table:table-cell><text:p>Desk</text:p></table:table-cell>
<table:table-cell><text:p>40</text:p></table:table-cell></table:table-row></table:table-rows>
</table:table>
<text:p>Brass lamps glow.</text:p></text:section>
</office:text></office:body></office:document-content>
"""


def _odt() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        z.writestr("META-INF/manifest.xml", "<manifest/>")
        z.writestr("content.xml", _ODT_CONTENT, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def test_an_odt_gives_headings_paragraphs_lists_and_tables(tmp_path: Path) -> None:
    doc = read_document(file_info(tmp_path / "notes.odt", _odt()))
    _in_order(
        doc,
        [
            "# Kettles",
            "Copper kettles boil  fast.",
            "- Descale them.\n  - Twice a year.",
            "## Lamps",
            "| Lamp | Watts |\n| --- | --- |\n| Desk | 40 |",
            "Brass lamps glow.",
        ],
    )
    assert "Removed words" not in doc.text and "footnote" not in doc.text
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=16, chunk_overlap=0))
    assert _chunk_of(chunks, "Brass lamps").heading_path == ("Kettles", "Lamps")


def test_a_run_indexes_office_files_and_fails_a_zip_bomb(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "metals.docx").write_bytes(_docx())
    (docs / "deck.pptx").write_bytes(_pptx())
    (docs / "book.xlsx").write_bytes(_xlsx())
    (docs / "bomb.docx").write_bytes(bomb())
    config = IndexConfig(db_path=tmp_path / "idx.db", workers=1)
    summary = ragidx.index([docs], HashEmbedder(), config)
    assert summary.counts[FileStatus.INDEXED] == 3
    assert summary.counts[FileStatus.FAILED] == 1
    assert not summary.ok
    (reason,) = [
        r for (r,) in db_rows(tmp_path / "idx.db", "SELECT reason FROM files WHERE status='failed'")
    ]
    assert reason.startswith("too_large: zip bomb: entry word/document.xml expands")
    stored = " ".join(t for (t,) in db_rows(tmp_path / "idx.db", "SELECT text FROM chunks"))
    for sentence in ["Copper kettles boil", "Mention the copper line", "| Person 29 | 49 |"]:
        assert stored.count(sentence) == 1


def _mangled(data: bytes, rng: random.Random) -> bytes:
    """`data` with one entry's XML cut short, bytes changed, or elements dropped."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    name = rng.choice([n for n in entries if n.endswith((".xml", ".rels"))])
    xml = entries[name]
    how = rng.randrange(3)
    if how == 0:
        xml = xml[: rng.randrange(len(xml))]
    elif how == 1:
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(xml))
            xml = xml[:at] + bytes([rng.randrange(256)]) + xml[at + 1 :]
    else:  # well-formed, but elements where they are not expected
        xml = xml.replace(b"<w:p>", b"<w:p><w:pPr><w:numPr/></w:pPr>").replace(
            b'r:id="', b'r:id="x'
        )
        xml = xml.replace(b'numFmtId="', b'numFmtId="9').replace(b'text:c="', b'text:c="x')
    entries[name] = xml
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for entry, content in entries.items():
            z.writestr(entry, content)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "make"),
    [("a.docx", _docx), ("a.pptx", _pptx), ("a.xlsx", _xlsx), ("a.odt", _odt)],
)
def test_mangled_documents_read_or_say_why(
    tmp_path: Path, name: str, make: Callable[[], bytes]
) -> None:
    """Never an exception other than `NotText` (skip) or `Unreadable` (fail)."""
    rng = random.Random(name)
    data = make()
    outcomes = set()
    for _ in range(40):
        try:
            read_document(file_info(tmp_path / name, _mangled(data, rng)))
            outcomes.add("read")
        except (NotText, Unreadable):
            outcomes.add("refused")
    assert outcomes == {"read", "refused"}
