"""An index where it cannot be written (a CI artifact, a container image, a shared mount):
search, stats and export read it, with or without a WAL left beside it; index says why not.

The tests run as root, whom `chmod` does not stop; so each command runs in a mount namespace
of its own (`unshare`) where the index's directory is bind-mounted read-only: writes fail
with EROFS, as on a read-only mount. Where namespaces are not allowed, the tests skip.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import RAGIDX, Cli

# `$1` is mounted read-only over itself, then the rest of the arguments run.
_READ_ONLY = [
    "unshare",
    "--user",
    "--map-root-user",
    "--mount",
    "sh",
    "-c",
    'mount --bind -o ro "$1" "$1" && shift && exec "$@"',
    "sh",
]

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def read_only(work: Path) -> Run:
    """Runs a command with `directory` read-only."""

    def run(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_READ_ONLY, str(directory), *args],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    probe = work / "probe"
    probe.mkdir()
    try:
        touched = run(probe, "touch", str(probe / "x"))
    except OSError as exc:
        pytest.skip(f"cannot run unshare: {exc}")
    if "Read-only file system" not in touched.stderr:
        pytest.skip(f"no read-only mount in a user namespace here: {touched.stderr.strip()}")
    shutil.rmtree(probe)
    return run


@pytest.fixture
def index_dir(cli: Cli, sample: Path, work: Path) -> Path:
    """An index of sample_docs in `artifact/`, closed cleanly (no WAL beside it)."""
    (work / "artifact").mkdir()
    assert cli("index", "sample_docs", "--db", "artifact/idx.db", "--quiet").exit_code == 0
    return work / "artifact"


@pytest.fixture
def left_wal(index_dir: Path) -> Iterator[Path]:
    """`index_dir` as a crash leaves it: a change committed to the WAL only (one file marked
    failed), the WAL and its -shm beside the database. Copied while a connection holds them."""
    db = index_dir / "idx.db"
    held = index_dir.parent / "held"
    held.mkdir()
    shutil.copy(db, held / "idx.db")
    conn = sqlite3.connect(held / "idx.db", isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("UPDATE files SET status = 'failed', reason = 'only in the WAL' WHERE id = 1")
    for suffix in ("", "-wal", "-shm"):
        shutil.copy(f"{held / 'idx.db'}{suffix}", f"{db}{suffix}")
    conn.close()
    assert (index_dir / "idx.db-wal").stat().st_size > 0
    yield index_dir


def _read_commands(run: Run, directory: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    db = str(directory / "idx.db")
    return {
        "stats": run(directory, *RAGIDX, "stats", "--db", db, "--json"),
        "search": run(directory, *RAGIDX, "search", "thundering herd", "--db", db, "--json"),
        "export": run(directory, *RAGIDX, "export", "--db", db),
    }


def _read_only_files(directory: Path) -> None:
    for path in directory.iterdir():
        path.chmod(0o444)


def test_a_read_only_index_is_read(read_only: Run, index_dir: Path) -> None:
    _read_only_files(index_dir)
    before = sorted(p.name for p in index_dir.iterdir())
    runs = _read_commands(read_only, index_dir)
    for name, run in runs.items():
        assert run.returncode == 0, f"{name}: {run.stderr}"
    stats = json.loads(runs["stats"].stdout)
    assert stats["files"]["indexed"] == 27 and stats["files"]["failed"] == 0
    hits = [json.loads(line) for line in runs["search"].stdout.splitlines()]
    assert hits[0]["path"] == "sample_docs/docs/guides/retries.md"
    assert len(runs["export"].stdout.splitlines()) == stats["chunks"]
    assert sorted(p.name for p in index_dir.iterdir()) == before  # no -wal, no -shm


def test_a_read_only_index_with_a_wal_is_read_with_it(read_only: Run, left_wal: Path) -> None:
    _read_only_files(left_wal)
    runs = _read_commands(read_only, left_wal)
    for name, run in runs.items():
        assert run.returncode == 0, f"{name}: {run.stderr}"
    stats = json.loads(runs["stats"].stdout)
    assert stats["files"]["failed"] == 1  # the change only the WAL holds


def test_an_empty_wal_without_shm_is_nothing_to_read(read_only: Run, index_dir: Path) -> None:
    (index_dir / "idx.db-wal").touch()
    _read_only_files(index_dir)
    for name, run in _read_commands(read_only, index_dir).items():
        assert run.returncode == 0, f"{name}: {run.stderr}"


def test_a_wal_that_cannot_be_read_is_said(read_only: Run, left_wal: Path) -> None:
    # Without its -shm, SQLite cannot read the WAL in a read-only directory; reading the
    # database alone would show the index as it was before the WAL's changes.
    (left_wal / "idx.db-shm").unlink()
    _read_only_files(left_wal)
    for name, run in _read_commands(read_only, left_wal).items():
        assert run.returncode == 2, f"{name}: {run.stderr}"
        assert "Traceback" not in run.stderr
        db = left_wal / "idx.db"
        assert f"error: cannot read the index {db}: its last changes are in {db}-wal" in (
            run.stderr
        )
        assert "hint: open the index once where it can be written" in run.stderr


def test_index_into_a_read_only_directory(read_only: Run, index_dir: Path) -> None:
    db = index_dir / "idx.db"
    run = read_only(index_dir, *RAGIDX, "index", "sample_docs", "--db", str(db), "--quiet")
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert f"error: cannot lock the index {db}: [Errno 30] Read-only file system" in run.stderr
    assert "hint: the index's directory cannot be written here" in run.stderr


@pytest.mark.parametrize("wal", [False, True])
def test_a_damaged_read_only_index_says_so(
    read_only: Run, index_dir: Path, request: pytest.FixtureRequest, wal: bool
) -> None:
    if wal:
        request.getfixturevalue("left_wal")
    db = index_dir / "idx.db"
    with db.open("r+b") as f:
        f.write(b"\xff" * 4096)  # the header, as a bad copy leaves it
    _read_only_files(index_dir)
    for name, run in _read_commands(read_only, index_dir).items():
        assert run.returncode == 2, f"{name}: {run.stderr}"
        assert "Traceback" not in run.stderr
        assert f"error: the index {db} is damaged (file is not a database)" in run.stderr
