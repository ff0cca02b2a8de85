"""Zip archives that would cost too much, lie about their sizes, are broken or are no
documents at all: each refused with its reason before much is decompressed, never a crash."""

from __future__ import annotations

import functools
import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import db_rows, file_info

import ragidx
from ragidx.config import IndexConfig
from ragidx.embed import HashEmbedder
from ragidx.models import FileStatus
from ragidx.read import NotText, TooLarge, Unreadable, read_document
from ragidx.read.zipped import MAX_ENTRIES, MAX_RATIO, MAX_UNCOMPRESSED

_TYPES = '<?xml version="1.0"?><Types xmlns="x"/>'
_DOCUMENT = (
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:body></w:document>"
)


def _zip(entries: dict[str, bytes | str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


@functools.cache
def bomb() -> bytes:
    """A DOCX whose document is 200 MiB of zeros, deflated into a few hundred kilobytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _TYPES)
        with z.open("word/document.xml", "w") as f:
            zeros = bytes(1024 * 1024)
            for _ in range(200):
                f.write(zeros)
    return out.getvalue()


def _entries(data: bytes) -> Iterator[tuple[zipfile.ZipInfo, int]]:
    """Each entry of the zip `data`, with where its central directory record starts."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
    at = struct.unpack_from("<I", data, data.rfind(b"PK\x05\x06") + 16)[0]
    for info in infos:
        assert data[at : at + 4] == b"PK\x01\x02"
        yield info, at
        at += 46 + sum(struct.unpack_from("<HHH", data, at + 28))


def _declaring(data: bytes, sizes: dict[str, int]) -> bytes:
    """`data` with the central directory (and local headers) declaring entries' sizes."""
    buf = bytearray(data)
    for info, at in _entries(data):
        if info.filename in sizes:
            struct.pack_into("<I", buf, at + 24, sizes[info.filename])
            struct.pack_into("<I", buf, info.header_offset + 22, sizes[info.filename])
    return bytes(buf)


def test_an_entry_that_expands_past_the_ratio_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TooLarge, match=r"zip bomb: entry word/document\.xml expands [\d,]+x"):
        read_document(file_info(tmp_path / "bomb.docx", bomb()))
    # Whatever the name: content decides that it is a document.
    with pytest.raises(TooLarge, match=rf"\(limit {MAX_RATIO}x\)"):
        read_document(file_info(tmp_path / "bomb.bin", bomb()))


def test_entries_that_expand_past_the_total_are_refused(tmp_path: Path) -> None:
    count = MAX_UNCOMPRESSED // (1024 * 1024) + 88  # each 1 MiB: too small for the ratio
    entries: dict[str, bytes | str] = {f"word/media/{i}.bin": b"x" for i in range(count)}
    data = _zip({"[Content_Types].xml": _TYPES, **entries})
    data = _declaring(data, dict.fromkeys(entries, 1024 * 1024))
    with pytest.raises(TooLarge, match=r"entries expand to 600 MiB in all \(limit 512 MiB\)"):
        read_document(file_info(tmp_path / "big.docx", data))


def test_an_entry_larger_than_it_declares_is_read_no_further(tmp_path: Path) -> None:
    data = _zip({"[Content_Types].xml": _TYPES, "word/document.xml": _DOCUMENT.format("x" * 10**6)})
    data = _declaring(data, {"word/document.xml": 100})
    with pytest.raises(Unreadable, match=r"entry word/document\.xml is damaged"):
        read_document(file_info(tmp_path / "liar.docx", data))


def test_too_many_entries_are_refused_before_the_directory_is_read(tmp_path: Path) -> None:
    entries: dict[str, bytes | str] = {f"word/{i}.xml": b"" for i in range(20_000)}
    data = _zip({"[Content_Types].xml": _TYPES, "word/document.xml": "<x/>", **entries})
    with pytest.raises(TooLarge, match=rf"20,002 entries \(limit {MAX_ENTRIES:,}\)"):
        read_document(file_info(tmp_path / "many.docx", data))
    # A zip archive of many files that no name says is a document is no document of ours.
    with pytest.raises(NotText, match="not a document: a zip archive"):
        read_document(file_info(tmp_path / "many.zip", data))


def test_a_zip_that_is_no_document_is_skipped(tmp_path: Path) -> None:
    data = _zip({"notes.txt": "hello", "src/main.py": "print(1)"})
    with pytest.raises(NotText, match="not a document: a zip archive"):
        read_document(file_info(tmp_path / "code.zip", data))
    # Named like a document, it is a broken one.
    with pytest.raises(Unreadable, match="not a DOCX file: its zip archive holds no such"):
        read_document(file_info(tmp_path / "code.docx", data))


def _flag_encrypted(data: bytes) -> bytes:
    """`data` with every entry's "encrypted" flag set, as a zip tool with a password sets it."""
    buf = bytearray(data)
    for info, at in _entries(data):
        buf[at + 8] |= 1
        buf[info.header_offset + 6] |= 1
    return bytes(buf)


@pytest.mark.parametrize(
    "data",
    [
        _flag_encrypted(
            _zip({"[Content_Types].xml": _TYPES, "word/document.xml": _DOCUMENT.format("x")})
        ),
        # Word saves a document with a password as an OLE2 file holding the encrypted package.
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500) + "EncryptedPackage".encode("utf-16-le"),
    ],
    ids=["zip-entries", "office-password"],
)
def test_an_encrypted_document_is_skipped(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(NotText, match="encrypted"):
        read_document(file_info(tmp_path / "locked.docx", data))


_PAIRS = zip("abcdefg", "bcdefgh", strict=True)
_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {n} "{("&" + p + ";") * 10}">' for p, n in _PAIRS)
    + "]><l>&h;&h;</l>"
)


