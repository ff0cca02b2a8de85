"""EPUB books: the chapters in spine order, each through the HTML reader.

`META-INF/container.xml` names the package document, whose spine orders the chapters; each
chapter's XHTML becomes what a browser shows of it, its headings Markdown headings
(`ragidx.read.html`), and the chapters are joined by blank lines. A chapter's `<title>`
(often the book's, in every chapter) is left out, and so is the navigation document (a
table of contents) where the spine lists it. A book whose chapters are encrypted (DRM)
is skipped (`encrypted`); fonts obfuscated as EPUB allows do not count.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote

from ragidx.models import Document
from ragidx.read.base import NotText, Source
from ragidx.read.decode import decode_text
from ragidx.read.html import html_to_text
from ragidx.read.zipped import Archive, Format, add_format, packaged_as

__all__ = ["EPUB", "read_epub"]

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_ENC = "{http://www.w3.org/2001/04/xmlenc#}"
_TITLE = re.compile(r"<title\b[^>]*>.*?</title\s*>", re.I | re.S)


def read_epub(source: Source, archive: Archive) -> Document:
    """The text of a book's chapters, in reading order."""
    container = archive.xml("META-INF/container.xml", required=True)
    rootfile = container.find(f"{_CONTAINER}rootfiles/{_CONTAINER}rootfile")
    opf_name = rootfile.get("full-path") if rootfile is not None else None
    if not opf_name:
        raise archive.fail("no package document in META-INF/container.xml")
    opf = archive.xml(opf_name, required=True)
    folder = opf_name.rpartition("/")[0]
    hrefs = {
        item.get("id"): archive.resolve(folder, unquote(item.get("href") or ""))
        for item in opf.iterfind(f"{_OPF}manifest/{_OPF}item")
        # The navigation document lists the chapters' titles again.
        if "nav" not in (item.get("properties") or "").split()
    }
    chapters = [
        hrefs[ref.get("idref")]
        for ref in opf.iterfind(f"{_OPF}spine/{_OPF}itemref")
        if ref.get("idref") in hrefs
    ]
    if _encrypted(archive) & set(chapters):
        raise NotText("encrypted")
    texts = []
    for name in dict.fromkeys(chapters):  # a chapter listed twice is read once
        data = archive.read(name)
        if data is None:
            continue
        try:
            html, _encoding = decode_text(data)
        except NotText as exc:
            raise archive.fail(f"chapter {name[:120]}: {exc}") from None
        text = html_to_text(_TITLE.sub("", html, count=1)).strip()
        if text:
            texts.append(text)
    return source.document("\n\n".join(texts) + "\n", "html", "epub")


def _encrypted(archive: Archive) -> set[str]:
    """The entries `META-INF/encryption.xml` says are encrypted, obfuscated fonts aside."""
    root = archive.xml("META-INF/encryption.xml")
    found: set[str] = set()
    if root is None:
        return found
    for data in root.iter(f"{_ENC}EncryptedData"):
        method = data.find(f"{_ENC}EncryptionMethod")
        algorithm = (method.get("Algorithm") or "") if method is not None else ""
        if "embedding" in algorithm or algorithm.endswith("pdf/enc#RC"):
            continue  # font obfuscation
        for ref in data.iter(f"{_ENC}CipherReference"):
            found.add(archive.resolve("", unquote(ref.get("URI") or "")))
    return found


EPUB = Format(
    "EPUB",
    "application/epub+zip",
    (".epub",),
    functools.partial(packaged_as, "application/epub+zip"),
    read_epub,
    "html",
)
add_format(EPUB)
