"""Large files are read, chunked and committed a segment at a time, so memory does not
follow them; and a file that changes while read is never stored half old, half new."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import Cli, db_rows, write

from ragidx.chunk.chunker import Chunker, chunk_text
from ragidx.config import ChunkConfig
from ragidx.models import FileInfo
from ragidx.read import text as reader
from ragidx.read.text import LARGE_FILE, Changed, SegmentReader, read_document

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()


def _markdown(size: int, seed: int = 3) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    total, n = 0, 0
    while total < size:
        n += 1
        if n % 7 == 1:
            part = f"# Part {n}\n\n"
        elif n % 7 == 3:
            part = f"## Section {n}\n\n"
        elif n % 11 == 5:
            # Fenced code with lines that look like headings, sometimes across a segment cut.
            part = "```\n" + "".join(f"# not a heading {i}\n\n" for i in range(40)) + "```\n\n"
        else:
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(20, 120)))
            part = f"Paragraph {n}: {words}.\r\n\n"
        parts.append(part)
        total += len(part)
    return "".join(parts)


def test_segments_chunk_like_the_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.md"
    path.write_bytes(_markdown(300_000).encode())
    whole = read_document(FileInfo(path, 0, 0)).text
    # Sections packed together differ where a segment cuts them; one a chunk, they do not.
    config = ChunkConfig(chunk_tokens=128, chunk_overlap=16, pack=False)
    segments = SegmentReader(path, segment_chars=5000)
    chunker = Chunker("markdown", config)
    streamed = [c for text in segments for c in chunker.feed(text)]
    assert segments.document().content_hash == read_document(FileInfo(path, 0, 0)).content_hash
    reference = chunk_text(whole, "markdown", config)
    heading_at = {c.char_start: c.heading_path for c in reference}
    starts = sorted(heading_at)
    assert [c.ordinal for c in streamed] == list(range(len(streamed)))
    for c in streamed:
        assert whole[c.char_start : c.char_end] == c.text
        assert c.line_start == whole.count("\n", 0, c.char_start) + 1
        assert c.line_end == whole.count("\n", 0, c.char_end - 1) + 1
        # The same section as the whole document's chunking puts this text in.
        covering = max(s for s in starts if s <= c.char_start)
        assert c.heading_path == heading_at[covering], c
        assert not any("not a heading" in h for h in c.heading_path)
    assert len(streamed) == pytest.approx(len(reference), rel=0.05)


def test_segment_reader_handles_encodings_and_binary(tmp_path: Path) -> None:
    text = "Ünïcödé text, 日本語 too.\r\n\n" * 20_000
    for encoding in ("utf-8", "utf-8-sig", "utf-16"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes(text.encode(encoding))
        seg = SegmentReader(path, segment_chars=7000)
        assert "".join(seg) == text.replace("\r\n", "\n")
        assert seg.document().encoding == encoding
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"text " * 1000 + b"\x00" * 10)
    with pytest.raises(reader.NotText, match="NUL"):
        list(SegmentReader(binary))


def test_a_file_that_keeps_changing_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.md"
    path.write_text("hello\n")
    real = os.fstat
    calls = {"n": 0}

    def drifting(fd: int) -> os.stat_result:
        calls["n"] += 1
        st = real(fd)
        fields = list(st)
        fields[8] += calls["n"]  # st_mtime moves on every look, as under a busy writer
        return os.stat_result([*fields[:10]], {"st_mtime_ns": st.st_mtime_ns + calls["n"]})

    monkeypatch.setattr(reader.os, "fstat", drifting)
    with pytest.raises(Changed, match="changed while being read"):
        read_document(FileInfo(path, 6, 0))
    assert calls["n"] == 6  # three attempts, a look before and after each


def test_a_file_changing_under_the_reader_is_one_version(cli: Cli, work: Path) -> None:
    """A writer rewrites the file as fast as it can while it is indexed: whatever is
    stored is one whole version of it, or the file is reported as changing."""
    versions = {i: f"# Version {i}\n\n" + f"word{i} " * 5000 + "\n" for i in range(50)}
    write(work, {"docs/busy.md": versions[0], "docs/calm.md": "# Calm\n\nquiet\n"})
    stop = threading.Event()

    def rewrite() -> None:
        i = 0
        while not stop.is_set():
            i = (i + 1) % 50
            with open(work / "docs/busy.md", "w") as f:  # truncate, then write in pieces
                text = versions[i]
                for start in range(0, len(text), 4096):
                    f.write(text[start : start + 4096])
                    f.flush()

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        results = [cli("index", "docs", "--db", "idx.db", "--json") for _ in range(5)]
    finally:
        stop.set()
        writer.join()
    for result in results:
        busy = result.files().get("docs/busy.md")
        if busy is None:
            continue  # unchanged since the last run
        assert busy["status"] in ("indexed", "failed", "skipped"), busy
        if busy["status"] == "failed":
            assert busy["reason"].startswith("changed_while_reading"), busy
    # A read between the writer's truncate and its last piece is a true (short) version:
    # what is stored is a prefix of one version, never two versions mixed.
    stored = _stored_text("busy.md")
    if stored:
        assert len(set(re.findall(r"word(\d+)", stored))) == 1, "a torn read was stored"
        version = int(stored.split("\n")[0].removeprefix("# Version "))
        assert versions[version].startswith(stored.rstrip()), "a torn read was stored"
    # Once the writer is done, the next run stores the last version whole.
    final = (work / "docs/busy.md").read_text()
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    assert _stored_text("busy.md").rstrip() == final.rstrip()


def _stored_text(name: str) -> str:
    rows = db_rows(
        Path("idx.db"),
        "SELECT c.text, c.char_start FROM chunks c JOIN files f ON f.id = c.file_id"
        " WHERE f.path LIKE ? ORDER BY c.ordinal",
        (f"%{name}",),
    )
    stored, end = "", 0
    for text, start in rows:  # chunks overlap: take each one's text past the last one's end
        stored += text[max(end - start, 0) :]
        end = start + len(text)
    return stored


def test_a_large_file_is_staged_then_committed(cli: Cli, work: Path) -> None:
    text = _markdown(LARGE_FILE + 300_000)
    write(work, {"docs/big.md": text, "docs/small.md": "# Small\n\nlittle file\n"})
    first = cli("index", "docs", "--db", "idx.db", "--json", "--max-file-size", "20MB")
    assert first.exit_code == 0, first.stderr
    big = first.files()["docs/big.md"]
    assert big["status"] == "indexed"
    whole = text.replace("\r\n", "\n")
    rows = db_rows(
        Path("idx.db"),
        "SELECT c.ordinal, c.text, c.char_start, c.char_end FROM chunks c"
        " JOIN files f ON f.id = c.file_id WHERE f.path LIKE '%big.md' ORDER BY c.ordinal",
    )
    assert len(rows) == big["chunks"] and [r[0] for r in rows] == list(range(len(rows)))
    assert all(whole[start:end] == chunk for _, chunk, start, end in rows)
    assert rows[-1][3] >= len(whole.rstrip()) - 1
    assert db_rows(Path("idx.db"), "SELECT count(*) FROM files WHERE status = 'staging'") == [(0,)]
    last_words = whole.rstrip().rsplit("Paragraph", 1)[1][:60]
    hits = cli("search", f"Paragraph{last_words}", "--db", "idx.db", "--json").json_lines()
    assert hits[0]["path"].endswith("big.md")

    os.utime(work / "docs/big.md")  # touched, not changed: hashed, not re-chunked
    touched = cli("index", "docs", "--db", "idx.db", "--json", "--max-file-size", "20MB")
    assert touched.summary()["unchanged"] == 2 and touched.summary()["embedded"] == 0

    with open(work / "docs/big.md", "a") as f:
        f.write("\n\nA new closing paragraph about zebras.\n")
    edited = cli("index", "docs", "--db", "idx.db", "--json", "--max-file-size", "20MB")
    s = edited.summary()
    assert s["indexed"] == 1 and 1 <= s["embedded"] <= 3 and s["reused"] > 1000
    hits = cli("search", "zebras", "--db", "idx.db", "--json", "--mode", "text").json_lines()
    assert hits[0]["path"].endswith("big.md")
    stats = cli("stats", "--db", "idx.db", "--json").json_lines()[0]
    assert stats["files"] == {"indexed": 2, "skipped": 0, "failed": 0}


def test_a_large_file_in_latin_1_past_its_first_megabyte(cli: Cli, work: Path) -> None:
    ascii_part = "plain ascii line number one two three\n" * (LARGE_FILE // 38 + 1000)
    (work / "docs").mkdir()
    (work / "docs/old.txt").write_bytes((ascii_part + "café crème brûlée\n").encode("latin-1"))
    result = cli("index", "docs", "--db", "idx.db", "--json", "--max-file-size", "20MB")
    record = result.files()["docs/old.txt"]
    assert record["status"] == "indexed" and record["encoding"] == "cp1252", record
    hits = cli("search", "crème brûlée", "--db", "idx.db", "--json", "--mode", "text")
    assert hits.json_lines()[0]["path"].endswith("old.txt")


@pytest.mark.slow
def test_a_large_file_killed_midway_is_cleaned_up(cli: Cli, work: Path) -> None:
    write(work, {"docs/big.md": _markdown(LARGE_FILE * 2), "docs/small.md": "Paragraph zero\n"})
    assert cli("index", "docs/small.md", "--db", "idx.db").exit_code == 0
    args = [sys.executable, "-m", "ragidx", "index", "docs", "--db", "idx.db", "--json"]
    proc = subprocess.Popen(
        [*args, "--max-file-size", "20MB", "--chunk-tokens", "64"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    staged: list[tuple[int]] = []
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if Path("idx.db").exists():
            try:
                staged = db_rows(
                    Path("idx.db"), "SELECT count(*) FROM files WHERE status='staging'"
                )
            except Exception:  # the schema may not be there yet
                continue
            if staged[0][0]:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert staged and staged[0][0] == 1, "the big file was never seen staged"
    stats = cli("stats", "--db", "idx.db", "--json").json_lines()[0]
    assert stats["chunks"] == 1 and stats["files"]["indexed"] == 1  # staged is invisible
    # "Paragraph" is in hundreds of staged chunks: full-text search still finds small.md.
    hits = cli("search", "Paragraph", "--db", "idx.db", "--json", "--mode", "text").json_lines()
    assert [h["path"] for h in hits] == ["docs/small.md"]
    again = cli("index", "docs", "--db", "idx.db", "--json", "--max-file-size", "20MB")
    assert again.exit_code == 0 and again.files()["docs/big.md"]["status"] == "indexed"
    assert db_rows(Path("idx.db"), "SELECT count(*) FROM files WHERE status='staging'") == [(0,)]
    assert db_rows(Path("idx.db"), "PRAGMA integrity_check") == [("ok",)]
