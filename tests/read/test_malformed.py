"""Broken documents, one of each kind, in one run through the CLI: each file fails with its
reason, the others are indexed, the run exits 1, and nothing crashes or hangs."""

from __future__ import annotations

import io
import json
import multiprocessing
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fpdf import FPDF
from helpers import Cli

from ragidx import read
from ragidx.models import Document
from ragidx.read import Source
from ragidx.read.pdf import PdfReader

HANG_MARK = b"HangTheParser"


class _HangingPdfReader(PdfReader):
    """PDFium's reader, but one that never comes back from a PDF that holds `HANG_MARK`, as
    a parser caught in a loop would (only in a worker process: a thread would hang the test)."""

    def read(self, source: Source) -> Document:
        if HANG_MARK in source.data and multiprocessing.parent_process() is not None:
            time.sleep(3600)
        return super().read(source)


@pytest.fixture
def hanging_pdfs() -> Iterator[None]:
    saved = read.readers()
    read.register(_HangingPdfReader())
    try:
        yield
    finally:
        read.restore(saved)


def _pdf(text: str, keywords: str = "") -> bytes:
    pdf = FPDF()
    pdf.set_keywords(keywords)
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def _bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * (300 * 1024 * 1024))
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.usefixtures("hanging_pdfs")
def test_each_broken_document_fails_with_its_reason_and_the_run_goes_on(
    cli: Cli, work: Path
) -> None:
    docs = work / "docs"
    docs.mkdir()
    whole = _pdf("A sound report about copper kettles.")
    (docs / "sound.pdf").write_bytes(whole)
    (docs / "truncated.pdf").write_bytes(whole[: len(whole) // 3])
    (docs / "letter.docx").write_text("Dear reader, this is plain text named as Word.\n")
    (docs / "bomb.docx").write_bytes(_bomb())
    (docs / "stuck.pdf").write_bytes(_pdf("Never read.", keywords=HANG_MARK.decode()))
    assert HANG_MARK in (docs / "stuck.pdf").read_bytes()
    result = cli("index", "docs", "--db", "idx.db", "--json", "--parse-timeout", "1")
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr
    files = result.files()
    assert files["docs/sound.pdf"]["status"] == "indexed"
    reasons = {
        name: files[f"docs/{name}"]["reason"]
        for name in ("truncated.pdf", "letter.docx", "bomb.docx", "stuck.pdf")
    }
    assert all(files[f"docs/{n}"]["status"] == "failed" for n in reasons), json.dumps(files)
    assert reasons["truncated.pdf"].startswith("malformed: not a readable PDF")
    assert reasons["letter.docx"].startswith("malformed: ")
    assert reasons["bomb.docx"].startswith("too_large: ")
    assert reasons["stuck.pdf"] == "parse_timeout: reading and chunking took over 1 s"
