"""PDFs made here with fpdf2: their text comes back once, in order; the outline becomes
heading paths; encrypted, scanned and broken files are skipped with their reason."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path

import pytest
from fpdf import FPDF
from helpers import Cli, file_info

import ragidx
from ragidx.chunk import chunk_document
from ragidx.config import ChunkConfig, IndexConfig
from ragidx.embed import HashEmbedder
from ragidx.models import FileStatus
from ragidx.query.search import search
from ragidx.read import NotText, Unreadable, read_document
from ragidx.store import SqliteStore

SENTENCES = [
    [f"Page one sentence {i} about copper kettles." for i in range(3)],
    ["# not a heading, only a line of the page", "-----", "Page two tells of brass lamps."],
    [f"Page three sentence {i} about iron gates." for i in range(2)],
]


def _pdf(outline: bool = True, encrypt: bool = False, text: bool = True) -> bytes:
    pdf = FPDF()
    if encrypt:
        pdf.set_encryption(owner_password="owner", user_password="user")
    _pages(pdf, outline, text)
    return bytes(pdf.output())


def _pages(pdf: FPDF, outline: bool = True, text: bool = True) -> None:
    for n, lines in enumerate(SENTENCES):
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        if outline and n in (0, 2):
            pdf.start_section("Kettles" if n == 0 else "Gates", level=0)
        if text:
            for line in lines:
                pdf.multi_cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.rect(20, 20, 100, 50, style="F")  # something drawn, no text


def test_every_sentence_comes_back_once_in_order_under_its_outline(tmp_path: Path) -> None:
    doc = read_document(file_info(tmp_path / "report.pdf", _pdf()))
    assert doc.format == "markdown"
    flat = [s for lines in SENTENCES for s in lines if s.startswith("Page")]
    positions = [doc.text.find(s) for s in flat]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    assert all(doc.text.count(s) == 1 for s in flat)
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=32, chunk_overlap=0))
    paths = {c.heading_path for c in chunks}
    assert ("Kettles",) in paths and ("Gates",) in paths
    # A page line that Markdown would take for a heading or an underline is not one.
    assert all("not a heading" not in " ".join(p) for p in paths)
    (brass,) = [c for c in chunks if "brass lamps" in c.text]
    assert brass.heading_path == ("Kettles",)
    assert all(doc.text[c.char_start : c.char_end] == c.text for c in chunks)


@pytest.mark.parametrize(
    ("data", "error", "reason"),
    [
        (_pdf(encrypt=True), NotText, "encrypted"),
        (_pdf(text=False), NotText, "no text layer"),
        (_pdf()[:300], Unreadable, "not a readable PDF"),
    ],
    ids=["encrypted", "scanned", "truncated"],
)
def test_unreadable_pdfs_say_why(
    tmp_path: Path, data: bytes, error: type[Exception], reason: str
) -> None:
    """Encrypted and scanned PDFs are skipped; a broken one fails."""
    with pytest.raises(error, match=reason):
        read_document(file_info(tmp_path / "x.pdf", data))


def test_a_run_indexes_a_pdf_and_search_finds_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.pdf").write_bytes(_pdf())
    (docs / "locked.pdf").write_bytes(_pdf(encrypt=True))
    config = IndexConfig(db_path=tmp_path / "idx.db", workers=1)
    summary = ragidx.index([docs], HashEmbedder(), config)
    assert summary.counts[FileStatus.INDEXED] == 1
    assert summary.counts[FileStatus.SKIPPED] == 1
    store = SqliteStore.open_for_reading(tmp_path / "idx.db")
    try:
        hits = asyncio.run(search(store, HashEmbedder(), "brass lamps", k=1))
    finally:
        store.close()
    assert hits[0].path.endswith("report.pdf") and "brass lamps" in hits[0].text


def test_chunks_know_their_pages_in_search_export_and_the_file_event(cli: Cli, work: Path) -> None:
    (work / "docs").mkdir()
    (work / "docs" / "report.pdf").write_bytes(_pdf())
    (work / "docs" / "notes.md").write_text("# Notes\n\nBrass lamps are polished weekly.\n")
    args = ("--db", "idx.db", "--chunk-tokens", "32", "--chunk-overlap", "0")
    result = cli("index", "docs", *args, "--json", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    files = result.files()
    assert files["docs/report.pdf"]["pages"] == 3
    assert "pages" not in files["docs/notes.md"]
    exported = [json.loads(line) for line in cli("export", "--db", "idx.db").stdout.splitlines()]
    by_text = {r["text"]: r for r in exported}
    (brass,) = [r for t, r in by_text.items() if "brass lamps" in t and "report" in r["path"]]
    assert (brass["page_start"], brass["page_end"]) == (2, 2)
    (gates,) = [r for t, r in by_text.items() if "sentence 1 about iron gates" in t]
    assert gates["page_end"] == 3
    (note,) = [r for r in exported if r["path"].endswith("notes.md")]
    assert "page_start" not in note
    hits = cli("search", "brass lamps polished", "--db", "idx.db", "-k", "5").stdout
    assert "docs/report.pdf p. 2" in hits and "docs/notes.md:1-3" in hits
    found = cli("search", "brass lamps", "--db", "idx.db", "-k", "5", "--json").stdout
    records = [json.loads(line) for line in found.splitlines()]
    (hit,) = [r for r in records if r["path"].endswith("report.pdf") and "brass" in r["text"]]
    assert (hit["page_start"], hit["page_end"]) == (2, 2)


def test_a_pdf_over_the_file_size_cap_is_held_to_the_document_cap(cli: Cli, work: Path) -> None:
    (work / "docs").mkdir()
    (work / "docs" / "report.pdf").write_bytes(_pdf())
    (work / "docs" / "notes.txt").write_text("brass " * 400)
    args = ("--db", "idx.db", "--json", "--max-file-size", "1KiB")
    files = cli("index", "docs", *args).files()
    assert files["docs/report.pdf"]["status"] == "indexed"
    assert files["docs/notes.txt"]["status"] == "skipped"
    files = cli("index", "docs", *args, "--max-document-size", "1KiB").files()
    assert files["docs/report.pdf"]["status"] == "skipped"
    assert files["docs/report.pdf"]["reason"].startswith("larger than the document size limit")
    result = cli("index", "docs", "--db", "new.db", "--max-document-size", "1KiB", "-v")
    assert "--max-document-size raises the limit" in result.stderr


def test_a_resaved_pdf_with_the_same_text_embeds_nothing_again(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    config = IndexConfig(db_path=tmp_path / "idx.db", workers=1)
    (docs / "report.pdf").write_bytes(_pdf(outline=True))
    first = ragidx.index([docs], HashEmbedder(), config)
    assert first.counts[FileStatus.INDEXED] == 1 and first.embedded > 0
    pdf = FPDF()  # the same pages saved again by another writer's settings: new bytes
    pdf.set_creation_date(datetime.datetime(2001, 2, 3, tzinfo=datetime.UTC))
    pdf.set_title("Resaved")
    _pages(pdf, outline=True)
    resaved = bytes(pdf.output())
    assert resaved != (docs / "report.pdf").read_bytes()
    (docs / "report.pdf").write_bytes(resaved)
    second = ragidx.index([docs], HashEmbedder(), config)
    assert second.counts[FileStatus.INDEXED] == 1  # read again: its bytes changed
    assert (second.embedded, second.reused) == (0, first.embedded + first.reused)


def _image_page(pdf: FPDF) -> None:
    """A page that holds only a picture: nothing a text layer can give."""
    pdf.add_page()
    pdf.set_fill_color(90, 120, 150)
    pdf.rect(20, 20, 150, 100, style="F")


def test_rotated_and_image_only_pages_keep_every_page_number_right(tmp_path: Path) -> None:
    import pikepdf

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    _image_page(pdf)
    for n in (2, 3, 4):
        pdf.add_page()
        pdf.multi_cell(0, 8, f"Sentence on page {n} about tin soldiers.")
        for line in range(4):
            pdf.set_x(pdf.l_margin)
            pdf.multi_cell(0, 8, f"Line {line} of page {n}, in the order it was written.")
    _image_page(pdf)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Sentence on page 6 about tin soldiers.")
    source = tmp_path / "made.pdf"
    source.write_bytes(bytes(pdf.output()))
    with pikepdf.open(source) as doc:
        doc.pages[2].Rotate = 90  # page 3 turned on its side
        doc.pages[3].Rotate = 270
        doc.save(tmp_path / "rotated.pdf")
    doc = read_document(file_info(tmp_path / "turned.pdf", (tmp_path / "rotated.pdf").read_bytes()))
    assert (doc.unit, len(doc.pages)) == ("page", 6)
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=16, chunk_overlap=0))
    found = {}
    for n in (2, 3, 4, 6):
        sentence = f"Sentence on page {n} about tin soldiers."
        assert doc.text.count(sentence) == 1
        (chunk,) = [c for c in chunks if sentence in c.text]
        found[n] = (chunk.page_start, chunk.page_end)
    assert found == {2: (2, 2), 3: (3, 3), 4: (4, 4), 6: (6, 6)}
    # A turned page's lines come in the order they were written, not bottom first.
    lines = [
        f"Line {line} of page {n}, in the order it was written."
        for n in (2, 3, 4)
        for line in range(4)
    ]
    at = [doc.text.find(line) for line in lines]
    assert -1 not in at and at == sorted(at)


def test_a_pdf_encrypted_with_aes_256_is_skipped_as_encrypted(tmp_path: Path) -> None:
    import pikepdf

    (tmp_path / "plain.pdf").write_bytes(_pdf())
    with pikepdf.open(tmp_path / "plain.pdf") as doc:
        doc.save(tmp_path / "locked.pdf", encryption=pikepdf.Encryption(user="u", owner="o"))
    with pytest.raises(NotText, match="encrypted"):
        read_document(file_info(tmp_path / "x.pdf", (tmp_path / "locked.pdf").read_bytes()))
    # Encrypted with an empty user password, as many PDFs are: readable, so read.
    with pikepdf.open(tmp_path / "plain.pdf") as doc:
        doc.save(tmp_path / "open.pdf", encryption=pikepdf.Encryption(user="", owner="o"))
    doc = read_document(file_info(tmp_path / "y.pdf", (tmp_path / "open.pdf").read_bytes()))
    assert "brass lamps" in doc.text


def test_outline_entries_of_one_page_head_their_own_lines(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    for title, sentence in (
        ("Severity levels", "A severity one incident wakes the on-call engineer."),
        ("Post-incident reviews", "Every review names one change that would have helped."),
    ):
        pdf.start_section(title, level=0)
        pdf.set_font("helvetica", "B", size=14)
        pdf.multi_cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(0, 8, sentence, new_x="LMARGIN", new_y="NEXT")
    pdf.start_section("Glossary", level=0)  # an entry whose title the page does not show
    pdf.multi_cell(0, 8, "Terms used in this handbook.", new_x="LMARGIN", new_y="NEXT")
    doc = read_document(file_info(tmp_path / "handbook.pdf", bytes(pdf.output())))
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=24, chunk_overlap=0))
    path_of = {
        s: next(c.heading_path for c in chunks if s in c.text)
        for s in ("wakes the on-call", "names one change")
    }
    assert path_of == {
        "wakes the on-call": ("Severity levels",),
        "names one change": ("Post-incident reviews",),
    }
    assert doc.text.count("Severity levels") == 1  # the title line became the heading
    assert doc.text.startswith("# Glossary\n\n")  # not found on its page: at its top


def test_a_fence_on_a_page_does_not_hide_the_headings_after_it(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for title, lines in (
        ("Setup", ["Setup", "```", "Run the installer from the shared drive."]),
        ("Usage", ["Usage", "The usage sentence about brass lamps."]),
    ):
        pdf.add_page()
        pdf.start_section(title, level=0)
        for line in lines:
            pdf.multi_cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    doc = read_document(file_info(tmp_path / "guide.pdf", bytes(pdf.output())))
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=40, chunk_overlap=0))
    (usage,) = [c for c in chunks if "brass lamps" in c.text]
    assert usage.heading_path == ("Usage",)
    assert "\\```" in doc.text  # the page's fence line, escaped
