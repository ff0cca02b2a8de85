"""Smaller things a user meets: `--version`, sizes in binary units, `--json` in walk order,
which files are reported, and `export --vectors` numbers."""

from __future__ import annotations

import io
import itertools
import json
import re
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from helpers import Cli, db_rows, write

from ragidx.events import FileDiscovered, FileDone, RunFinished
from ragidx.models import FileStatus, RunSummary
from ragidx.query.export import vector_texts
from ragidx.report import JsonLinesReporter
from ragidx.sizes import format_size


def test_version_goes_to_stdout(cli: Cli, work: Path) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"ragidx {version('ragidx')}\n"
    assert result.stderr == ""
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (10 * 1024**2, "10.0 MiB"),
        (268_845_056, "256.4 MiB"),
        (3 * 1024**3 // 2, "1.5 GiB"),
    ],
)
def test_sizes_are_binary_units(size: int, shown: str) -> None:
    assert format_size(size) == shown


def test_stats_and_size_cap_show_binary_units(cli: Cli, work: Path) -> None:
    write(work, {"docs/a.md": "# A\n\nalpha\n", "docs/big.txt": "word " * 600})
    result = cli("index", "docs", "--db", "idx.db", "--json", "--max-file-size", "2KiB")
    assert result.files()["docs/big.txt"]["reason"] == (
        "larger than the size limit (2.9 KiB > 2.0 KiB)"
    )
    stats = cli("stats", "--db", "idx.db")
    (line,) = [x for x in stats.stdout.splitlines() if x.strip().startswith("database")]
    db_bytes = json.loads(cli("stats", "--db", "idx.db", "--json").stdout)["db_bytes"]
    assert line.split(maxsplit=1)[1].strip() == format_size(db_bytes)
    assert re.search(r"\d\.\d KiB$", line.strip())


# Files in several directories, skipped ones among them (binary, empty, too large), so that
# readers finishing out of turn would show.
def _tree(work: Path) -> list[str]:
    files: dict[str, str | bytes] = {}
    for d in ("b", "a", "a/z", "c"):
        for n in range(6):
            files[f"docs/{d}/f{n}.md"] = f"# {d} {n}\n\n" + f"words of file {n} in {d}. " * (n * 40)
        files[f"docs/{d}/bin.dat"] = b"\x00\x01binary" * 10
        files[f"docs/{d}/big.txt"] = "x" * 5000
    files["docs/top.md"] = "# top\n\ntext\n"
    write(work, files)
    # The walk: a directory's files by name, then its subdirectories, depth first.
    order = []
    for d in ("", "a", "a/z", "b", "c"):
        folder = work / "docs" / d
        order += sorted(
            f"docs/{d}/{p.name}".replace("//", "/") for p in folder.iterdir() if p.is_file()
        )
    return order


def _lines(cli: Cli, *args: str) -> list[tuple[str, str, int]]:
    result = cli("index", "docs", "--db", "idx.db", "--json", "--readers", "4", *args)
    assert result.exit_code == 0, result.stderr
    return [(r["path"], r["status"], r["chunks"]) for r in result.json_lines()[:-1]]


def test_json_lines_come_in_walk_order(cli: Cli, work: Path) -> None:
    order = _tree(work)
    first = _lines(cli, "--max-file-size", "4KiB")
    assert [p for p, _, _ in first] == order
    assert {s for _, s, _ in first} == {"indexed", "skipped"}
    Path("idx.db").unlink()
    assert _lines(cli, "--max-file-size", "4KiB") == first  # a second fresh run: the same
    (work / "docs/a/f3.md").write_text("# changed\n\nnew text\n")
    (work / "docs/b/f1.md").unlink()
    again = _lines(cli, "--max-file-size", "4KiB")
    assert [p for p, s, _ in again if s != "removed"] == [p for p in order if p != "docs/b/f1.md"]
    assert ("docs/b/f1.md", "removed", 0) in again
    assert ("docs/a/f3.md", "indexed", 1) in again and ("docs/b/f0.md", "unchanged", 1) in again


