"""Where the index goes: only the default `.ragidx/` is created; a directory given (a path
ending in a slash, or one that exists) holds `index.db`; a typo makes no directories."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Cli, write


def test_a_missing_directory_in_db_is_refused_not_made(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "alpha\n"})
    result = cli("index", "a.md", "--db", "nope/deeper/x.db")
    assert result.exit_code == 2
    assert "error: --db nope/deeper/x.db: no directory nope/deeper to hold the index" in (
        result.stderr
    )
    assert "hint: create it first" in result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["a.md"]


def test_a_trailing_slash_means_a_directory(
    cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(work, {"a.md": "alpha\n"})
    monkeypatch.setenv("RAGIDX_DB", "nodir/")
    refused = cli("index", "a.md", "-q")
    assert refused.exit_code == 2
    assert "error: RAGIDX_DB=nodir/: no directory nodir to hold the index" in refused.stderr
    assert sorted(p.name for p in work.iterdir()) == ["a.md"]  # no file named `nodir`

    (work / "nodir").mkdir()
    assert cli("index", "a.md", "-q").exit_code == 0
    assert (work / "nodir" / "index.db").is_file()
    monkeypatch.delenv("RAGIDX_DB")
    # An existing directory, with or without its slash, names the same index.
    for given in ("nodir", "nodir/"):
        stats = cli("stats", "--db", given, "--json")
        assert stats.exit_code == 0, stats.stderr
        assert '"indexed": 1' in stats.stdout


def test_a_settings_file_directory_and_the_default(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "alpha\n", "ragidx.toml": 'db = "store/"\n'})
    refused = cli("index", "a.md", "-q")
    assert refused.exit_code == 2
    assert 'error: ragidx.toml: db = "store/": no directory store' in refused.stderr
    (work / "store").mkdir()
    assert cli("index", "a.md", "-q").exit_code == 0
    assert (work / "store" / "index.db").is_file()
    (work / "ragidx.toml").unlink()
    assert cli("index", "a.md", "-q").exit_code == 0
    assert (work / ".ragidx" / "index.db").is_file()  # the default's directory is made


def test_a_failed_run_takes_back_the_index_it_made_in_a_directory_given(
    cli: Cli, work: Path
) -> None:
    (work / "idx").mkdir()
    result = cli("index", "missing.md", "--db", "idx/")
    assert result.exit_code == 2
    assert list((work / "idx").iterdir()) == []
