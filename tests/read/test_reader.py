"""Tests for ragidx.read: decoding, formats, HTML to text and read_document on real files."""

from __future__ import annotations

import codecs
import hashlib
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import ragidx
from ragidx.config import IndexConfig
from ragidx.embed import HashEmbedder
from ragidx.models import Document, FileInfo, FileStatus
from ragidx.read import NotText, Unreadable, detect_format, read_document
from ragidx.read.decode import decode
from ragidx.read.html import html_to_text
from ragidx.store import SqliteStore

LATIN1_NAMES = {"cp1252", "windows-1252", "latin_1", "latin-1", "iso8859_1", "iso-8859-1"}

GERMAN = (
    "Die Größe der Straße überrascht jeden Besucher. Über die Brücke gehen täglich viele "
    "Menschen, und im Café gegenüber trinken sie süßen Kaffee. Müller und Schäfer wohnen "
    "dort seit Jahren; sie grüßen freundlich, wenn man vorbeigeht.\n"
)
FRENCH = (
    "L'été dernier, nous sommes allés à la plage près de Nice. Le café était délicieux et "
    "la crème brûlée aussi. Où est la bibliothèque ? Elle est fermée le dimanche, "
    "malheureusement. Les élèves étudient à l'école avec leur maître.\n"
)


def write(tmp_path: Path, name: str, data: bytes) -> FileInfo:
    path = tmp_path / name
    path.write_bytes(data)
    st_ = path.stat()
    return FileInfo(path, st_.st_size, st_.st_mtime_ns)


