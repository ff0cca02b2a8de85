"""Text that readers of structured formats write as Markdown, so the chunker finds its
headings: the builder the Office, EPUB and OpenDocument readers share (`Markdown`), a table
cell (`cell`), and the escaping of a document's own lines that Markdown would take for
structure (`escape_markup`), which the PDF reader uses too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ragidx.models import Document
from ragidx.read.base import NotText, Source, TooLarge

__all__ = ["MAX_TEXT", "Markdown", "cell", "escape_markup"]

MAX_TEXT = 100_000_000  # characters of text one document may give
_MAX_TITLE = 200
# Lines Markdown would take for headings (ATX, setext underlines) or code fences: a fence
# in a document's text would hide every heading after it.
_MARKDOWN_LIKE = re.compile(r"^( {0,3})(#|=+[ \t]*$|-+[ \t]*$|```|~~~)", re.M)


def escape_markup(text: str) -> str:
    """`text` with a backslash before each line start that Markdown would read as a heading,
    a setext underline or a code fence."""
    return _MARKDOWN_LIKE.sub(r"\1\\\2", text)


def cell(text: str) -> str:
    """`text` as one Markdown table cell: on one line, its pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


class Markdown:
    """A document's text as Markdown blocks separated by blank lines, with the headings'
    offsets (`Document.outline`) and where each page (slide, sheet) starts."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.outline: list[tuple[int, int, str]] = []
        self.pages: list[int] = []
        self.text_seen = False

    def _at(self) -> int:
        return self.size + 2 if self.parts else 0

    def _add(self, block: str) -> int:
        at = self._at()
        self.parts.append(block)
        self.size = at + len(block)
        if self.size > MAX_TEXT:
            raise TooLarge(f"its text passes {MAX_TEXT:,} characters")
        return at

    def page(self) -> None:
        """A page (slide, sheet) starts with the next block."""
        self.pages.append(self._at())

    def heading(self, level: int, title: str, *, text: bool = True) -> None:
        """A heading; `text` False for a title made up here ("Slide 3"), which alone does
        not make the document one with text."""
        title = " ".join(title.split())[:_MAX_TITLE]
        if not title:
            return
        self.text_seen = self.text_seen or text
        at = self._add(f"{'#' * min(level, 6)} {title}")
        self.outline.append((at, level, title))

    def paragraph(self, text: str) -> None:
        """A block of text; lines Markdown would read as headings or fences are escaped."""
        text = text.strip("\n")
        if text.strip():
            self.text_seen = True
            self._add(escape_markup(text))

    def table(self, rows: Iterable[list[str]], *, header_level: int | None = None) -> None:
        """Rows of cells (made with `cell`) as a Markdown table: the first non-empty row is
        the header. With `header_level`, the header row is also a heading of that level
        (`columns: a | b`), so every chunk of the rows has it in its heading path."""
        lines: list[str] = []
        for row in rows:
            while row and not row[-1]:
                row.pop()
            if not row:
                continue
            lines.append(f"| {' | '.join(row)} |")
            if len(lines) == 1:
                lines.append("|" + " --- |" * len(row))
        if not lines:
            return
        self.text_seen = True
        at = self._add("\n".join(lines))
        if header_level is not None:
            title = " ".join(lines[0].strip("| ").split())[: _MAX_TITLE - 9]
            self.outline.append((at, header_level, f"columns: {title}"))

    def document(self, source: Source, encoding: str, unit: str | None = None) -> Document:
        if not self.text_seen:
            raise NotText("no text")
        text = "\n\n".join(self.parts) + "\n"
        pages = tuple(min(p, len(text)) for p in self.pages) if unit else ()
        return source.document(
            text, "markdown", encoding, unit=unit, pages=pages, outline=tuple(self.outline)
        )