def test_hidden_files_are_left_out_unreported_unless_asked(cli: Cli, work: Path) -> None:
    # tldr's page for the `.` command is `..md`: a hidden file, like `.env`.
    write(work, {"pages/..md": "# .\n\nsource a file\n", "pages/ls.md": "# ls\n\nlist\n"})
    default = cli("index", "pages", "--db", "idx.db", "--json")
    assert list(default.files()) == ["pages/ls.md"]
    assert default.summary()["files"] == 1
    hidden = cli("index", "pages", "--db", "idx.db", "--json", "--hidden")
    assert hidden.files()["pages/..md"]["status"] == "indexed"


def test_exported_vectors_are_the_stored_ones_to_seven_decimals(cli: Cli, work: Path) -> None:
    write(
        work,
        {f"docs/f{n}.md": f"# File {n}\n\n" + "some words here. " * 30 * n for n in range(1, 30)},
    )
    assert cli("index", "docs", "--db", "idx.db", "-q", "--chunk-tokens", "64").exit_code == 0
    rows = cli("export", "--db", "idx.db", "--vectors").json_lines()
    stored = dict(
        db_rows(
            Path("idx.db"),
            "SELECT f.path || ':' || c.ordinal, v.vector FROM chunks c"
            " JOIN files f ON f.id = c.file_id JOIN vectors v ON v.chunk_id = c.id",
        )
    )
    assert len(rows) == len(stored) > 256  # more than one group of rows formatted together
    for row in rows:
        blob = stored[f"{work / row['path']}:{row['ordinal']}"]
        assert row["vector"] == [round(float(x), 7) for x in np.frombuffer(blob, "<f4")]


def test_vector_numbers_match_round_and_stay_json() -> None:
    rng = np.random.default_rng(3)
    unit = (rng.standard_normal((40, 64)) * 0.1).astype(np.float32)
    unit[0, :6] = [0.0, -0.0, 1e-9, -3e-8, 0.5, 1.0]
    large = unit.copy()
    large[1, :4] = [123456.78, -99.5, 12.25, 2.5e-7]  # beyond one whole digit: another path
    for matrix in (unit, large, unit[:1, :1]):
        texts = vector_texts(matrix)
        for row, text in zip(matrix, texts, strict=True):
            expected = [round(float(x), 7) for x in row]
            got = json.loads(f"[{text}]")
            assert got == expected
            assert [str(x).startswith("-") for x in got] == [
                str(x).startswith("-") for x in expected
            ]
    assert vector_texts(np.zeros((2, 0), np.float32)) == ["", ""]


def test_json_reporter_holds_a_line_until_the_files_found_before_it_are_out(work: Path) -> None:
    out = io.StringIO()
    ticks = itertools.count()
    reporter = JsonLinesReporter(out, clock=lambda: float(next(ticks)))  # lines out at once
    a, b, c, d = (str(work / n) for n in ("a.md", "b.md", "c.md", "d.md"))
    reporter(FileDiscovered(a))
    reporter(FileDiscovered(b))
    reporter(FileDone(c, FileStatus.SKIPPED, reason="empty file", announced=False))
    reporter(FileDiscovered(d))
    reporter(FileDone(d, FileStatus.INDEXED, 1))
    reporter(FileDone(b, FileStatus.INDEXED, 2))
    assert out.getvalue() == ""  # a.md is still in the works
    reporter(FileDone(a, FileStatus.INDEXED, 3))
    reporter(RunFinished(RunSummary()))
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x.get("path") for x in lines] == ["a.md", "b.md", "c.md", "d.md", None]


def test_json_reporter_leaves_out_files_a_stopped_run_never_finished(work: Path) -> None:
    out = io.StringIO()
    reporter = JsonLinesReporter(out, clock=lambda: 0.0)
    reporter(FileDiscovered(str(work / "a.md")))
    reporter(FileDiscovered(str(work / "b.md")))
    reporter(FileDone(str(work / "b.md"), FileStatus.INDEXED, 2))
    reporter.close()
    assert [json.loads(x)["path"] for x in out.getvalue().splitlines()] == ["b.md"]
