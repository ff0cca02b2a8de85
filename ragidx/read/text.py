"""Bytes to a `Document`: the one place that decides encodings and formats.

UTF-8, with or without a byte-order mark, is always decoded as UTF-8. UTF-16 and UTF-32
with a byte-order mark are decoded as such. Anything else goes through charset detection
(charset-normalizer) and the encoding it settled on is recorded. Content with NUL bytes
or control characters that no text holds is binary, and skipped. HTML is reduced to its
visible text by the standard library's HTML parser, headings kept as Markdown headings so
the chunker can follow them.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ragidx.models import Document, FileInfo

__all__ = [
    "FORMATS",
    "LARGE_FILE",
    "Changed",
    "NotText",
    "SegmentReader",
    "decode",
    "detect_format",
    "html_to_text",
    "read_document",
]

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
}
CODE_SUFFIXES = frozenset(
    [
        ".py",
        ".pyi",
        ".js",
        ".jsx",
        ".ts",
        ".tsx",
        ".go",
        ".rs",
        ".java",
        ".kt",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".rb",
        ".php",
        ".swift",
        ".scala",
        ".sh",
        ".bash",
        ".zsh",
        ".sql",
        ".lua",
        ".r",
        ".jl",
        ".ex",
        ".exs",
        ".erl",
        ".hs",
        ".ml",
        ".clj",
        ".dart",
        ".vue",
        ".svelte",
        ".css",
        ".scss",
        ".toml",
        ".yaml",
        ".yml",
        ".json",
        ".ini",
        ".cfg",
        ".xml",
    ]
)
_SNIFF = 8192
# Control characters other than tab, newline, form feed and carriage return.
_CONTROL = bytes(set(range(32)) - {8, 9, 10, 12, 13, 27}) + b"\x7f"
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


# Larger files are read and chunked a segment at a time, so memory does not follow them.
LARGE_FILE = 4 * 1024 * 1024
SEGMENT_CHARS = 1024 * 1024
_BLOCK = 1024 * 1024
_READ_ATTEMPTS = 3


class NotText(Exception):
    """The content is not text ragidx can index; the message is the reason."""


class Changed(Exception):
    """The file changed while it was being read; the message says how."""


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    return "code" if suffix in CODE_SUFFIXES else "text"


def decode(data: bytes) -> tuple[str, str]:
    """Decode file content to text; returns the text and the encoding used."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise NotText(f"invalid {encoding} after a byte-order mark: {exc.reason}") from exc
    head = data[:_SNIFF]
    if b"\x00" in head:
        raise NotText("binary content (NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if "\x00" in text:  # past the sniffed head
            raise NotText("binary content (NUL bytes)")
        return text, "utf-8"
    if sum(head.count(c) for c in _CONTROL) > len(head) // 100:
        raise NotText("binary content (control characters)")
    return _detect(data)


def _detect(data: bytes) -> tuple[str, str]:
    from charset_normalizer import from_bytes  # only for files that are not UTF-8

    western = _western(data)
    matches = list(from_bytes(data))
    if not matches:
        if western is not None:
            return western, "cp1252"
        raise NotText("binary content (no text encoding fits)")
    best = matches[0]
    # Detection is unsure on short text (no language recognised: big5 for "Très bien")
    # and ties Western European code pages that decode it differently (cp1250 turns è into
    # č); then text that reads as Western European in cp1252 is taken as such.
    tied = any(
        m.encoding == "cp1252" and (m.chaos, m.coherence) == (best.chaos, best.coherence)
        for m in matches
    )
    if western is not None and (best.coherence == 0 or tied or str(best) == western):
        return western, "cp1252"
    return str(best), best.encoding


_WESTERN_EXTRA = frozenset("¡¿«»°€‘’‚“”„–—…·ªº")  # noqa: RUF001 - typographic marks


def _western(data: bytes) -> str | None:
    """`data` in cp1252 if it reads like Western European text, else None.

    There, accented letters are a minority among letters and other non-ASCII characters are
    typographic punctuation; Cyrillic or Greek bytes read as cp1252 fail both tests.
    """
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    letters = sum(c.isalpha() for c in text)
    foreign = [c for c in text if ord(c) > 127]
    accented = sum(c.isalpha() for c in foreign)
    if accented > 0.4 * letters:
        return None
    odd = sum(1 for c in foreign if not c.isalpha() and c not in _WESTERN_EXTRA)
    return text if odd <= 0.1 * len(foreign) else None


def html_to_text(html: str) -> str:
    """What a browser shows of `html`, as text with Markdown headings."""
    # html.parser takes longer to import than a re-run of a small tree takes in all: it loads
    # with the first HTML file.
    from ragidx.read.html import visible_text

    return visible_text(html)


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
            return _document(Path(info.path), data, after)
    raise Changed(_changed(before, after, _READ_ATTEMPTS))


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ino) == (b.st_size, b.st_mtime_ns, b.st_ino)


def _changed(before: os.stat_result, after: os.stat_result, attempts: int) -> str:
    return (
        f"changed while being read ({attempts} attempts; size {before.st_size} -> "
        f"{after.st_size} bytes, mtime {before.st_mtime_ns} -> {after.st_mtime_ns} ns)"
    )


def _document(path: Path, data: bytes, st: os.stat_result) -> Document:
    if not data:
        raise NotText("empty file")
    text, encoding = decode(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    fmt = detect_format(path)
    if fmt == "html":
        text = html_to_text(text)
    if not text.strip():
        raise NotText("no text (only whitespace or markup)")
    return Document(
        path=path,
        text=text,
        format=fmt,
        encoding=encoding,
        content_hash=hashlib.blake2b(data, digest_size=16).hexdigest(),
        size=len(data),
        mtime_ns=st.st_mtime_ns,
    )


def content_hash(path: str | Path) -> str:
    """The hash `Document.content_hash` holds, computed a block at a time."""
    digest = hashlib.blake2b(digest_size=16)
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
        self._digest = hashlib.blake2b(digest_size=16)
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
        """The file's encoding: a byte-order mark's, else UTF-8 if all of it decodes as
        UTF-8, else what detection says of the first block that does not."""
        with open(self.path, "rb") as f:
            block = f.read(_BLOCK)
            for bom, encoding in _BOMS:
                if block.startswith(bom):
                    return encoding
            if b"\x00" in block[:_SNIFF]:
                raise NotText("binary content (NUL bytes)")
            utf8 = codecs.getincrementaldecoder("utf-8")()
            while block:
                try:
                    utf8.decode(block)  # not final: a block may end inside a character
                except UnicodeDecodeError:
                    return decode(block)[1]
                block = f.read(_BLOCK)
        return "utf-8"

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
