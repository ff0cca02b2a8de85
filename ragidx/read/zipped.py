"""Zip-based documents (Office Open XML, EPUB, OpenDocument): the archive opened under limits,
the format told by what the archive holds (the format modules write their text with
`ragidx.read.markdown`).

One reader (`ZipReader`) claims every file that starts with a zip's magic bytes and hands it
to the format whose entries it holds (`Format.claims`: `word/` is DOCX, a `mimetype` entry of
`application/epub+zip` is EPUB...); a zip that is none of them is skipped (`not a document:
a zip archive`). Each format also has a reader by name (`.docx` ...), so that a file named
like one that is no zip reaches it and fails (`malformed`).

Nothing is decompressed before the central directory passes the limits: at most
`MAX_ENTRIES` entries, `MAX_UNCOMPRESSED` bytes in all, and no entry over `RATIO_FROM` bytes
that expands more than `MAX_RATIO` times. Past one, the file fails as `TooLarge`. Entries are
then read no further than the size they declare (zipfile stops there), so one that holds more
fails its checksum (`malformed`). XML is parsed without DTDs, entities or
network (`parse_xml`). A broken archive or part fails as `Unreadable`; an encrypted one is
skipped (`encrypted`).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from ragidx.models import Document
from ragidx.read.base import NotText, Source, TooLarge, Unreadable, register

__all__ = [
    "MAX_ENTRIES",
    "MAX_RATIO",
    "MAX_UNCOMPRESSED",
    "RATIO_FROM",
    "ZIP_MAGIC",
    "Archive",
    "Format",
    "ZipReader",
    "add_format",
    "office_package",
    "packaged_as",
    "parse_xml",
    "safe_iterparse",
]

ZIP_MAGIC = b"PK\x03\x04"
MAX_ENTRIES = 10_000
MAX_UNCOMPRESSED = 512 * 1024 * 1024
MAX_RATIO = 200
RATIO_FROM = 1024 * 1024  # smaller entries may compress better: they cannot expand to much
_MAX_DIRECTORY = 16 * 1024 * 1024  # a central directory past this is not a document's
_MiB = 1024 * 1024
_EOCD = b"PK\x05\x06"
_EOCD_SEARCH = 22 + 65535  # the record, and the longest comment that may follow it
# An Office file saved with a password is an OLE2 compound file holding this stream.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_XML_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "huge_tree": False,
    "load_dtd": False,
}


def parse_xml(data: bytes) -> Any:
    """The root element of `data`, parsed without DTDs, entities or network (lxml). Raises
    `lxml.etree.XMLSyntaxError` for what is not XML."""
    from lxml import etree  # type: ignore[import-untyped]

    # A parser per document: lxml's parsers are not to be shared between threads.
    return etree.fromstring(data, etree.XMLParser(**_XML_OPTIONS))


def safe_iterparse(data: bytes, tag: str) -> Iterator[Any]:
    """The `tag` elements of `data` as each ends, parsed as `parse_xml` does, in bounded
    memory: the caller clears each one (`element.clear()`), and those before it go."""
    from lxml import etree

    for _event, element in etree.iterparse(io.BytesIO(data), tag=tag, **_XML_OPTIONS):
        yield element
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]


class Archive:
    """A zip archive whose central directory passed the entry limits (`check` tests the sizes
    too); its entries read no further than the size they declare. `kind` names the format
    in messages ("DOCX")."""

    def __init__(self, data: bytes, kind: str) -> None:
        self.kind = kind
        _directory_fits(data, self.fail)
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
            raise self.fail(f"a damaged zip archive ({_clip(str(exc))})") from None
        self.infos = {info.filename: info for info in self.zip.infolist()}
        if len(self.zip.infolist()) > MAX_ENTRIES:
            count = len(self.zip.infolist())
            raise TooLarge(f"zip bomb: {count:,} entries (limit {MAX_ENTRIES:,})")

    def fail(self, what: str) -> Unreadable:
        article = "an" if self.kind[:1] in "AEIOUX" else "a"
        return Unreadable(f"not {article} {self.kind} file: {what}")

    def check(self) -> None:
        """Raise `TooLarge` where the entries declare more than the limits allow."""
        total = 0
        for info in self.infos.values():
            total += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_FROM and ratio > MAX_RATIO:
                raise TooLarge(
                    f"zip bomb: entry {_clip(info.filename)} expands {ratio:,.0f}x"
                    f" (limit {MAX_RATIO}x)"
                )
        if total > MAX_UNCOMPRESSED:
            raise TooLarge(
                f"zip bomb: entries expand to {total / _MiB:,.0f} MiB in all"
                f" (limit {MAX_UNCOMPRESSED // _MiB} MiB)"
            )

    def has(self, name: str) -> bool:
        return name in self.infos

    def names(self) -> Iterable[str]:
        return self.infos.keys()

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        """The bytes of entry `name` (at most `limit`), None where there is none."""
        info = self.infos.get(name)
        if info is None:
            return None
        if info.flag_bits & 0x1:
            raise NotText("encrypted")
        cap = info.file_size if limit is None else min(limit, info.file_size)
        try:
            with self.zip.open(info) as f:
                data = f.read(cap + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
            raise self.fail(f"entry {_clip(name)} is damaged ({_clip(str(exc))})") from None
        if len(data) > info.file_size:  # zipfile stops at the declared size; this says so
            raise TooLarge(f"zip bomb: entry {_clip(name)} is larger than it declares")
        return data[:cap]

    def xml(self, name: str, *, required: bool = False) -> Any:
        """The root element of entry `name`; None where there is none (unless `required`)."""
        data = self.read(name)
        if data is None:
            if required:
                raise self.fail(f"no {_clip(name)}")
            return None
        from lxml import etree

        try:
            return parse_xml(data)
        except (etree.LxmlError, ValueError) as exc:
            raise self.fail(f"{_clip(name)} is not XML ({_clip(str(exc))})") from None

    def rels(self, part: str) -> dict[str, tuple[str, str]]:
        """The relationships of `part` ("" for the package's own): id -> (type, the target's
        entry name). Links outside the package are left out."""
        folder, _, base = part.rpartition("/")
        root = self.xml(f"{folder}/_rels/{base}.rels" if folder else f"_rels/{base}.rels")
        found: dict[str, tuple[str, str]] = {}
        if root is None:
            return found
        for rel in root.iter(f"{_REL_NS}Relationship"):
            target = rel.get("Target") or ""
            if rel.get("TargetMode") == "External" or not target:
                continue
            found[rel.get("Id") or ""] = (rel.get("Type") or "", self.resolve(folder, target))
        return found

    def main_part(self, default: str) -> str:
        """The package's main document (`_rels/.rels`), or `default`."""
        for kind, target in self.rels("").values():
            if kind.endswith("/officeDocument") and self.has(target):
                return target
        return default

    def resolve(self, folder: str, target: str) -> str:
        """A relationship's or link's target, relative to `folder`, as an entry name."""
        target = target.split("#", 1)[0]
        path = target.lstrip("/") if target.startswith("/") else f"{folder}/{target}"
        parts: list[str] = []
        for piece in PurePosixPath(path).parts:
            if piece == "..":
                if parts:
                    parts.pop()
            elif piece not in (".", "/"):
                parts.append(piece)
        return "/".join(parts)

    def mimetype(self) -> str:
        """What an OpenDocument or EPUB archive's `mimetype` entry says it is."""
        data = self.read("mimetype", limit=200) if self.has("mimetype") else None
        return data.decode("ascii", "replace").strip() if data else ""


