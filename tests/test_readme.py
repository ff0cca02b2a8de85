"""The README's examples, run, so they stay true."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

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
