"""The reader seam: a reader registered for a new kind of file is the one `read_document`
uses, and what no reader claims is read as plain text, as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import file_info

from ragidx.models import Document
from ragidx.read import (
    NotText,
    Source,
    detect_format,
    read_document,
    reader_for,
    readers,
    register,
    unregister,
)


class Shouting:
    """A format of its own: text read in capitals, and claimed by its first bytes too."""

    content_type = "text/x-shout"
    format = "shout"
    suffixes: tuple[str, ...] = (".shout",)
    segmented = False

    def sniff(self, head: bytes) -> bool:
        return head.startswith(b"SHOUT:")

    def read(self, source: Source) -> Document:
        if b"\x00" in source.data:
            raise NotText("not a shout")
        return source.document(source.data.decode("ascii").upper(), self.format, "ascii")


@pytest.fixture
def shouting() -> Iterator[Shouting]:
    reader = Shouting()
    register(reader)
    try:
        yield reader
    finally:
        unregister(reader.content_type)


def test_a_registered_reader_reads_its_suffix(tmp_path: Path, shouting: Shouting) -> None:
    info = file_info(tmp_path / "a.shout", b"hello\n")
    doc = read_document(info)
    assert (doc.text, doc.format, doc.encoding) == ("HELLO\n", "shout", "ascii")
    # What every reader's document shares: the hash of the bytes, their size, the mtime.
    plain = read_document(file_info(tmp_path / "a.txt", b"hello\n"))
    assert doc.content_hash == plain.content_hash and doc.size == plain.size == 6
    assert doc.mtime_ns == info.mtime_ns and doc.path == Path(info.path)
    assert detect_format(Path("b.SHOUT")) == "shout"  # endings match in any case
    assert shouting in readers()


def test_its_errors_are_the_files_reason(tmp_path: Path, shouting: Shouting) -> None:
    with pytest.raises(NotText, match="not a shout"):
        read_document(file_info(tmp_path / "bad.shout", b"a\x00b"))


def test_a_reader_may_claim_a_file_by_its_first_bytes(tmp_path: Path, shouting: Shouting) -> None:
    assert read_document(file_info(tmp_path / "NOTES", b"SHOUT: hi\n")).text == "SHOUT: HI\n"
    # The content wins over a name that another reader claims.
    assert read_document(file_info(tmp_path / "n.md", b"SHOUT: hi\n")).format == "shout"
    assert read_document(file_info(tmp_path / "n.md", b"hi\n")).format == "markdown"
    assert read_document(file_info(tmp_path / "OTHER", b"hi\n")).format == "text"


def test_a_later_reader_wins_an_ending_until_it_goes(tmp_path: Path) -> None:
    class Markdownish(Shouting):
        content_type = "text/x-markdownish"
        suffixes: tuple[str, ...] = (".md",)

    info = file_info(tmp_path / "a.md", b"# hi\n")
    register(Markdownish())
    try:
        assert read_document(info).text == "# HI\n"
    finally:
        unregister(Markdownish.content_type)
    assert read_document(info).format == "markdown"
    assert reader_for("a.md").content_type == "text/markdown"


def test_without_a_reader_of_its_own_a_file_is_plain_text_or_refused(tmp_path: Path) -> None:
    assert read_document(file_info(tmp_path / "notes.unknown", b"words\n")).format == "text"
    with pytest.raises(NotText, match="binary content"):
        read_document(file_info(tmp_path / "blob.unknown", b"\x00\x01\x02" * 100))
    with pytest.raises(NotText, match="binary content"):
        read_document(file_info(tmp_path / "blob.shout", b"\x00\x01\x02" * 100))  # not registered


def test_the_built_in_readers() -> None:
    types = {r.content_type: r.format for r in readers()}
    assert types == {
        "application/pdf": "markdown",
        "text/plain": "text",
        "text/markdown": "markdown",
        "text/x-rst": "rst",
        "text/x-source": "code",
        "text/x-source-tree": "code",
        "text/html": "html",
        # Zip-based documents: one reader for each by name, one for any by content.
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "markdown",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation": "markdown",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "markdown",
        "application/epub+zip": "html",
        "application/vnd.oasis.opendocument.text": "markdown",
        "application/zip": "markdown",
    }
    assert {r.content_type for r in readers() if not r.segmented} == {
        "text/html",
        "application/pdf",
        *(t for t in types if "zip" in t or "officedocument" in t or "opendocument" in t),
    }
