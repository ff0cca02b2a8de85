"""Readers for files whose text is their bytes decoded: plain text, Markdown, reStructuredText
and source code. They differ only in the `format` the chunker is told."""

from __future__ import annotations

from ragidx.models import Document
from ragidx.read.base import FALLBACK, Source, register
from ragidx.read.decode import decode_text

__all__ = ["CODE", "CODE_SUFFIXES", "MARKDOWN", "RST", "TEXT", "TextReader"]

CODE_SUFFIXES = tuple(
    ".py .pyi .js .jsx .ts .tsx .go .rs .java .kt .c .h .cc .cpp .hpp .cs .rb .php .swift "
    ".scala .sh .bash .zsh .sql .lua .r .jl .ex .exs .erl .hs .ml .clj .dart .vue .svelte "
    ".css .scss .toml .yaml .yml .json .ini .cfg .xml".split()
)


class TextReader:
    """A file's bytes decoded (`ragidx.read.decode`), line ends made `\\n`. Raises `NotText`
    for binary content."""

    segmented = True

    def __init__(self, content_type: str, format: str, suffixes: tuple[str, ...]) -> None:
        self.content_type = content_type
        self.format = format
        self.suffixes = suffixes

    def __repr__(self) -> str:
        return f"TextReader({self.content_type!r}, {self.format!r})"

    def sniff(self, head: bytes) -> bool:
        return False  # by name only: the plain text reader takes what no reader claims

    def read(self, source: Source) -> Document:
        text, encoding = decode_text(source.data)
        return source.document(text, self.format, encoding)


TEXT = TextReader(FALLBACK, "text", (".txt",))
MARKDOWN = TextReader("text/markdown", "markdown", (".md", ".markdown", ".mdx"))
RST = TextReader("text/x-rst", "rst", (".rst",))
CODE = TextReader("text/x-source", "code", CODE_SUFFIXES)

for _reader in (TEXT, MARKDOWN, RST, CODE):
    register(_reader)
