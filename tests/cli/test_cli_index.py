"""`ragidx index` end to end through the CLI, on real trees in temporary directories."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import Cli, db_rows, write

from ragidx.config import WalkConfig
from ragidx.models import FileInfo
from ragidx.walk.walker import walk

LATIN1 = {"cp1252", "latin_1", "iso8859_1", "iso-8859-1", "windows-1252"}
IGNORED = [
    "sample_docs/build/generated.md",
    "sample_docs/debug.log",
    "sample_docs/docs/drafts/unreleased.md",
    "sample_docs/vendor/thirdparty.md",
    "sample_docs/node_modules/left-pad/README.md",
]


def test_sample_docs_every_file_reported_once(cli: Cli, sample: Path) -> None:
    result = cli("index", "sample_docs", "--db", "idx.db", "--json")
    assert result.exit_code == 0, result.stderr
    records = result.json_lines()
    files = result.files()
    assert len(files) == len([r for r in records if r["event"] == "file"])  # no path twice
    assert records[-1]["event"] == "summary"

    assert files["sample_docs/assets/logo.png"]["status"] == "skipped"
    assert "binary" in files["sample_docs/assets/logo.png"]["reason"]
    assert files["sample_docs/notes/empty.md"] == {
        "event": "file",
        "path": "sample_docs/notes/empty.md",
        "status": "skipped",
        "chunks": 0,
        "tokens": 0,
        "reason": "empty file",
    }
    for path in IGNORED:
        assert path not in files
    latin = files["sample_docs/legacy/notes_latin1.txt"]
    assert latin["status"] == "indexed" and latin["encoding"] in LATIN1
    assert files["sample_docs/i18n/guide_ja.md"]["encoding"] == "utf-8"
    indexed = [f for f in files.values() if f["status"] == "indexed"]
    assert len(indexed) >= 20 and all(f["chunks"] > 0 for f in indexed)

    summary = result.summary()
    assert summary["indexed"] == len(indexed)
    assert summary["skipped"] == 2 and summary["failed"] == 0
    assert summary["chunks"] == sum(f["chunks"] for f in indexed)
    assert summary["tokens"] == sum(f["tokens"] for f in indexed)
    assert "offline hash embedder" in result.stderr

    stored = db_rows(Path("idx.db"), "SELECT count(*) FROM chunks")[0][0]
    assert stored == summary["chunks"]
    assert db_rows(Path("idx.db"), "SELECT count(*) FROM vectors")[0][0] == stored


def test_latin1_text_is_stored_decoded(cli: Cli, sample: Path) -> None:
    assert cli("index", "sample_docs", "--db", "idx.db").exit_code == 0
    original = (sample / "legacy" / "notes_latin1.txt").read_bytes().decode("latin-1")
    (text,) = db_rows(
        Path("idx.db"),
        "SELECT group_concat(c.text, ' ') FROM chunks c JOIN files f ON f.id = c.file_id"
        " WHERE f.path LIKE '%notes_latin1.txt'",
    )[0]
    assert "ü" in text and "ñ" in text and "Ã" not in text  # no mojibake
    assert set(text.split()) <= set(original.split())


def test_rerun_is_unchanged_and_sends_nothing(cli: Cli, sample: Path) -> None:
    first = cli("index", "sample_docs", "--db", "idx.db", "--json")
    second = cli("index", "sample_docs", "--db", "idx.db", "--json")
    assert second.exit_code == 0
    summary = second.summary()
    assert summary["unchanged"] == first.summary()["indexed"]
    assert summary["indexed"] == 0 and summary["requests"] == 0 and summary["chunks"] == 0
    assert summary["skipped"] == 2
    # Unchanged files travel in bunches, yet each has its line, in the walk's order, with
    # the chunks and reason the index holds for it.
    walked = [i.path for i in walk(["sample_docs"], WalkConfig()) if isinstance(i, FileInfo)]
    assert list(second.files()) == [os.path.relpath(p) for p in walked]
    for path, line in second.files().items():
        before = first.files()[path]
        assert (line["chunks"], line["reason"]) == (before["chunks"], before["reason"])
        assert line["status"] == ("unchanged" if before["status"] == "indexed" else "skipped")


def test_edit_delete_rename_are_applied_atomically(cli: Cli, work: Path) -> None:
    write(
        work,
        {
            "docs/a.md": "# Alpha\n\nThe aardvark eats ants.\n",
            "docs/b.md": "# Beta\n\nBeetles in the basement.\n",
            "docs/c.md": "# Gamma\n\nGamma rays from the galaxy.\n",
            "docs/sub/d.md": "# Delta\n\nThe river delta floods.\n",
        },
    )
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    time.sleep(0.01)
    write(work, {"docs/a.md": "# Alpha\n\nThe armadillo digs burrows.\n"})
    (work / "docs/b.md").unlink()
    (work / "docs/c.md").rename(work / "docs/c2.md")
    (work / "docs/sub/d.md").unlink()
    (work / "docs/sub").rmdir()

    result = cli("index", "docs", "--db", "idx.db", "--json")
    assert result.exit_code == 0, result.stderr
    statuses = {p: r["status"] for p, r in result.files().items()}
    assert statuses == {
        "docs/a.md": "indexed",
        "docs/b.md": "removed",
        "docs/c.md": "removed",
        "docs/c2.md": "indexed",
        "docs/sub/d.md": "removed",
    }
    assert result.files()["docs/b.md"]["reason"] == "deleted"
    paths = [r[0] for r in db_rows(Path("idx.db"), "SELECT path FROM files ORDER BY path")]
    assert [Path(p).name for p in paths] == ["a.md", "c2.md"]
    texts = [r[0] for r in db_rows(Path("idx.db"), "SELECT text FROM chunks")]
    assert any("armadillo" in t for t in texts)
    assert not any("aardvark" in t or "Beetles" in t or "delta" in t for t in texts)
    dupes = db_rows(
        Path("idx.db"),
        "SELECT file_id, ordinal FROM chunks GROUP BY file_id, ordinal HAVING count(*) > 1",
    )
    assert dupes == []
    fts = db_rows(
        Path("idx.db"), "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'aardvark'"
    )
    assert fts == [(0,)]


def test_touched_but_identical_file_is_unchanged(cli: Cli, work: Path) -> None:
    write(work, {"docs/a.md": "# Alpha\n\nSame words as before.\n"})
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    later = time.time() + 100
    os.utime(work / "docs/a.md", (later, later))
    result = cli("index", "docs", "--db", "idx.db", "--json")
    assert result.files()["docs/a.md"]["status"] == "unchanged"
    (mtime,) = db_rows(Path("idx.db"), "SELECT mtime_ns FROM files")[0]
    assert mtime == (work / "docs/a.md").stat().st_mtime_ns  # so the next run does not read it


def test_new_ignore_rule_removes_files(cli: Cli, work: Path) -> None:
    write(work, {"docs/keep.md": "kept text\n", "docs/secret.md": "hidden text\n"})
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    write(work, {"docs/.ragidxignore": "secret.md\n"})
    result = cli("index", "docs", "--db", "idx.db", "--json")
    assert result.files()["docs/secret.md"]["status"] == "removed"
    assert result.files()["docs/secret.md"]["reason"] == "excluded by ignore rules or filters"


def test_failed_file_exit_1_keeps_the_others(cli: Cli, work: Path, poison_provider: None) -> None:
    write(work, {"docs/good.md": "fine words\n", "docs/bad.md": "POISON pill\n"})
    args = ("index", "docs", "--db", "idx.db", "--provider", "poison", "--batch-size", "1")
    result = cli(*args, "--json")
    assert result.exit_code == 1
    files = result.files()
    assert files["docs/good.md"]["status"] == "indexed"
    assert files["docs/bad.md"]["status"] == "failed"
    assert "rejected" in files["docs/bad.md"]["reason"]
    assert "failed docs/bad.md: rejected_input: the server" in " ".join(result.stderr.split())

    stats = cli("stats", "--db", "idx.db", "--json", "--failed")
    failed = json.loads(stats.stdout)["failed_files"]
    assert [f["path"] for f in failed] == ["docs/bad.md"]

    write(work, {"docs/bad.md": "antidote\n"})
    again = cli(*args, "--json")
    assert again.exit_code == 0
    assert again.files()["docs/bad.md"]["status"] == "indexed"
    assert again.files()["docs/good.md"]["status"] == "unchanged"


def test_failed_reindex_keeps_the_old_version(cli: Cli, work: Path, poison_provider: None) -> None:
    write(work, {"docs/a.md": "original armadillo\n"})
    args = ("index", "docs", "--db", "idx.db", "--provider", "poison")
    assert cli(*args).exit_code == 0
    write(work, {"docs/a.md": "POISON replacement\n"})
    assert cli(*args).exit_code == 1
    rows = db_rows(
        Path("idx.db"), "SELECT f.status, c.text FROM files f JOIN chunks c ON c.file_id = f.id"
    )
    assert rows == [("failed", "original armadillo")]
    # The failure is retried on the next run even though size and mtime are unchanged.
    write(work, {"docs/a.md": "POISON replacement\n"})
    PoisonFree = {"docs/a.md": "new anteater\n"}
    write(work, PoisonFree)
    assert cli(*args).exit_code == 0
    assert db_rows(Path("idx.db"), "SELECT text FROM chunks") == [("new anteater",)]


def test_stdin_paths_newline_and_nul(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "apple\n", "b b.md": "banana\n", "c.md": "cherry\n"})
    result = cli("index", "-", "--db", "idx.db", "--json", input="a.md\nb b.md\n")
    assert result.exit_code == 0
    assert set(result.files()) == {"a.md", "b b.md"}
    result = cli("index", "--null", "-", "--db", "idx.db", "--json", input="c.md\0b b.md\0")
    assert {p: r["status"] for p, r in result.files().items()} == {
        "c.md": "indexed",
        "b b.md": "unchanged",
    }


def test_stdin_from_find_names_each_file_once(cli: Cli, work: Path) -> None:
    # `find docs | ragidx index -` names the directories and the files inside them.
    write(work, {"docs/a.md": "apple\n", "docs/sub/b.md": "banana\n", "c.md": "cherry\n"})
    listing = "docs\ndocs/a.md\ndocs/sub\ndocs/sub/b.md\nc.md\n"
    first = cli("index", "-", "--db", "idx.db", "--json", input=listing)
    again = cli("index", "-", "--db", "idx.db", "--json", input=listing)
    assert [r["path"] for r in first.json_lines() if r["event"] == "file"].count("docs/a.md") == 1
    assert set(first.files()) == {"docs/a.md", "docs/sub/b.md", "c.md"}
    assert first.summary()["files"] == 3 and first.summary()["indexed"] == 3
    assert again.summary()["files"] == 3 and again.summary()["unchanged"] == 3


def test_stdin_missing_path_fails_exit_1(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "apple\n"})
    result = cli("index", "-", "--db", "idx.db", "--json", input="a.md\nnope.md\n")
    assert result.exit_code == 1
    assert result.files()["nope.md"] == {
        "event": "file",
        "path": "nope.md",
        "status": "failed",
        "chunks": 0,
        "tokens": 0,
        "reason": "no such file or directory",
    }


def test_missing_path_on_command_line_is_a_usage_error(cli: Cli, work: Path) -> None:
    result = cli("index", "nowhere", "--db", "idx.db")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error:" in result.stderr and "nowhere" in result.stderr


def test_deleted_root_removes_its_files(cli: Cli, work: Path) -> None:
    write(work, {"gone/a.md": "apple\n", "gone/deep/b.md": "banana\n"})
    assert cli("index", "gone", "--db", "idx.db").exit_code == 0
    (work / "gone/a.md").unlink()
    (work / "gone/deep/b.md").unlink()
    (work / "gone/deep").rmdir()
    (work / "gone").rmdir()
    result = cli("index", "gone", "--db", "idx.db", "--json")
    assert result.exit_code == 0
    assert {p: r["status"] for p, r in result.files().items()} == {
        "gone/a.md": "removed",
        "gone/deep/b.md": "removed",
    }


def test_vanished_directories_go_but_trees_that_share_the_roots_prefix_stay(
    cli: Cli, work: Path
) -> None:
    tree = {"docs/a.md": "a\n", "docs/sub/b.md": "b\n", "docs/sub/deep/c.md": "c\n"}
    tree |= {"docs/z/d.md": "d\n", "docs-old/e.md": "e\n", "docs0/f.md": "f\n"}
    write(work, tree)
    for root in ("docs", "docs-old", "docs0"):
        assert cli("index", root, "--db", "idx.db").exit_code == 0
    for path in ("docs/sub/deep/c.md", "docs/sub/b.md", "docs/z/d.md"):
        (work / path).unlink()
    for folder in ("docs/sub/deep", "docs/sub", "docs/z"):
        (work / folder).rmdir()
    result = cli("index", "docs", "--db", "idx.db", "--json")
    assert result.exit_code == 0, result.stderr
    assert {p: r["status"] for p, r in result.files().items()} == {
        "docs/a.md": "unchanged",
        "docs/sub/b.md": "removed",
        "docs/sub/deep/c.md": "removed",
        "docs/z/d.md": "removed",
    }
    stored = {
        Path(p).relative_to(work).as_posix()
        for (p,) in db_rows(work / "idx.db", "SELECT path FROM files")
    }
    assert stored == {"docs/a.md", "docs-old/e.md", "docs0/f.md"}


def test_max_file_size_skips_with_reason(cli: Cli, work: Path) -> None:
    write(work, {"big.txt": "word " * 400, "small.txt": "tiny\n"})
    result = cli("index", ".", "--db", "idx.db", "--json", "--max-file-size", "1KB")
    assert result.exit_code == 0
    big = result.files()["big.txt"]
    assert big["status"] == "skipped" and big["reason"].startswith("larger than the size limit (")
    assert result.files()["small.txt"]["status"] == "indexed"
    # Raising the cap indexes the file, although its size and mtime did not change.
    again = cli("index", ".", "--db", "idx.db", "--json")
    assert again.files()["big.txt"]["status"] == "indexed"


def test_manifest_mismatch_is_refused_until_reset(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "apple pie\n"})
    assert cli("index", "a.md", "--db", "idx.db").exit_code == 0
    refused = cli("index", "a.md", "--db", "idx.db", "--dimensions", "512")
    assert refused.exit_code == 2
    assert "idx.db" in refused.stderr and "dims" in refused.stderr
    assert "hint:" in refused.stderr and "--reset" in refused.stderr
    assert db_rows(Path("idx.db"), "SELECT count(*) FROM chunks") == [(1,)]  # nothing lost

    reset = cli("index", "a.md", "--db", "idx.db", "--dimensions", "512", "--reset", "--json")
    assert reset.exit_code == 0 and reset.summary()["indexed"] == 1
    (blob,) = db_rows(Path("idx.db"), "SELECT vector FROM vectors")[0]
    assert len(blob) == 512 * 4


def test_changed_chunk_settings_rechunk_every_file(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "# A\n\n" + "lorem ipsum dolor sit amet. " * 200})
    first = cli("index", "a.md", "--db", "idx.db", "--json")
    second = cli("index", "a.md", "--db", "idx.db", "--json", "--chunk-tokens", "128")
    assert second.files()["a.md"]["status"] == "indexed"
    assert second.files()["a.md"]["chunks"] > first.files()["a.md"]["chunks"]
    (tokens,) = db_rows(Path("idx.db"), "SELECT max(tokens) FROM chunks")[0]
    assert tokens <= 128


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--max-file-size", "lots"], "--max-file-size"),
        (["--chunk-overlap", "300"], "--chunk-overlap"),
        (["--chunk-tokens", "4"], "--chunk-tokens"),
        (["--provider", "nonesuch"], "nonesuch"),
        (["--null"], "--null"),
    ],
)
def test_bad_options_exit_2(cli: Cli, work: Path, args: list[str], needle: str) -> None:
    write(work, {"a.md": "apple\n"})
    result = cli("index", "a.md", "--db", "idx.db", *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert not (work / "idx.db").exists() or db_rows(Path("idx.db"), "SELECT 1 FROM files") == []


def test_unreadable_database_exit_2(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "apple\n", "idx.db": b"this is not a database" * 100})
    result = cli("index", "a.md", "--db", "idx.db")
    assert result.exit_code == 2
    assert "error: the index idx.db is damaged (file is not a database)" in result.stderr
    assert "hint: is idx.db the index? If it is, `ragidx doctor --db idx.db --salvage`" in (
        result.stderr
    )


def test_json_stdout_stays_clean_with_progress_forced(cli: Cli, sample: Path) -> None:
    result = cli("index", "sample_docs", "--db", "idx.db", "--json", "--progress", "--verbose")
    assert result.exit_code == 0
    for line in result.stdout.splitlines():
        assert json.loads(line)["event"] in {"file", "summary"}
    assert "indexed" in result.stderr


def test_quiet_prints_nothing(cli: Cli, sample: Path) -> None:
    result = cli("index", "sample_docs", "--db", "idx.db", "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "" and result.stderr == ""


def test_db_from_environment(cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(work, {"a.md": "apple\n"})
    monkeypatch.setenv("RAGIDX_DB", str(work / "env.db"))
    assert cli("index", "a.md").exit_code == 0
    assert (work / "env.db").exists() and not (work / ".ragidx").exists()
    monkeypatch.delenv("RAGIDX_DB")
    assert cli("index", "a.md", "--quiet").exit_code == 0
    assert (work / ".ragidx" / "index.db").exists()


def test_retry_failed_touches_only_failed_files(
    cli: Cli, work: Path, poison_provider: None
) -> None:
    write(
        work,
        {
            "docs/good.md": "fine\n",
            "docs/bad1.md": "POISON one\n",
            "docs/bad2.md": "POISON two\n",
            "docs/bad3.md": "POISON three\n",
        },
    )
    base = ("--db", "idx.db", "--provider", "poison", "--batch-size", "1", "--json")
    assert cli("index", "docs", *base).exit_code == 1
    write(work, {"docs/bad1.md": "cured\n", "docs/new.md": "not yet seen\n"})
    (work / "docs/bad3.md").unlink()

    result = cli("index", "--retry-failed", *base)
    assert result.exit_code == 1
    assert {p: r["status"] for p, r in result.files().items()} == {
        "docs/bad1.md": "indexed",
        "docs/bad2.md": "failed",
        "docs/bad3.md": "removed",
    }
    limited = cli("index", "--retry-failed", "docs/bad1.md", *base)
    assert limited.exit_code == 0 and limited.files() == {}


def test_index_without_paths_is_a_usage_error(cli: Cli, work: Path) -> None:
    result = cli("index", "--db", "idx.db")
    assert result.exit_code == 2
    assert "error: give at least one PATH" in result.stderr


@pytest.mark.parametrize("no_color", [False, True])
def test_no_color_is_honoured(
    cli: Cli, work: Path, poison_provider: None, monkeypatch: pytest.MonkeyPatch, no_color: bool
) -> None:
    write(work, {"bad.md": "POISON\n"})
    monkeypatch.setenv("FORCE_COLOR", "1")  # as if stderr were a colour terminal
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    result = cli("index", "bad.md", "--db", "idx.db", "--provider", "poison", "--no-progress")
    assert result.exit_code == 1
    params = [p for sgr in re.findall(r"\x1b\[([0-9;]*)m", result.stderr) for p in sgr.split(";")]
    colours = [p for p in params if p.isdigit() and (30 <= int(p) <= 38 or 90 <= int(p) <= 97)]
    assert "failed bad.md" in re.sub(r"\x1b\[[0-9;]*m", "", result.stderr)
    assert (colours == []) is no_color  # bold may stay: NO_COLOR is about colour


def test_non_utf8_file_name_fails_alone(cli: Cli, work: Path) -> None:
    write(work, {"docs/ok.md": "fine\n"})
    (work / os.fsdecode(b"docs/bad\xff name.md")).write_text("odd name\n", encoding="utf-8")
    result = cli("index", "docs", "--db", "idx.db", "--json")
    assert result.exit_code == 1
    files = result.files()
    assert files["docs/ok.md"]["status"] == "indexed"
    bad = files["docs/bad\\xff name.md"]
    assert bad["status"] == "failed" and "not valid UTF-8" in bad["reason"]
    assert db_rows(Path("idx.db"), "SELECT count(*) FROM files") == [(1,)]


def test_reset_with_a_mistyped_path_changes_nothing(cli: Cli, work: Path) -> None:
    write(work, {"docs/a.md": "apple\n"})
    assert cli("index", "docs", "--db", "idx.db").exit_code == 0
    result = cli("index", "dcos", "--db", "idx.db", "--reset")
    assert result.exit_code == 2
    assert db_rows(Path("idx.db"), "SELECT count(*) FROM chunks") == [(1,)]
    assert db_rows(Path("idx.db"), "SELECT value FROM manifest WHERE key = 'provider'") == [
        ("hash",)
    ]


def test_the_database_is_never_indexed(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "apple\n"})
    result = cli("index", ".", "--hidden", "--json", "--db", "idx.db")
    second = cli("index", ".", "--hidden", "--json")  # the default .ragidx/index.db
    assert result.exit_code == 0 and second.exit_code == 0
    assert set(result.files()) == {"a.md"}
    # The other database (its lock and its vector file) are files like any.
    assert set(second.files()) == {"a.md", "idx.db", "idx.db.lock", "idx.db-vectors"}


def test_each_file_is_reported_once(cli: Cli, work: Path) -> None:
    write(work, {"t/one.md": "one\n", "t/two.md": "two\n"})
    result = cli("index", "t", "t/one.md", "t/one.md", "./t", "--db", "idx.db", "--json")
    assert result.exit_code == 0
    paths = [r["path"] for r in result.json_lines() if r["event"] == "file"]
    assert sorted(paths) == ["t/one.md", "t/two.md"]
    assert result.summary()["files"] == 2


def test_globs_of_named_paths_match_from_the_working_directory(cli: Cli, work: Path) -> None:
    write(work, {"repo/logs/keep.log": "log line\n", "repo/docs/a.md": "doc\n"})
    result = cli(
        "index", "repo/logs/keep.log", "repo/docs/a.md", "--exclude", "repo/logs/*.log",
        "--db", "idx.db", "--json",
    )  # fmt: skip
    assert set(result.files()) == {"repo/docs/a.md"}


def test_quiet_still_names_failed_files(cli: Cli, work: Path) -> None:
    result = cli("index", "-", "--db", "idx.db", "--quiet", input="nope.md\n")
    assert result.exit_code == 1
    assert result.stderr.split() == ["failed", "nope.md:", "no", "such", "file", "or", "directory"]
    stats = cli("stats", "--db", "idx.db", "--failed", "--json")
    assert json.loads(stats.stdout)["failed_files"] == [
        {"path": "nope.md", "reason": "no such file or directory"}
    ]


def test_index_from_a_newer_ragidx_is_refused(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "apple\n"})
    assert cli("index", "a.md", "--db", "idx.db").exit_code == 0
    conn = sqlite3.connect("idx.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    for args in (["index", "a.md"], ["stats"], ["search", "apple"], ["export"]):
        result = cli(*args, "--db", "idx.db")
        assert result.exit_code == 2
        assert "schema version 99, newer than this ragidx knows" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_quiet_noop_rerun_imports_no_embedding_rendering_or_parsing_library(
    work: Path, sample: Path
) -> None:
    # A re-run over an unchanged tree should cost the walk and little else: these modules
    # take longer to import than a small tree takes to check. (A quiet run prints nothing.)
    args = ["index", "sample_docs", "--db", "idx.db", "--quiet"]
    assert subprocess.run([sys.executable, "-m", "ragidx", *args], cwd=work).returncode == 0
    probe = (
        "import atexit, sys, runpy\n"
        "atexit.register(lambda: print(sorted({m.split('.')[0] for m in sys.modules} &"
        " {'numpy', 'httpx', 'tenacity', 'rich', 'html', 'tomllib'}), file=sys.stderr))\n"
        "sys.argv = ['ragidx', *sys.argv[1:]]\n"
        "runpy.run_module('ragidx', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=work, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_an_ignore_file_with_a_pattern_git_cannot_read_skips_that_line(
    cli: Cli, work: Path
) -> None:
    write(work, {"docs/.gitignore": "\\\n*.log\n", "docs/a.md": "apple\n", "docs/b.log": "x\n"})
    result = cli("index", "docs", "--db", "idx.db", "--json")
    assert result.exit_code == 0, result.stderr
    assert set(result.files()) == {"docs/a.md"}
