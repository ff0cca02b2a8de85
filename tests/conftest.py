from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    ROOT,
    SAMPLE_DOCS,
    Cli,
    PoisonEmbedder,
    Result,
)
from typer.testing import CliRunner

from ragidx.cli import app
from ragidx.embed import PROVIDERS


def _untracked() -> set[str] | None:
    """Files in the work tree that git neither tracks nor ignores (None outside a git tree)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {line[3:] for line in out.splitlines() if line.startswith("??")}


@pytest.fixture(scope="session", autouse=True)
def _work_tree_stays_clean() -> Iterator[None]:
    """Every test writes under its own temporary directory: one that leaves a file in the
    work tree (an index, a lock) fails the run."""
    before = _untracked()
    yield
    after = _untracked()
    if before is not None and after is not None:
        left = sorted(after - before)
        assert not left, f"the tests left files in the work tree: {left}"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of its own, so paths print relative to it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAGIDX_DB", raising=False)
    monkeypatch.delenv("RAGIDX_PROVIDER", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


@pytest.fixture
def cli(work: Path) -> Cli:
    def run(*args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(app, list(args), input=input)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Result(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def sample(work: Path) -> Path:
    """A copy of sample_docs/ in the working directory."""
    return Path(shutil.copytree(SAMPLE_DOCS, work / "sample_docs"))


@pytest.fixture
def poison_provider() -> Iterator[None]:
    PROVIDERS["poison"] = lambda model, dims, options: PoisonEmbedder(dims or 256)
    try:
        yield
    finally:
        del PROVIDERS["poison"]
