"""Stage 2, read: a file in, a `Document` (text plus where it came from) out.

`read_document` picks the reader registered for the file (`base.py`: the `Reader` seam and its
registry by content type): plain text, Markdown, reStructuredText and code (`plain.py`), HTML
(`html.py`), PDF (`pdf.py`), source code by function, class and method (`code.py`, for the
languages tree-sitter parses for it); zip-based documents, told by what the archive holds
(`zipped.py`), written as Markdown (`markdown.py`): Word (`docx.py`), PowerPoint
(`pptx.py`), Excel (`xlsx.py`), EPUB (`epub.py`) and OpenDocument text (`odt.py`).
Encodings are decided in one place (`decode.py`). A file too large to hold is read a segment
at a time (`SegmentReader`). A new format is a module that registers its reader, imported
here.
"""

from __future__ import annotations

# The built-in readers register themselves as they are imported.
from ragidx.read import docx as docx
from ragidx.read import epub as epub
from ragidx.read import html as html
from ragidx.read import odt as odt
from ragidx.read import pdf as pdf
from ragidx.read import plain as plain
from ragidx.read import pptx as pptx
from ragidx.read import xlsx as xlsx

# isort: split
# After plain: the source-code reader wins the endings of the languages it parses.
from ragidx.read import code as code
from ragidx.read.base import (
    Changed,
    NotText,
    Reader,
    Source,
    TooLarge,
    Unreadable,
    detect_format,
    document_suffixes,
    reader_for,
    readers,
    register,
    restore,
    unregister,
)
from ragidx.read.text import LARGE_FILE, SegmentReader, content_hash, read_document

__all__ = [
    "LARGE_FILE",
    "Changed",
    "NotText",
    "Reader",
    "SegmentReader",
    "Source",
    "TooLarge",
    "Unreadable",
    "content_hash",
    "detect_format",
    "document_suffixes",
    "read_document",
    "reader_for",
    "readers",
    "register",
    "restore",
    "unregister",
]
