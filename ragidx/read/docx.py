"""Word documents (DOCX, DOCM): the body's paragraphs and tables in order, as Markdown.

Paragraph styles give the headings (Title, Heading 1-9, and any style whose definition or
the styles it is based on set an outline level, as localized and custom heading styles do);
they become the document's outline, so chunks carry them as their heading path. Tables
become Markdown rows under a header separator, numbered and bulleted paragraphs `- ` items.
Deleted text (tracked changes) is left out, inserted text kept; tabs and line breaks kept.
Headers, footers, footnotes and comments are not read. The XML is read with lxml
(`ragidx.read.zipped`), which measured faster than python-docx on the same files
(`bench/office_parsers.py`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from ragidx.models import Document
from ragidx.read.base import Source
from ragidx.read.markdown import Markdown, cell
from ragidx.read.zipped import Archive, Format, add_format, office_package

__all__ = ["DOCX", "read_docx"]

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_P, _TBL, _TR, _TC, _T = f"{_W}p", f"{_W}tbl", f"{_W}tr", f"{_W}tc", f"{_W}t"
_VAL = f"{_W}val"
# Text that a reader of the document does not see: deletions, field codes, the fallback
# copy of a drawing (its text box would come twice).
_HIDDEN = (f"{_W}del", f"{_W}moveFrom", f"{_W}instrText", f"{_W}delText", f"{_MC}Fallback")
_WRAPPERS = {f"{_W}sdt", f"{_W}sdtContent", f"{_W}customXml", f"{_W}ins", f"{_W}moveTo"}
_INLINE = {f"{_W}tab": "\t", f"{_W}br": "\n", f"{_W}cr": "\n", f"{_W}noBreakHyphen": "-"}
_HEADING_NAME = re.compile(r"heading ?([1-9])")
_TITLE = 0  # a style's level meaning Title: above Heading 1
_BASED_ON_DEPTH = 10


def read_docx(source: Source, archive: Archive) -> Document:
    """The Markdown of a Word document's body."""
    main = archive.main_part("word/document.xml")
    root = archive.xml(main, required=True)
    body = root.find(f"{_W}body")
    if body is None:
        raise archive.fail(f"no body in {main}")
    for hidden in list(body.iter(*_HIDDEN)):
        parent = hidden.getparent()
        if parent is not None:
            parent.remove(hidden)
    styles = _Styles(archive.xml(_styles_part(archive, main)))
    blocks = list(_blocks(body))
    has_title = any(b.tag == _P and styles.level(b) == _TITLE for b in blocks)
    out, items = Markdown(), list[str]()
    for block in blocks:
        if block.tag == _TBL:
            out.paragraph("\n".join(items))
            items = []
            out.table(_rows(block))
            continue
        text = _text(block)
        level, depth = styles.level(block), styles.list_depth(block)
        if depth is not None and level is None:
            if text.strip():
                items.append("  " * depth + "- " + " ".join(text.split()))
            continue
        out.paragraph("\n".join(items))
        items = []
        if level is not None:
            out.heading(max(1, level + has_title), text)
        else:
            out.paragraph(text)
    out.paragraph("\n".join(items))
    return out.document(source, "docx")


def _styles_part(archive: Archive, main: str) -> str:
    for kind, target in archive.rels(main).values():
        if kind.endswith("/styles"):
            return target
    return "word/styles.xml"


def _blocks(parent: Any) -> Iterator[Any]:
    """Paragraphs and tables in body order, through content controls and the like."""
    for child in parent:
        if child.tag in (_P, _TBL):
            yield child
        elif child.tag in _WRAPPERS:
            yield from _blocks(child)


def _text(paragraph: Any) -> str:
    """A paragraph's text: runs, tabs, breaks; a text box's paragraphs on lines of their own."""
    pieces = []
    for el in paragraph.iter(_T, _P, *_INLINE):
        if el.tag == _T:
            pieces.append(el.text or "")
        elif el.tag == _P:
            if el is not paragraph:
                pieces.append("\n")
        else:
            pieces.append(_INLINE[el.tag])
    return "".join(pieces)


def _rows(table: Any) -> Iterator[list[str]]:
    for row in _within(table, _TR):
        yield [cell(" ".join(_cell_text(tc))) for tc in _within(row, _TC)]


