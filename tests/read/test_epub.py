"""EPUB books made here with ebooklib: chapters come back in spine order, each through the
HTML reader, their headings the chunks' heading paths."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from ebooklib import epub
from helpers import file_info

from ragidx.chunk import chunk_document
from ragidx.config import ChunkConfig
from ragidx.read import NotText, read_document

CHAPTERS = {
    "kettles.xhtml": (
        "Kettles",
        "<h1>Kettles</h1><p>Copper kettles boil water quickly.</p>"
        "<h2>Care</h2><p>Kettles need descaling twice a year.</p>",
    ),
    "lamps.xhtml": (
        "Lamps",
        "<h1>Lamps</h1><p>Brass lamps glow in the evening.</p>"
        "<script>hidden();</script><ul><li>Desk lamps</li><li>Floor lamps</li></ul>",
    ),
    "gates.xhtml": ("Gates", "<h1>Gates</h1><p>Iron gates creak in the wind.</p>"),
}


def _book(path: Path, spine: list[str]) -> bytes:
    book = epub.EpubBook()
    book.set_identifier("metals-1")
    book.set_title("Household Metals")
    book.set_language("en")
    items = {}
    for name, (title, body) in CHAPTERS.items():
        chapter = epub.EpubHtml(title=title, file_name=name, lang="en")
        head = "<head><title>Household Metals</title></head>"
        chapter.content = f"<html>{head}<body>{body}</body></html>"
        book.add_item(chapter)
        items[name] = chapter
    book.toc = [items[n] for n in spine]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *(items[n] for n in spine)]
    epub.write_epub(str(path), book)
    return path.read_bytes()


def test_chapters_come_back_in_spine_order_under_their_headings(tmp_path: Path) -> None:
    # The spine, not the manifest or the file names, orders the chapters.
    data = _book(tmp_path / "made.epub", ["lamps.xhtml", "gates.xhtml", "kettles.xhtml"])
    doc = read_document(file_info(tmp_path / "metals.epub", data))
    sentences = [
        "# Lamps",
        "Brass lamps glow in the evening.",
        "- Desk lamps",
        "- Floor lamps",
        "# Gates",
        "Iron gates creak in the wind.",
        "# Kettles",
        "Copper kettles boil water quickly.",
        "## Care",
        "Kettles need descaling twice a year.",
    ]
    positions = [doc.text.find(s) for s in sentences]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)
    assert all(doc.text.count(s) == 1 for s in sentences)
    # Neither the chapters' <title> (the book's) nor the table of contents come through.
    assert "Household Metals" not in doc.text and doc.text.count("Gates") == 1
    assert "hidden()" not in doc.text
    chunks = chunk_document(doc, ChunkConfig(chunk_tokens=16, chunk_overlap=0))
    (care,) = [c for c in chunks if "descaling" in c.text]
    assert care.heading_path == ("Kettles", "Care")
    assert all(doc.text[c.char_start : c.char_end] == c.text for c in chunks)


def test_a_book_with_encrypted_chapters_is_skipped(tmp_path: Path) -> None:
    data = _book(tmp_path / "made.epub", ["kettles.xhtml"])
    locked = tmp_path / "locked.epub"
    with zipfile.ZipFile(tmp_path / "made.epub") as src, zipfile.ZipFile(locked, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr(
            "META-INF/encryption.xml",
            '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"'
            ' xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
            '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
            '<enc:CipherData><enc:CipherReference URI="EPUB/kettles.xhtml"/></enc:CipherData>'
            "</enc:EncryptedData></encryption>",
        )
    assert data
    with pytest.raises(NotText, match="encrypted"):
        read_document(file_info(tmp_path / "copy.epub", locked.read_bytes()))