def _directory_fits(data: bytes, fail: Callable[[str], Unreadable]) -> None:
    """Check the central directory's entry count and size as its end record declares them,
    before it is parsed."""
    end = data.rfind(_EOCD, max(0, len(data) - _EOCD_SEARCH))
    if not data.startswith(ZIP_MAGIC) and end == -1:
        raise fail("not a zip archive")
    if end == -1 or len(data) < end + 22:
        raise fail("a damaged zip archive (no central directory: truncated?)")
    count = int.from_bytes(data[end + 10 : end + 12], "little")
    size = int.from_bytes(data[end + 12 : end + 16], "little")
    if count > MAX_ENTRIES:  # 0xFFFF, for a Zip64 archive, says more than that
        raise TooLarge(f"zip bomb: {count:,} entries (limit {MAX_ENTRIES:,})")
    if size > _MAX_DIRECTORY:
        raise TooLarge(
            f"zip bomb: a central directory of {size / _MiB:,.0f} MiB"
            f" (limit {_MAX_DIRECTORY // _MiB} MiB)"
        )


def _clip(text: str, size: int = 120) -> str:
    """Hostile names and parser messages, printable and short."""
    text = "".join(c if c.isprintable() else "?" for c in text[: size + 1])
    return text if len(text) <= size else text[: size - 1] + "…"