def _within(parent: Any, tag: str) -> Iterator[Any]:
    """`parent`'s children of `tag`, through content controls and the like."""
    for child in parent:
        if child.tag == tag:
            yield child
        elif child.tag in _WRAPPERS:
            yield from _within(child, tag)


def _cell_text(tc: Any) -> Iterator[str]:
    """A cell's paragraphs, and the cells of a table within it, flattened."""
    for block in _blocks(tc):
        if block.tag == _P:
            yield _text(block)
        else:
            for row in _rows(block):
                yield from row


class _Styles:
    """What paragraph styles make of a paragraph: a heading level, a list item."""

    def __init__(self, root: Any) -> None:
        self.heading: dict[str, int | None] = {}
        self.listed: dict[str, bool] = {}
        self._style: dict[str, tuple[str, str | None, int | None, bool]] = {}
        if root is None:
            return
        for style in root.iterfind(f"{_W}style"):
            sid = style.get(f"{_W}styleId") or ""
            name = _val(style.find(f"{_W}name")) or ""
            based = _val(style.find(f"{_W}basedOn"))
            ppr = style.find(f"{_W}pPr")
            outline = _outline_level(ppr)
            listed = ppr is not None and _numbered(ppr.find(f"{_W}numPr"))
            self._style[sid] = (name, based, outline, listed)

    def level(self, paragraph: Any) -> int | None:
        """0 for Title, n for Heading n, None for a paragraph that is no heading."""
        ppr = paragraph.find(f"{_W}pPr")
        if ppr is None:
            return None
        own = _outline_level(ppr)
        if own is not None:
            return own
        sid = _val(ppr.find(f"{_W}pStyle"))
        return self._heading(sid) if sid else None

    def list_depth(self, paragraph: Any) -> int | None:
        """How deep a list item the paragraph is (0 at the top), None where it is none."""
        ppr = paragraph.find(f"{_W}pPr")
        if ppr is None:
            return None
        num = ppr.find(f"{_W}numPr")
        if num is not None:
            if not _numbered(num):
                return None
            ilvl = _val(num.find(f"{_W}ilvl")) or "0"
            return min(int(ilvl), 8) if ilvl.isdigit() else 0
        sid = _val(ppr.find(f"{_W}pStyle"))
        return 0 if sid and self._listed(sid) else None

    def _heading(self, sid: str) -> int | None:
        if sid not in self.heading:
            self.heading[sid] = self._resolve(sid, _style_level)
        return self.heading[sid]

    def _listed(self, sid: str) -> bool:
        if sid not in self.listed:
            self.listed[sid] = bool(self._resolve(sid, lambda s, e: 1 if e[3] else None))
        return self.listed[sid]

    def _resolve(self, sid: str, say: Any) -> int | None:
        """What `say` finds for the style or, failing that, the styles it is based on."""
        seen: set[str] = set()
        current: str | None = sid
        for _ in range(_BASED_ON_DEPTH):
            if current is None or current in seen:
                break
            seen.add(current)
            entry = self._style.get(current)
            found = say(current, entry or ("", None, None, False))
            if found is not None or entry is None:
                return found  # type: ignore[no-any-return]
            current = entry[1]
        return None


def _style_level(sid: str, entry: tuple[str, str | None, int | None, bool]) -> int | None:
    name = entry[0].lower()
    if name == "title" or sid == "Title":
        return _TITLE
    found = _HEADING_NAME.fullmatch(name) or _HEADING_NAME.fullmatch(sid.lower())
    if found:
        return int(found.group(1))
    return entry[2]


def _outline_level(ppr: Any) -> int | None:
    """A `w:outlineLvl` (0-8 is a heading of level 1-9; 9 is body text)."""
    value = _val(ppr.find(f"{_W}outlineLvl")) if ppr is not None else None
    return int(value) + 1 if value is not None and value.isdigit() and int(value) < 9 else None


def _numbered(num: Any) -> bool:
    if num is None:
        return False
    return _val(num.find(f"{_W}numId")) not in (None, "0")


def _val(el: Any) -> str | None:
    return None if el is None else el.get(_VAL)


DOCX = Format(
    "DOCX",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    (".docx", ".docm"),
    functools.partial(office_package, "word/"),
    read_docx,
)
add_format(DOCX)
