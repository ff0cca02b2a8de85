"""OpenDocument text (ODT): `content.xml`'s headings, paragraphs, lists and tables as Markdown.

Headings (`text:h`, by their outline level) become the document's outline; list items `- `
lines; tables Markdown rows. Tracked deletions, notes, annotations and generated indexes
(a table of contents repeats the headings) are left out. A password-protected document
(its manifest says its entries are encrypted) is skipped (`encrypted`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from ragidx.models import Document
from ragidx.read.base import NotText, Source
from ragidx.read.markdown import Markdown, cell
from ragidx.read.zipped import Archive, Format, add_format, packaged_as

__all__ = ["ODT", "read_odt"]

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_H, _P, _LIST, _ITEM = f"{_TEXT}h", f"{_TEXT}p", f"{_TEXT}list", f"{_TEXT}list-item"
_SKIPPED = {f"{_TEXT}note", f"{_OFFICE}annotation", f"{_TEXT}tracked-changes"}
_CONTAINERS = {f"{_TEXT}section", f"{_OFFICE}text"}
_ROW_GROUPS = {f"{_TABLE}table-header-rows", f"{_TABLE}table-rows", f"{_TABLE}table-row-group"}
_MAX_SPACES = 100


def read_odt(source: Source, archive: Archive) -> Document:
    """The Markdown of an OpenDocument text's body."""
    manifest = archive.read("META-INF/manifest.xml") or b""
    if b"encryption-data" in manifest:
        raise NotText("encrypted")
    root = archive.xml("content.xml", required=True)
    body = root.find(f"{_OFFICE}body/{_OFFICE}text")
    out = Markdown()
    if body is not None:
        _blocks(body, out)
    return out.document(source, "odt")


def _blocks(parent: Any, out: Markdown) -> None:
    for child in parent:
        if child.tag == _H:
            level = child.get(f"{_TEXT}outline-level") or "1"
            out.heading(int(level) if level.isdigit() and level != "0" else 1, _text(child))
        elif child.tag == _P:
            out.paragraph(_text(child))
        elif child.tag == _LIST:
            out.paragraph("\n".join(_items(child, 0)))
        elif child.tag == f"{_TABLE}table":
            out.table(_rows(child))
        elif child.tag in _CONTAINERS:
            _blocks(child, out)


def _items(listing: Any, depth: int) -> Iterator[str]:
    for item in listing.iterfind(_ITEM):
        for child in item:
            if child.tag in (_P, _H) and (text := " ".join(_text(child).split())):
                yield "  " * depth + "- " + text
            elif child.tag == _LIST:
                yield from _items(child, depth + 1)


def _rows(table: Any) -> Iterator[list[str]]:
    for child in table:
        if child.tag == f"{_TABLE}table-row":
            yield [
                cell(" ".join(_text(p) for p in c.iter(_P, _H)))
                for c in child
                if c.tag in (f"{_TABLE}table-cell", f"{_TABLE}covered-table-cell")
            ]
        elif child.tag in _ROW_GROUPS:
            yield from _rows(child)


def _text(element: Any) -> str:
    """The text of a paragraph or heading: spans and links entered, spaces, tabs and line
    breaks as they show; notes and annotations left out."""
    pieces = [element.text or ""]
    for child in element:
        tag = child.tag
        if tag == f"{_TEXT}s":
            count = child.get(f"{_TEXT}c") or "1"
            pieces.append(" " * min(int(count) if count.isdigit() else 1, _MAX_SPACES))
        elif tag == f"{_TEXT}tab":
            pieces.append("\t")
        elif tag == f"{_TEXT}line-break":
            pieces.append("\n")
        elif tag not in _SKIPPED and isinstance(tag, str):
            pieces.append(_text(child))
        pieces.append(child.tail or "")
    return "".join(pieces)


ODT = Format(
    "ODT",
    "application/vnd.oasis.opendocument.text",
    (".odt",),
    functools.partial(packaged_as, "application/vnd.oasis.opendocument.text"),
    read_odt,
)
add_format(ODT)
