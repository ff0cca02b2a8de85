"""PDFs made here with fpdf2: their text comes back once, in order; the outline becomes
heading paths; encrypted, scanned and broken files are skipped with their reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fpdf import FPDF
from helpers import file_info

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
    return bytes(pdf.output())


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
