"""The reader seam: how one kind of file becomes a `Document`, and the registry that picks the
reader for a file.

A `Reader` says which files it reads (a content type, file name endings, and optionally the
first bytes of a file whose name says nothing) and turns a file's bytes into a `Document`:
the text a person reads, with `Document.format` telling the chunker how to find sections.
Where a chunk came from is its offsets and lines in that text.

Readers are registered by content type; the one registered last wins a file name ending.
Content wins over names: a reader that recognises a file's first bytes reads it, whatever
its name; a file that its name's reader then finds broken fails as `Unreadable`.
A new format is one module that registers its reader when imported (the built-in ones are
imported by `ragidx.read`). A file no reader claims is read as plain text, which refuses
binary content.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ragidx.models import Document

__all__ = [
    "FALLBACK",
    "SNIFF_BYTES",
    "Changed",
    "NotText",
    "Reader",
    "Source",
    "TooLarge",
    "Unreadable",
    "detect_format",
    "document_suffixes",
    "new_hash",
    "reader_for",
    "readers",
    "register",
    "restore",
    "unregister",
]

FALLBACK = "text/plain"
SNIFF_BYTES = 8192  # how much of a file's start a reader may look at to claim it


class NotText(Exception):
    """The content is not text ragidx can index; the message is the reason."""


class Unreadable(Exception):
    """A file of a format ragidx reads that cannot be read: truncated, corrupt, or a DOCX that
    is no zip archive. Unlike `NotText`, the file fails (the run exits 1); `reason` is what the
    failure is reported as, before the message."""

    reason = "malformed"


class TooLarge(Unreadable):
    """A file whose parsing would pass a safety limit: a zip bomb's entries, or the memory a
    worker process may take."""

    reason = "too_large"


class Changed(Exception):
    """The file changed while it was being read; the message says how."""


def new_hash() -> hashlib.blake2b:
    """The hash behind `Document.content_hash`: the same bytes give the same hash, whatever
    reads them (the index compares it to tell an unchanged file)."""
    return hashlib.blake2b(digest_size=16)


@dataclass(frozen=True, slots=True)
class Source:
    """A file's bytes, read whole as one version of the file."""

    path: Path
    data: bytes
    mtime_ns: int

    def document(
        self,
        text: str,
        format: str,
        encoding: str,
        *,
        unit: str | None = None,
        pages: tuple[int, ...] = (),
        outline: tuple[tuple[int, int, str], ...] | None = None,
    ) -> Document:
        """The `Document` of this file with `text` read from it (and, for a paged format,
        where its pages start; for one whose reader finds the headings, those)."""
        digest = new_hash()
        digest.update(self.data)
        return Document(
            path=self.path,
            text=text,
            format=format,
            encoding=encoding,
            content_hash=digest.hexdigest(),
            size=len(self.data),
            mtime_ns=self.mtime_ns,
            unit=unit,
            pages=pages,
            outline=outline,
        )


class Reader(Protocol):
    """Bytes of one kind of file to text.

    `content_type` is the registry's key (a MIME type); `format` is what `Document.format`
    says (the chunker follows Markdown headings, for one); `suffixes` are the lower-case file
    name endings, with the dot, that it reads. `segmented` says whether a large file of its
    kind may be read a segment at a time as plain text (`SegmentReader`), which only formats
    whose text is their bytes decoded allow."""

    content_type: str
    format: str
    suffixes: tuple[str, ...]
    segmented: bool

    def sniff(self, head: bytes) -> bool:
        """Whether a file is of this kind by its first `SNIFF_BYTES` bytes (its magic bytes),
        whatever its name says. Readers of formats without magic bytes say False and go by
        name alone."""
        ...

    def read(self, source: Source) -> Document:
        """The file's text. Raises `NotText` with the reason for content that is not of
        this kind or has no text."""
        ...


_readers: dict[str, Reader] = {}  # by content type, in the order they were registered
_by_suffix: dict[str, Reader] = {}


def register(reader: Reader) -> None:
    """Add `reader`, or replace the one registered for its content type. It wins the file
    name endings it names over readers registered before it."""
    _readers.pop(reader.content_type, None)
    _readers[reader.content_type] = reader
    _index()


def unregister(content_type: str) -> None:
    """Remove the reader of `content_type`; its endings go back to readers registered before."""
    _readers.pop(content_type, None)
    _index()


def restore(registered: list[Reader]) -> None:
    """Make the registry `registered` (what `readers()` returned), in that order: a worker
    process reads with the readers its parent registered."""
    _readers.clear()
    for reader in registered:
        _readers[reader.content_type] = reader
    _index()


def readers() -> list[Reader]:
    """The registered readers, in the order they were registered."""
    return list(_readers.values())


def _index() -> None:
    _by_suffix.clear()
    for reader in _readers.values():
        _by_suffix.update(dict.fromkeys(reader.suffixes, reader))


def reader_for(path: str | Path, head: bytes | None = None) -> Reader:
    """The reader for the file at `path`: given `head` (its first bytes), the last registered
    one that claims them, since content wins over a name (a PDF named `.txt` is a PDF); else
    the one for its name's ending, else the plain text reader. Raises `NotText` where none is
    left to read it."""
    if head is not None:
        for candidate in reversed(_readers.values()):
            if candidate.sniff(head):
                return candidate
    suffix = Path(path).suffix.lower()
    reader = _by_suffix.get(suffix)
    if reader is not None:
        return reader
    fallback = _readers.get(FALLBACK)
    if fallback is None:
        raise NotText(f"no reader for {suffix or 'a file without a suffix'}")
    return fallback


def document_suffixes() -> frozenset[str]:
    """The name endings of the registered document formats: those whose content type is not
    `text/` (PDF, Office, EPUB), whose text is a small part of their bytes."""
    return frozenset(
        s for r in _readers.values() if not r.content_type.startswith("text/") for s in r.suffixes
    )


def detect_format(path: str | Path) -> str:
    """The `Document.format` of the file at `path`, by its name."""
    return reader_for(path).format
