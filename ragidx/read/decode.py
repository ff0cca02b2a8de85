"""Bytes to `str`: the one place that decides encodings.

UTF-8, with or without a byte-order mark, is always decoded as UTF-8. UTF-16 and UTF-32
with a byte-order mark are decoded as such. Anything else goes through charset detection
(charset-normalizer) and the encoding it settled on is recorded. Content with NUL bytes
or control characters that no text holds is binary: `NotText`. So is a document format
whose bytes can pass for text but are not what a person reads: a PDF (its syntax, and
streams in ASCII85 or hex, hold no NUL byte), which `ragidx.read.pdf` reads where the file's
name or its first bytes say so.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO

from ragidx.read.base import SNIFF_BYTES, NotText

__all__ = ["BOMS", "decode", "decode_text", "stream_encoding"]

# Control characters other than tab, newline, form feed and carriage return.
_CONTROL = bytes(set(range(32)) - {8, 9, 10, 12, 13, 27}) + b"\x7f"
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


# A PDF starts with its header (readers accept a little before it; so does this, whitespace).
# Anywhere else, "%PDF-" is text about PDFs.
_PDF_HEADER = b"%PDF-"
_PDF_WITHIN = 1024


def _not_a_document(head: bytes) -> None:
    if head[:_PDF_WITHIN].lstrip().startswith(_PDF_HEADER):
        raise NotText("a PDF document, not text (named .pdf, it is read as a PDF)")


def decode(data: bytes) -> tuple[str, str]:
    """Decode file content to text; returns the text and the encoding used."""
    _not_a_document(data[:_PDF_WITHIN])
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise NotText(f"invalid {encoding} after a byte-order mark: {exc.reason}") from exc
    head = data[:SNIFF_BYTES]
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


def decode_text(data: bytes) -> tuple[str, str]:
    """`decode`, with line ends made `\\n` (CRLF and lone CR alike)."""
    text, encoding = decode(data)
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


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


def stream_encoding(f: BinaryIO, block_size: int) -> str:
    """The encoding of the file `f` reads from its start, decided before decoding it a block
    at a time: a byte-order mark's, else UTF-8 if all of it decodes as UTF-8, else what
    detection says of the first block that does not. Raises `NotText` for binary content."""
    block = f.read(block_size)
    _not_a_document(block)
    for bom, encoding in BOMS:
        if block.startswith(bom):
            return encoding
    if b"\x00" in block[:SNIFF_BYTES]:
        raise NotText("binary content (NUL bytes)")
    utf8 = codecs.getincrementaldecoder("utf-8")()
    while block:
        try:
            utf8.decode(block)  # not final: a block may end inside a character
        except UnicodeDecodeError:
            return decode(block)[1]
        block = f.read(block_size)
    return "utf-8"
