"""Settings files: ragidx.toml or [tool.ragidx], below flags and environment variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Cli, write


def chunking(cli: Cli) -> tuple[int, int]:
    stats = json.loads(cli("stats", "--db", "idx.db", "--json").stdout)
    return stats["chunk_tokens"], stats["chunk_overlap"]


def test_file_then_env_then_flag(cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        work,
        {
            "a.md": "apple\n",
            "ragidx.toml": 'chunk-tokens = 128\nchunk_overlap = 8\ndb = "idx.db"\n',
        },
    )
    assert cli("index", "a.md", "-q").exit_code == 0  # db comes from the file too
    assert chunking(cli) == (128, 8)
    assert cli("index", "a.md", "-q", "--chunk-tokens", "256").exit_code == 0
    assert chunking(cli) == (256, 8)
    write(work, {"ragidx.toml": 'db = "file.db"\n'})
    monkeypatch.setenv("RAGIDX_DB", str(work / "env.db"))
    assert cli("index", "a.md", "-q").exit_code == 0
    assert (work / "env.db").exists() and not (work / "file.db").exists()


def test_pyproject_tool_table(cli: Cli, work: Path) -> None:
    write(
        work,
        {
            "a.md": "apple\n",
            "pyproject.toml": '[project]\nname = "x"\n\n[tool.ragidx]\nchunk-tokens = 64\n',
        },
    )
    assert cli("index", "a.md", "--db", "idx.db", "-q").exit_code == 0
    assert chunking(cli) == (64, 8)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('api_key = "sk-123"\n', "api_key cannot be set in a file"),
        ("bogus = 1\n", "unknown setting bogus"),
        ("chunk-tokens = \n", "ragidx.toml"),
    ],
)
def test_bad_settings_files_exit_2(cli: Cli, work: Path, content: str, message: str) -> None:
    write(work, {"a.md": "apple\n", "ragidx.toml": content})
    result = cli("index", "a.md", "--db", "idx.db")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "sk-123" not in result.stderr


def test_verbose_shows_settings_but_not_the_key(
    cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(work, {"a.md": "apple\n", "ragidx.toml": "chunk-tokens = 100\n"})
    monkeypatch.setenv("RAGIDX_API_KEY", "sk-do-not-print")
    result = cli("index", "a.md", "--db", "idx.db", "--verbose", "--provider", "hash")
    assert result.exit_code == 0
    line = next(x for x in result.stderr.splitlines() if x.startswith("settings:"))
    assert "chunk_tokens=100" in line and "settings_file=" in line and "provider=hash" in line
    assert "sk-do-not-print" not in result.stderr
