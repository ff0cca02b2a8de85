"""The README's examples, run, so they stay true."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
from helpers import ROOT, Cli

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


def _section(heading: str) -> str:
    start = README.index(f"\n{heading}\n")
    end = README.find("\n## ", start + len(heading) + 2)
    return README[start : end if end != -1 else None]


def _commands(text: str) -> list[str]:
    """The commands of a section's code blocks: continuations joined, comments dropped."""
    blocks = re.findall(r"```(?:bash|console)\n(.*?)```", text, re.S)
    joined = "\n".join(blocks).replace(" \\\n  ", " ")
    return [line for line in joined.splitlines() if line and not line.startswith("#")]


def test_the_infinity_recipe_is_what_the_integration_tests_run() -> None:
    from ragidx.testing.infinity import INSTALL, SERVE, USE

    assert _commands(_section("### Infinity")) == [*INSTALL, *SERVE, *USE]


def test_every_server_recipe_is_a_valid_command(
    cli: Cli, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dry run parses every option and checks the settings without reaching the server.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    indexing = [c for c in _commands(_section("## Use with your server")) if " index " in c]
    assert len(indexing) == 10
    for command in indexing:
        args = shlex.split(command.removeprefix("ragidx "))
        result = cli(*[("sample_docs" if a == "docs" else a) for a in args], "--dry-run")
        assert result.exit_code == 0, (command, result.stderr)
        assert "dry run: nothing embedded or written" in result.stderr, command
