from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    ROOT,
    SAMPLE_DOCS,
    Cli,
    PoisonEmbedder,
    Result,
)
from pg import index_db, pg_server, pg_url, store  # noqa: F401  (fixtures for every test module)
from ray_cluster import ray_address  # noqa: F401  (started only by a test that asks)
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


INTEGRATION = "tests/integration/"
RAY_TESTS = "tests/postgres/test_ray.py"
_UNTRACKED = pytest.StashKey[set[str] | None]()


def pytest_configure(config: pytest.Config) -> None:
    # What the work tree held before any test ran: taken once, by a run without xdist or by
    # xdist's controller before it starts a worker (each worker gets it in `workerinput`).
    if not hasattr(config, "workerinput"):
        config.stash[_UNTRACKED] = _untracked()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist's controller hands each worker the work tree as it was before the run."""
    before = node.config.stash.get(_UNTRACKED, None)
    node.workerinput["ragidx_untracked"] = None if before is None else sorted(before)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under xdist's default `--dist load`, every test is its own unit of work except the
    integration tests and the Ray tests: they share one Infinity server a module, or one Ray
    cluster, so they go to one worker together, not one server per worker. (`--dist
    loadgroup` would do this from an `xdist_group` mark, but with pytest 9.2 it no longer
    groups: pytest-xdist#1386.)"""
    if config.getvalue("dist") != "load":
        return None  # a --dist given on the command line is obeyed
    from xdist.scheduler import LoadScopeScheduling

    class _IntegrationTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(RAY_TESTS):
                return "ray"  # one Ray cluster a session (tests/ray_cluster.py)
            return "integration" if nodeid.startswith(INTEGRATION) else nodeid

    return _IntegrationTogether(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Under xdist, the tests marked slow go out first (each worker collects the same order),
    # so that none of them starts last and ends the run late. One process keeps file order.
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def _work_tree_stays_clean(pytestconfig: pytest.Config) -> Iterator[None]:
    """Every test writes under its own temporary directory: one that leaves a file in the
    work tree (an index, a lock) fails the run. Under xdist every worker checks, at its end,
    against the work tree as it was before any worker started: the last worker to end sees
    every file a test left."""
    workerinput = getattr(pytestconfig, "workerinput", None)
    if workerinput is None:
        before = pytestconfig.stash.get(_UNTRACKED, None)
    else:
        listed = workerinput.get("ragidx_untracked")
        before = None if listed is None else set(listed)
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
