"""A file to text: whole, as one version of the file, or a segment at a time.

`read_document` reads a file's bytes, checking that it did not change meanwhile, and hands
them to the reader registered for it (`ragidx.read.base`). A file larger than `LARGE_FILE`
whose reader allows it goes through `SegmentReader`, which decodes it as plain text a block at
a time, so memory does not follow the file. Both hash the bytes the same way
(`content_hash`), so the index can tell an unchanged file without reading it twice.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ragidx.models import Document, FileInfo
from ragidx.read.base import (
    SNIFF_BYTES,
    Changed,
    NotText,
    Source,
    detect_format,
    new_hash,
    reader_for,
)
from ragidx.read.decode import stream_encoding

__all__ = [
    "LARGE_FILE",
    "SEGMENT_CHARS",
    "Changed",
    "NotText",
    "SegmentReader",
    "content_hash",
    "read_document",
]

# Larger files are read and chunked a segment at a time, so memory does not follow them.
LARGE_FILE = 4 * 1024 * 1024
SEGMENT_CHARS = 1024 * 1024
_BLOCK = 1024 * 1024
_READ_ATTEMPTS = 3


def read_document(info: FileInfo) -> Document:
    """Read and decode one file, whole. Raises `NotText` for binary content, `Changed` if
    the file kept changing while read, `OSError` on I/O failure.

    Size and modification time are taken on the open file before and after reading: when
    they differ, the read is repeated, so what is stored is one version of the file."""
    for _attempt in range(_READ_ATTEMPTS):
        with open(info.path, "rb") as f:
            before = os.fstat(f.fileno())
            data = f.read()
            after = os.fstat(f.fileno())
        if _same(before, after) and len(data) == after.st_size:
            return _document(Source(Path(info.path), data, after.st_mtime_ns))
    raise Changed(_changed(before, after, _READ_ATTEMPTS))


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ino) == (b.st_size, b.st_mtime_ns, b.st_ino)


def _changed(before: os.stat_result, after: os.stat_result, attempts: int) -> str:
    return (
        f"changed while being read ({attempts} attempts; size {before.st_size} -> "
        f"{after.st_size} bytes, mtime {before.st_mtime_ns} -> {after.st_mtime_ns} ns)"
    )


def _document(source: Source) -> Document:
    if not source.data:
        raise NotText("empty file")
    doc = reader_for(source.path, source.data[:SNIFF_BYTES]).read(source)
    if not doc.text.strip():
        raise NotText("no text (only whitespace or markup)")
    return doc


def content_hash(path: str | Path) -> str:
    """The hash `Document.content_hash` holds, computed a block at a time."""
    digest = new_hash()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class SegmentReader:
    """A large file's text a segment at a time, cut after blank lines where it can be.

    Iterate to get segments; afterwards `document()` has the file's metadata (its text is
    empty). The encoding is decided before the first segment: a byte-order mark's, UTF-8, or
    what detection says of the first block that is not UTF-8. Raises like
    `read_document`."""

    def __init__(self, path: Path, segment_chars: int = SEGMENT_CHARS) -> None:
        self.path = path
        self.segment_chars = segment_chars
        self.format = detect_format(path)
        self.encoding = "utf-8"
        self._digest = new_hash()
        self._size = 0
        self._stat: os.stat_result | None = None
        self._any_text = False

    def __iter__(self) -> Iterator[str]:
        with open(self.path, "rb") as f:
            before = os.fstat(f.fileno())
            buffer = ""
            for text in self._decoded(f):
                self._any_text = self._any_text or bool(text.strip())
                buffer += text
                while len(buffer) >= self.segment_chars:
                    cut = _cut(buffer, self.segment_chars)
                    yield buffer[:cut]
                    buffer = buffer[cut:]
            after = os.fstat(f.fileno())
        if not _same(before, after) or self._size != after.st_size:
            raise Changed(_changed(before, after, 1))
        if not self._any_text:
            raise NotText("empty file" if not self._size else "no text (only whitespace)")
        self._stat = after
        if buffer:
            yield buffer

    def _decoded(self, f: BinaryIO) -> Iterator[str]:
        self.encoding = self._sniff()
        decoder = codecs.getincrementaldecoder(self.encoding)()
        carry = ""  # a trailing CR, until we know whether LF follows
        while block := f.read(_BLOCK):
            self._size += len(block)
            self._digest.update(block)
            try:
                text = carry + decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise NotText(
                    f"not valid {self.encoding} after byte {self._size - len(block)}: {exc.reason}"
                ) from exc
            if "\x00" in text:
                raise NotText("binary content (NUL bytes)")
            carry = text[-1:] if text.endswith("\r") else ""
            text = text[: len(text) - len(carry)]
            yield text.replace("\r\n", "\n").replace("\r", "\n")
        if carry:
            yield "\n"

    def _sniff(self) -> str:
        with open(self.path, "rb") as f:
            return stream_encoding(f, _BLOCK)

    def document(self) -> Document:
        """The file's metadata once every segment is read."""
        assert self._stat is not None, "iterate first"
        return Document(
            path=self.path,
            text="",
            format=self.format,
            encoding=self.encoding,
            content_hash=self._digest.hexdigest(),
            size=self._size,
            mtime_ns=self._stat.st_mtime_ns,
        )


def _cut(buffer: str, size: int) -> int:
    """Where to end a segment: after the last blank line in its second half, else the last
    line break, else at `size`."""
    for sep in ("\n\n", "\n"):
        at = buffer.rfind(sep, size // 2, size)
        if at != -1:
            return at + len(sep)
    return size