def png_bytes() -> bytes:
    """A valid 1x1 black PNG."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# --- decode ---------------------------------------------------------------------------------


def test_decode_utf8_without_bom() -> None:
    text = "Grüße, 世界! ✓ naïve café\n"
    assert decode(text.encode("utf-8")) == (text, "utf-8")


def test_decode_utf8_with_bom_strips_the_bom() -> None:
    text = "Grüße, 世界!\n"
    assert decode(codecs.BOM_UTF8 + text.encode("utf-8")) == (text, "utf-8-sig")


def test_decode_plain_ascii_is_utf8() -> None:
    assert decode(b"hello world\n") == ("hello world\n", "utf-8")


def test_decode_latin1_german_paragraph() -> None:
    data = GERMAN.encode("latin-1")
    text, encoding = decode(data)
    assert text == GERMAN
    assert encoding in LATIN1_NAMES  # a tie with cp1250 goes to the Western code page
    assert data.decode(encoding) == GERMAN


def test_decode_latin1_mixed_german_french_paragraph() -> None:
    original = GERMAN + FRENCH
    text, encoding = decode(original.encode("latin-1"))
    assert text == original
    assert encoding.lower() in LATIN1_NAMES, encoding


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (codecs.BOM_UTF16_LE + "Grüße, 世界\n".encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + "Grüße, 世界\n".encode("utf-16-be"), "utf-16"),
        (codecs.BOM_UTF32_LE + "Grüße, 世界\n".encode("utf-32-le"), "utf-32"),
        (codecs.BOM_UTF32_BE + "Grüße, 世界\n".encode("utf-32-be"), "utf-32"),
    ],
    ids=["utf16le", "utf16be", "utf32le", "utf32be"],
)
def test_decode_utf16_and_utf32_with_bom(data: bytes, encoding: str) -> None:
    assert decode(data) == ("Grüße, 世界\n", encoding)


def test_decode_invalid_utf16_after_bom_is_not_text() -> None:
    with pytest.raises(NotText, match="utf-16"):
        decode(codecs.BOM_UTF16_LE + b"\x00\xd8")  # a lone high surrogate


def test_decode_nul_bytes_are_binary() -> None:
    with pytest.raises(NotText, match="binary"):
        decode(b"some text\x00more text")


def test_decode_control_characters_are_binary() -> None:
    # Not UTF-8 (0xff) and full of control characters no text holds.
    with pytest.raises(NotText, match="binary"):
        decode(b"\x01\x02\x03\x04\xff\x05\x06" * 50)


def test_decode_png_is_not_text() -> None:
    with pytest.raises(NotText, match="binary"):
        decode(png_bytes())


@given(st.text().filter(lambda s: "\x00" not in s))
@example("\ufeffleading zero-width no-break space")
@example("")
@settings(max_examples=300, deadline=None)
def test_decode_roundtrips_any_utf8_text(text: str) -> None:
    if text.startswith("\ufeff"):
        # U+FEFF encodes to EF BB BF, the UTF-8 byte-order mark: by design it is read as a
        # BOM (documented), so the character is dropped and "utf-8-sig" recorded.
        assert decode(text.encode("utf-8")) == (text[1:], "utf-8-sig")
    else:
        assert decode(text.encode("utf-8")) == (text, "utf-8")


# --- read_document --------------------------------------------------------------------------


def test_read_document_fields(tmp_path: Path) -> None:
    data = b"# Title\n\nSome text.\n"
    info = write(tmp_path, "a.md", data)
    doc = read_document(info)
    assert doc == Document(
        path=info.path,
        text="# Title\n\nSome text.\n",
        format="markdown",
        encoding="utf-8",
        content_hash=hashlib.blake2b(data, digest_size=16).hexdigest(),
        size=len(data),
        mtime_ns=info.mtime_ns,
    )


def test_read_document_utf8_bom_file(tmp_path: Path) -> None:
    info = write(tmp_path, "bom.txt", codecs.BOM_UTF8 + "héllo\n".encode())
    doc = read_document(info)
    assert doc.text == "héllo\n"
    assert doc.encoding == "utf-8-sig"
    assert doc.size == 3 + len("héllo\n".encode())


def test_read_document_latin1_file(tmp_path: Path) -> None:
    info = write(tmp_path, "de.txt", GERMAN.encode("latin-1"))
    doc = read_document(info)
    assert doc.text == GERMAN
    assert GERMAN.encode("latin-1").decode(doc.encoding) == GERMAN


def test_read_document_utf16_file(tmp_path: Path) -> None:
    info = write(tmp_path, "u16.txt", "line one\r\nline two\r\n".encode("utf-16"))
    doc = read_document(info)
    assert doc.text == "line one\nline two\n"
    assert doc.encoding == "utf-16"


def test_read_document_nul_bytes_not_text(tmp_path: Path) -> None:
    info = write(tmp_path, "bin.dat", b"abc\x00def\x00" * 10)
    with pytest.raises(NotText, match="binary"):
        read_document(info)


def test_read_document_empty_file_not_text(tmp_path: Path) -> None:
    info = write(tmp_path, "empty.md", b"")
    with pytest.raises(NotText, match="empty"):
        read_document(info)


def test_read_document_png_not_text(tmp_path: Path) -> None:
    info = write(tmp_path, "image.png", png_bytes())
    with pytest.raises(NotText):
        read_document(info)


def test_read_document_whitespace_only_not_text(tmp_path: Path) -> None:
    info = write(tmp_path, "blank.txt", b"  \n\t\n\r\n")
    with pytest.raises(NotText, match="no text"):
        read_document(info)


def test_read_document_markup_only_html_not_text(tmp_path: Path) -> None:
    info = write(tmp_path, "blank.html", b"<html><body><div> </div><script>x()</script></body>")
    with pytest.raises(NotText, match="no text"):
        read_document(info)


def test_read_document_normalises_line_endings(tmp_path: Path) -> None:
    info = write(tmp_path, "crlf.txt", b"one\r\ntwo\r\n\r\nthree\rfour\n")
    doc = read_document(info)
    assert doc.text == "one\ntwo\n\nthree\nfour\n"
    assert "\r" not in doc.text


def test_read_document_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        read_document(FileInfo(tmp_path / "gone.txt", 1, 0))


def test_content_hash_is_stable_and_follows_bytes(tmp_path: Path) -> None:
    one = read_document(write(tmp_path, "one.txt", b"same content\n"))
    two = read_document(write(tmp_path, "two.md", b"same content\n"))
    again = read_document(write(tmp_path, "one.txt", b"same content\n"))
    assert one.content_hash == two.content_hash == again.content_hash
    assert len(one.content_hash) == 32
    int(one.content_hash, 16)  # hexadecimal
    changed = read_document(write(tmp_path, "one.txt", b"same content!\n"))
    assert changed.content_hash != one.content_hash
    # The hash is over the bytes, so a CRLF file differs from its LF twin with equal text.
    crlf = read_document(write(tmp_path, "crlf.txt", b"same content\r\n"))
    assert crlf.text == one.text
    assert crlf.content_hash != one.content_hash


# --- HTML -----------------------------------------------------------------------------------


PAGE = """<!DOCTYPE html>
<html>
<head>
  <title>My   Page</title>
  <meta charset="utf-8">
  <style>p { color: red; } .secret-style {}</style>
  <script>var headScript = 1;</script>
