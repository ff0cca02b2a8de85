"""PDF: the text of each page in reading order, through PDFium (`pypdfium2`).

Pages are joined by a blank line. The outline (bookmarks), where there is one, becomes
Markdown headings on the pages they point to (on the line that shows the title, else at the
top), so chunks carry it as their heading path; a line of the page text that Markdown would
read as a heading or a code fence is escaped (`ragidx.read.markdown`). A page turned by
`/Rotate` is read upright. An encrypted PDF without a password is skipped (`encrypted`),
one without a text layer (a scan) likewise (`no text layer`); a broken one fails
(`malformed`). Attachments and annotations are not read. Parsing runs in the run's worker
processes, under `--parse-timeout`.
"""

from __future__ import annotations

import re
from typing import Any

from ragidx.models import Document
from ragidx.read.base import NotText, Source, Unreadable, register
from ragidx.read.markdown import escape_markup

__all__ = ["PdfReader"]

# An outline is the document's; a hostile one is bounded.
_MAX_OUTLINE = 10_000
_MAX_TITLE = 200
_MAX_PAGE_HEADS = 50  # outline entries of one page looked for among its lines
_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD


class PdfReader:
    content_type = "application/pdf"
    format = "markdown"
    suffixes: tuple[str, ...] = (".pdf",)
    segmented = False

    def sniff(self, head: bytes) -> bool:
        return head[:1024].lstrip().startswith(b"%PDF-")

    def read(self, source: Source) -> Document:
        import pypdfium2 as pdfium  # type: ignore[import-untyped]  # where a PDF is read

        try:
            pdf = pdfium.PdfDocument(source.data)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == _PASSWORD_ERROR:
                raise NotText("encrypted") from None
            raise Unreadable(f"not a readable PDF ({_reason(exc)})") from None
        try:
            headings = _outline(pdf)
            pages, seen = [], False
            for index in range(len(pdf)):
                page = pdf[index]
                try:
                    if page.get_rotation():
                        # PDFium reads a page turned by /Rotate bottom line first; unturned
                        # (in memory only) its lines come in reading order.
                        page.set_rotation(0)
                    text_page = page.get_textpage()
                    try:
                        text = text_page.get_text_range()
                    finally:
                        text_page.close()
                finally:
                    page.close()
                text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
                seen = seen or bool(text.strip())
                pages.append(_with_headings(text, headings.get(index, [])))
        except pdfium.PdfiumError as exc:
            raise Unreadable(f"not a readable PDF ({_reason(exc)})") from None
        finally:
            pdf.close()
        if not seen:
            raise NotText("no text layer")
        starts, at = [], 0
        for text in pages:
            starts.append(at)
            at += len(text) + 2 if text else 0
        return source.document(
            "\n\n".join(p for p in pages if p),
            self.format,
            "pdf",
            unit="page",
            pages=tuple(starts),
        )


def _with_headings(text: str, heads: list[tuple[int, str]]) -> str:
    """A page's text with its outline entries as Markdown headings: each on the line that
    reads as its title (bookmarks mostly point at a heading of the page), else at the top
    of the page. The page's own lines that Markdown would read as structure are escaped."""
    lines = escape_markup(text).split("\n")
    top: list[str] = []
    at = 0
    for level, title in heads:
        mark = "#" * level
        found = _line_of(lines, title, at) if len(heads) <= _MAX_PAGE_HEADS else None
        if found is None:
            top.append(f"{mark} {title}\n\n")
        else:
            lines[found], at = f"{mark} {title}", found + 1
    return "".join(top) + "\n".join(lines)


def _line_of(lines: list[str], title: str, start: int) -> int | None:
    """The first line from `start` that reads as `title`, spaces and case aside."""
    want = " ".join(title.split()).casefold()
    for i in range(start, len(lines)):
        if " ".join(lines[i].split()).casefold() == want:
            return i
    return None


def _outline(pdf: Any) -> dict[int, list[tuple[int, str]]]:
    """Outline titles by the page they point to, with their Markdown level (1-6)."""
    found: dict[int, list[tuple[int, str]]] = {}
    for n, bookmark in enumerate(pdf.get_toc(max_depth=6)):
        if n >= _MAX_OUTLINE:
            break
        dest = bookmark.get_dest()
        index = dest.get_index() if dest is not None else None
        title = " ".join((bookmark.get_title() or "").split())[:_MAX_TITLE]
        if index is None or not title:
            continue
        found.setdefault(index, []).append((min(bookmark.level + 1, 6), title))
    return found


def _reason(exc: Exception) -> str:
    text = str(exc)
    inner = re.search(r"\(PDFium: ([^)]*)\)", text)
    return inner.group(1) if inner else text[:120]


register(PdfReader())
