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
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

from charset_normalizer import from_bytes

from .models import Document, FileInfo

__all__ = ["FORMATS", "NotText", "decode", "detect_format", "html_to_text", "read_document"]

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
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class NotText(Exception):
    """The content is not text ragidx can index; the message is the reason."""


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


class _VisibleText(HTMLParser):
    """Collects what a browser shows: no scripts, styles or head, blocks on their own lines."""

    HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "iframe"})
    BLOCKS = frozenset(
        "address article aside blockquote br dd div dl dt figcaption figure footer form header"
        " hr li main nav ol p pre section table tbody td th thead tr ul".split()
    )
    HEADINGS: ClassVar[dict[str, int]] = {f"h{n}": n for n in range(1, 7)}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # Runs of text, each flagged as preformatted (kept as is) or not (lines trimmed).
        self.segments: list[tuple[bool, list[str]]] = []
        self.hidden = 0
        self.in_head = False
        self.title: list[str] = []
        self.in_title = False
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag == "head":
            self.in_head = True
        elif tag in self.HIDDEN:
            self.hidden += 1
        elif tag == "body" or tag in self.HEADINGS or tag in self.BLOCKS:
            self.in_head = False  # </head> may be left out: the body starts here
            self._block_start(tag)

    def _block_start(self, tag: str) -> None:
        if tag in self.HEADINGS:
            self._emit("\n\n" + "#" * self.HEADINGS[tag] + " ")
        elif tag in self.BLOCKS:
            self._emit("\n\n" if tag == "p" else "\n")
            if tag == "li":
                self._emit("- ")
            elif tag == "pre":
                self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag == "head":
            self.in_head = False
        elif tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.HEADINGS or tag in self.BLOCKS:
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._emit("\n\n" if tag in self.HEADINGS or tag == "p" else "\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.hidden and not self.in_head:
            self._emit(data if self.pre else _SPACES.sub(" ", data))

    def _emit(self, text: str) -> None:
        if self.hidden or self.in_head:
            return
        pre = self.pre > 0
        if self.segments and self.segments[-1][0] == pre:
            self.segments[-1][1].append(text)
        else:
            self.segments.append((pre, [text]))

    def text(self) -> str:
        out = []
        for pre, parts in self.segments:
            run = "".join(parts)
            if not pre:
                run = _BLANK_RUNS.sub("\n\n", "\n".join(line.strip() for line in run.split("\n")))
            out.append(run)
        title = " ".join("".join(self.title).split())
        heading = f"# {title}\n\n" if title else ""
        return (heading + "".join(out).strip("\n")).strip() + "\n"


def html_to_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return parser.text()


def read_document(info: FileInfo) -> Document:
    """Read and decode one file. Raises `NotText` for binary content, `OSError` on I/O failure."""
    data = info.path.read_bytes()
    if not data:
        raise NotText("empty file")
    text, encoding = decode(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    fmt = detect_format(info.path)
    if fmt == "html":
        text = html_to_text(text)
    if not text.strip():
        raise NotText("no text (only whitespace or markup)")
    return Document(
        path=info.path,
        text=text,
        format=fmt,
        encoding=encoding,
        content_hash=hashlib.blake2b(data, digest_size=16).hexdigest(),
        size=len(data),
        mtime_ns=info.mtime_ns,
    )