</head>
<body>
  <script>var bodyScript = "hidden";</script>
  <noscript>enable javascript</noscript>
  <h1>Intro</h1>
  <p>Tom &amp; Jerry &lt;run&gt; &copy; 2024</p>
  <h2>Details</h2>
  <p><b>foo</b> bar and <i>baz</i> qux</p>
  <ul><li>one</li><li>two</li></ul>
</body>
</html>
"""


def test_html_to_text_drops_hidden_content() -> None:
    text = html_to_text(PAGE)
    for hidden in ("color", "secret-style", "headScript", "bodyScript", "enable javascript"):
        assert hidden not in text
    assert "charset" not in text


def test_html_to_text_headings_and_entities() -> None:
    text = html_to_text(PAGE)
    lines = text.split("\n")
    assert lines[0] == "# My Page"
    assert "# Intro" in lines
    assert "## Details" in lines
    assert "Tom & Jerry <run> © 2024" in lines
    assert "foo bar and baz qux" in lines
    assert "- one" in lines
    assert "- two" in lines
    assert text == (
        "# My Page\n\n# Intro\n\nTom & Jerry <run> © 2024\n\n## Details\n\n"
        "foo bar and baz qux\n\n- one\n\n- two\n"
    )


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<b>foo</b> bar", "foo bar\n"),
        ("<p>Hello <em>big</em> world</p>", "Hello big world\n"),
        ("<span>a</span> <span>b</span>", "a b\n"),
        ("<td>cell1</td><td>cell2</td>", "cell1\n\ncell2\n"),
        ("<p>one</p><p>two</p>", "one\n\ntwo\n"),
        ("line<br>break", "line\nbreak\n"),
        ("A&nbsp;&amp;&nbsp;B", "A & B\n"),
    ],
)
def test_html_inline_and_block_spacing(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_html_all_heading_levels() -> None:
    html = "".join(f"<h{n}>Level {n}</h{n}><p>body {n}</p>" for n in range(1, 7))
    lines = html_to_text(html).split("\n")
    for n in range(1, 7):
        assert "#" * n + f" Level {n}" in lines


def test_read_document_html_file(tmp_path: Path) -> None:
    info = write(tmp_path, "page.html", PAGE.replace("\n", "\r\n").encode())
    doc = read_document(info)
    assert doc.format == "html"
    assert doc.text.startswith("# My Page\n\n")
    assert "## Details" in doc.text
    assert "bodyScript" not in doc.text
    assert "\r" not in doc.text


def test_html_pre_keeps_indentation() -> None:
    text = html_to_text("<p>Code:</p><pre>def f():\n    return 1\n</pre>")
    assert "    return 1" in text


def test_html_omitted_head_end_tag_keeps_body() -> None:
    html = "<html><head><title>T</title><body><h2>Section</h2><p>visible body</p></body></html>"
    text = html_to_text(html)
    assert "visible body" in text
    assert "## Section" in text


# --- detect_format --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("readme.md", "markdown"),
        ("README.MD", "markdown"),
        ("notes.markdown", "markdown"),
        ("page.mdx", "markdown"),
        ("index.rst", "rst"),
        ("page.html", "html"),
        ("page.htm", "html"),
        ("page.xhtml", "html"),
        ("app.py", "code"),
        ("main.go", "code"),
        ("config.yaml", "code"),
        ("notes.txt", "text"),
        ("LICENSE", "text"),
        ("archive.tar.gz", "text"),
    ],
)
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(Path(name)) == fmt


def test_read_document_format_follows_suffix(tmp_path: Path) -> None:
    for name, fmt in [("a.md", "markdown"), ("b.rst", "rst"), ("c.py", "code"), ("d.txt", "text")]:
        assert read_document(write(tmp_path, name, b"x = 1\n")).format == fmt


WESTERN = [
    "Ça va? Très bien.\n",
    "Zürich\n",
    "¿Qué?",
    "café",
    "naïve façade \u2013 \u201cquoted\u201d \u2026",
]


@pytest.mark.parametrize("text", WESTERN)
def test_short_western_text_in_cp1252_reads_right(text: str) -> None:
    assert decode(text.encode("cp1252")) == (text, "cp1252")


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Привет, как дела? Это короткий текст.", "cp1251"),
        ("Καλημέρα κόσμε, τι κάνεις;", "cp1253"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy. Černý čáp.", "cp1250"),
    ],
)
def test_other_code_pages_are_not_taken_for_western(text: str, encoding: str) -> None:
    assert decode(text.encode(encoding))[0] == text


def test_nul_bytes_after_the_sniffed_head_are_binary() -> None:
    data = ("plain text line\n" * 1000).encode() + b"\x00\x01\x02"
    with pytest.raises(NotText, match="binary"):
        decode(data)


def test_a_pdf_without_a_nul_byte_is_not_read_as_text(tmp_path: Path) -> None:
    """A PDF whose streams are ASCII85 or hex holds no NUL byte and no control character:
    its syntax must not reach the index as text, whatever the file's name."""
    pdf = (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b'4 0 obj\n<< /Filter /ASCII85Decode /Length 20 >>\nstream\n87cURD]i,"Ebo80~>\n'
        b"endstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    assert b"\x00" not in pdf
    # By its first bytes a PDF, whatever its name says: read as one (this one is broken).
    for name in ("report.txt", "report.pdf", "report"):
        with pytest.raises(Unreadable, match="not a readable PDF"):
            read_document(write(tmp_path, name, pdf))
    # Text about PDFs is text.
    about = b"# Headers\n\nA PDF begins with %PDF-1.7 and ends with %%EOF.\n"
    assert "%PDF-1.7" in read_document(write(tmp_path, "about.md", about)).text


def test_a_large_pdf_read_in_segments_is_not_text(tmp_path: Path) -> None:
    from ragidx.read import LARGE_FILE, SegmentReader

    body = b"%PDF-1.7\n" + b"4 0 obj << /Filter /ASCIIHexDecode >> stream\n" + b"0A" * LARGE_FILE
    info = write(tmp_path, "big.txt", body)
    with pytest.raises(NotText, match="a PDF document, not text"):
        list(SegmentReader(Path(info.path)))
    # A run reads it whole as what its first bytes say, a PDF (this one broken), whatever
    # its name and size.
    config = IndexConfig(db_path=tmp_path / "idx.db", workers=0)
    summary = ragidx.index([Path(info.path)], HashEmbedder(), config)
    assert summary.counts[FileStatus.FAILED] == 1
    store = SqliteStore.open_for_reading(tmp_path / "idx.db")
    try:
        ((path, reason),) = store.failed_files()
    finally:
        store.close()
    assert path == str(info.path)
    assert reason is not None and reason.startswith("malformed: not a readable PDF")
