"""The README's examples, run, so they stay true."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
from conftest import ROOT, Cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _block_after(marker: str, lang: str) -> str:
    start = README.index(marker)
    match = re.compile(rf"```{lang}\n(.*?)```", re.S).search(README, start)
    assert match is not None
    return match.group(1)


def test_search_example_output(cli: Cli, sample: Path) -> None:
    block = _block_after("on stderr. Then:", "console")
    command, expected = block.splitlines()[:2]
    assert command == '$ uv run ragidx search "thundering herd jitter"'
    assert cli("index", "sample_docs", "--quiet").exit_code == 0
    result = cli("search", "thundering herd jitter")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == expected


def test_library_example(work: Path, sample: Path) -> None:
    code = _block_after("## Library", "python").replace('["docs"]', '["sample_docs"]')
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    assert "RunFinished" in printed.getvalue()
    assert (work / ".ragidx" / "index.db").exists()


def test_dry_run_example(cli: Cli, sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a dry run needs no key
    command = _block_after("**Dry run.**", "console").splitlines()[0]
    args = shlex.split(command.removeprefix("$ ragidx "))
    result = cli(*[("sample_docs" if a == "docs" else a) for a in args])
    assert result.exit_code == 0, result.stderr
    assert "dry run: nothing embedded or written" in result.stderr
    assert "cost" in result.stderr and not (sample.parent / ".ragidx").exists()