@pytest.mark.parametrize(
    ("name", "data", "error", "reason"),
    [
        ("notes.docx", b"Only a text file with a .docx name.\n", Unreadable, "not a zip archive"),
        ("deck.pptx", b"PK\x03\x04 and then nothing", Unreadable, "a damaged zip archive"),
        ("book.xlsx", bomb()[: len(bomb()) // 2], Unreadable, "a damaged zip archive"),
        (
            "laughs.docx",
            _zip({"[Content_Types].xml": _TYPES, "word/document.xml": _LAUGHS}),
            Unreadable,
            "word/document.xml is not XML",
        ),
        ("half.zip", bomb()[:1000], NotText, "not a document: a zip archive"),
    ],
    ids=["text-named-docx", "magic-only", "truncated", "billion-laughs", "truncated-zip"],
)
def test_broken_archives_say_why(
    tmp_path: Path, name: str, data: bytes, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason) as caught:
        read_document(file_info(tmp_path / name, data))
    if error is Unreadable:
        kind = name.rsplit(".", 1)[1].upper()
        assert str(caught.value).startswith((f"not a {kind} file: ", f"not an {kind} file: "))


def test_a_run_fails_broken_documents_as_malformed(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "renamed.docx").write_bytes(b"Only a text file with a .docx name.\n")
    (docs / "cut.docx").write_bytes(bomb()[:5000])
    (docs / "archive.zip").write_bytes(_zip({"a.txt": "hello"}))
    summary = ragidx.index([docs], HashEmbedder(), IndexConfig(db_path=tmp_path / "i.db"))
    assert summary.counts[FileStatus.FAILED] == 2 and not summary.ok
    assert summary.counts[FileStatus.SKIPPED] == 1
    reasons = dict(db_rows(tmp_path / "i.db", "SELECT path, reason FROM files"))
    by_name = {Path(p).name: r for p, r in reasons.items()}
    assert by_name["renamed.docx"] == "malformed: not a DOCX file: not a zip archive"
    assert by_name["cut.docx"].startswith("malformed: not a DOCX file: a damaged zip archive")
    assert by_name["archive.zip"] == "not a document: a zip archive"