def office_package(folder: str, archive: Archive) -> bool:
    """Whether `archive` is an Office Open XML package whose parts are under `folder`
    (`word/`, `ppt/`, `xl/`): a `Format.claims`, through `functools.partial`."""
    return archive.has("[Content_Types].xml") and any(
        name.startswith(folder) for name in archive.names()
    )


def packaged_as(mimetype: str, archive: Archive) -> bool:
    """Whether `archive`'s `mimetype` entry (OpenDocument, EPUB) says `mimetype`."""
    return archive.mimetype() == mimetype


class Format(NamedTuple):
    """A zip-based format: its name in messages ("DOCX"), the content type and file name
    endings it is registered under, whether an archive holds it, how to read it, and the
    `Document.format` that gives."""

    name: str
    content_type: str
    suffixes: tuple[str, ...]
    claims: Callable[[Archive], bool]
    read: Callable[[Source, Archive], Document]
    format: str = "markdown"


@dataclass(slots=True)
class ZipReader:
    """Reads a zip archive as the format it holds: any such file (by its magic bytes), or,
    as `only`, the files named like that format (`reader_for`)."""

    content_type: str
    suffixes: tuple[str, ...]
    formats: tuple[Format, ...]
    only: Format | None = None
    format: str = "markdown"
    segmented = False

    @classmethod
    def reading(cls, formats: tuple[Format, ...], only: Format | None = None) -> ZipReader:
        if only is None:
            return cls("application/zip", (), formats)
        return cls(only.content_type, only.suffixes, formats, only, only.format)

    def sniff(self, head: bytes) -> bool:
        return self.only is None and head.startswith(ZIP_MAGIC)

    def read(self, source: Source) -> Document:
        named = self.only or self._named(source.path)
        if named is not None and _office_encrypted(source.data):
            raise NotText("encrypted")
        try:
            archive = Archive(source.data, named.name if named else "ZIP")
        except Unreadable as exc:
            if named is None:  # a zip archive, not a document: not ours to judge
                raise NotText(f"not a document: a zip archive ({exc})") from None
            raise
        found = next((f for f in self.formats if f.claims(archive)), None)
        if found is None:
            if named is not None:
                raise archive.fail("its zip archive holds no such document")
            raise NotText("not a document: a zip archive")
        archive.kind = found.name
        archive.check()
        return _guarded(found, source, archive)

    def _named(self, path: Path) -> Format | None:
        suffix = path.suffix.lower()
        return next((f for f in self.formats if suffix in f.suffixes), None)


def _guarded(found: Format, source: Source, archive: Archive) -> Document:
    from lxml import etree

    try:
        return found.read(source, archive)
    except (etree.LxmlError, ValueError) as exc:  # XML that parses but is not what it says
        raise archive.fail(_clip(f"{type(exc).__name__}: {exc}")) from None


def _office_encrypted(data: bytes) -> bool:
    return data.startswith(_OLE_MAGIC) and _ENCRYPTED_PACKAGE in data[:1_048_576]


_formats: list[Format] = []


def add_format(fmt: Format) -> None:
    """Register `fmt`: the zip reader learns it, and it gets a reader by file name."""
    _formats.append(fmt)
    register(ZipReader.reading((fmt,), fmt))
    register(ZipReader.reading(tuple(_formats)))  # the sniffer, with every format so far
