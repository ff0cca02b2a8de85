"""The HTML reader: what a browser shows of a page, headings kept as Markdown headings so the
chunker can follow the page's sections (`ragidx.read.html_text`)."""

from __future__ import annotations

from ragidx.models import Document
from ragidx.read.base import Source, register
from ragidx.read.decode import decode_text

__all__ = ["HTML", "HtmlReader", "html_to_text"]


class HtmlReader:
    """An HTML page's visible text. Raises `NotText` for binary content; a page of markup
    alone reads as no text, which `read_document` refuses."""

    content_type = "text/html"
    format = "html"
    suffixes: tuple[str, ...] = (".html", ".htm", ".xhtml")
    segmented = False  # tags may span any cut: a page is read whole

    def sniff(self, head: bytes) -> bool:
        return False  # by name only, as ragidx always has: an .txt of HTML stays text

    def read(self, source: Source) -> Document:
        text, encoding = decode_text(source.data)
        return source.document(html_to_text(text), self.format, encoding)


def html_to_text(html: str) -> str:
    """What a browser shows of `html`, as text with Markdown headings."""
    # html.parser takes longer to import than a re-run of a small tree takes in all: it loads
    # with the first HTML file.
    from ragidx.read.html_text import visible_text

    return visible_text(html)


HTML = HtmlReader()
register(HTML)
