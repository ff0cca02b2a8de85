"""PowerPoint presentations (PPTX): each slide a section, in the presentation's order.

A slide's section is headed by its title placeholder (`# Slide N` where it has none); its text
frames and tables follow in shape order (groups entered), then its speaker notes after a
`Notes:` line. `Document.pages` holds where each slide starts (`unit="slide"`), so every
chunk knows its slides. Dates, footers and slide numbers are left out; so are pictures.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from ragidx.models import Document
from ragidx.read.base import Source
from ragidx.read.markdown import Markdown, cell
from ragidx.read.zipped import Archive, Format, add_format, office_package

__all__ = ["PPTX", "read_pptx"]

_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_TITLES = {"title", "ctrTitle"}
_FURNITURE = {"sldNum", "dt", "ftr", "hdr", "sldImg"}


def read_pptx(source: Source, archive: Archive) -> Document:
    """The Markdown of a presentation's slides and notes."""
    main = archive.main_part("ppt/presentation.xml")
    presentation = archive.xml(main, required=True)
    rels = archive.rels(main)
    out = Markdown()
    ids = presentation.find(f"{_P}sldIdLst")
    for number, slide_id in enumerate(ids.iterfind(f"{_P}sldId") if ids is not None else (), 1):
        rel = rels.get(slide_id.get(_R_ID) or "")
        slide = archive.xml(rel[1]) if rel else None
        out.page()
        if slide is None:
            out.heading(1, f"Slide {number}", text=False)
            continue
        shapes = list(_shapes(slide.find(f"{_P}cSld/{_P}spTree")))
        title = next((_frame(s) for s in shapes if _placeholder(s) in _TITLES), "")
        if title.strip():
            out.heading(1, title)
        else:
            out.heading(1, f"Slide {number}", text=False)
        for shape in shapes:
            if _placeholder(shape) in _TITLES:
                continue
            if shape.tag == f"{_P}graphicFrame":
                for table in shape.iter(f"{_A}tbl"):
                    out.table(_rows(table))
            else:
                out.paragraph(_frame(shape))
        notes = _notes(archive, rel[1]) if rel else ""
        if notes.strip():
            out.paragraph("Notes:\n" + notes)
    return out.document(source, "pptx", unit="slide")


def _shapes(tree: Any) -> Iterator[Any]:
    """Shapes with text and frames with tables, in shape order; groups are entered, and of
    alternative content the first choice is taken."""
    if tree is None:
        return
    for child in tree:
        tag = child.tag
        if tag == f"{_P}sp":
            if _placeholder(child) not in _FURNITURE:
                yield child
        elif tag == f"{_P}graphicFrame":
            yield child
        elif tag == f"{_P}grpSp":
            yield from _shapes(child)
        elif tag == f"{_MC}AlternateContent":
            choice = child.find(f"{_MC}Choice")
            yield from _shapes(choice if choice is not None else child.find(f"{_MC}Fallback"))


def _placeholder(shape: Any) -> str | None:
    """The placeholder type of a shape ("body" for a typeless one), None for no placeholder."""
    ph = shape.find(f"{_P}nvSpPr/{_P}nvPr/{_P}ph")
    return None if ph is None else ph.get("type", "body")


def _frame(shape: Any) -> str:
    """A shape's text frame: its paragraphs on lines of their own."""
    body = shape.find(f"{_P}txBody")
    if body is None:
        return ""
    return "\n".join(_paragraph(p) for p in body.iterfind(f"{_A}p")).strip("\n")


def _paragraph(paragraph: Any) -> str:
    return "".join(
        (el.text or "") if el.tag == f"{_A}t" else "\n"
        for el in paragraph.iter(f"{_A}t", f"{_A}br")
    )


def _rows(table: Any) -> Iterator[list[str]]:
    for row in table.iterfind(f"{_A}tr"):
        yield [
            cell(" ".join(_paragraph(p) for p in tc.iter(f"{_A}p")))
            for tc in row.iterfind(f"{_A}tc")
        ]


def _notes(archive: Archive, slide: str) -> str:
    for kind, target in archive.rels(slide).values():
        if kind.endswith("/notesSlide"):
            notes = archive.xml(target)
            if notes is None:
                return ""
            shapes = _shapes(notes.find(f"{_P}cSld/{_P}spTree"))
            return "\n".join(t for s in shapes if _placeholder(s) == "body" if (t := _frame(s)))
    return ""


PPTX = Format(
    "PPTX",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    (".pptx",),
    functools.partial(office_package, "ppt/"),
    read_pptx,
)
add_format(PPTX)
