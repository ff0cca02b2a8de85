"""Worker processes: the same chunks whatever their number, a worker that dies fails only
its file, none outlives a killed run, and a machine where none can start still indexes."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import RAGIDX, SAMPLE_DOCS, index_args, make_tree, start, stored_vectors, write

import ragidx
from ragidx import read
from ragidx.config import ChunkConfig, IndexConfig
from ragidx.embed import HashEmbedder
from ragidx.events import Event, WorkersUnavailable
from ragidx.models import Document, FileStatus
from ragidx.read import NotText, Source
from ragidx.testing.server import Faults, serve

CHUNK_ROWS = (
    "SELECT f.path, c.ordinal, c.text, c.char_start, c.char_end, c.line_start, c.line_end,"
    " c.heading_path FROM chunks c JOIN files f ON f.id = c.file_id ORDER BY f.path, c.ordinal"
)


def _chunks(db: Path, root: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(CHUNK_ROWS).fetchall()
    finally:
        conn.close()
    return [(str(Path(r[0]).relative_to(root)), *r[1:]) for r in rows]


def test_the_same_chunks_in_a_thread_one_worker_or_three(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_DOCS, docs)
    # More files than one batch holds, of a size that makes several chunks each.
    make_tree(docs / "tree", 60, words=400)
    found, vectors = [], []
    for workers in (0, 1, 3):
        db = tmp_path / f"w{workers}.db"
        chunk = ChunkConfig(chunk_tokens=128, chunk_overlap=16)
        config = IndexConfig(db_path=db, workers=workers, chunk=chunk)
        summary = ragidx.index([docs], HashEmbedder(), config)
        assert summary.ok
        found.append(_chunks(db, docs))
        # The hash embedder's vectors are made in the workers too: the same, bit for bit.
        vectors.append(sorted((text, v.tobytes()) for _, text, v in stored_vectors(db)))
    assert len(found[0]) > 200
    assert found[0] == found[1] == found[2]
    assert len(vectors[0]) == len(found[0])
    assert vectors[0] == vectors[1] == vectors[2]


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _hang() -> None:
    time.sleep(3600)  # a parser caught in a loop


@dataclass(frozen=True)
class _InWorker:
    """Reads files of `suffix` by doing `act` in the worker process that reads them: kill
    it, or never come back. Registered for a test, handed to the workers with the run."""

    suffix: str
    act: Callable[[], None]
    format: str = "text"
    segmented: bool = False

    @property
    def content_type(self) -> str:
        return f"application/x-test{self.suffix}"

    @property
    def suffixes(self) -> tuple[str, ...]:
        return (self.suffix,)

    def sniff(self, head: bytes) -> bool:
        return False

    def read(self, source: Source) -> Document:
        if multiprocessing.parent_process() is None:
            # Not in a worker (the run fell back to a thread): never kill or hang the test.
            raise NotText(f"{self.suffix} file read outside a worker")
        self.act()
        raise AssertionError("unreachable")


@contextlib.contextmanager
def _registered(reader: _InWorker) -> Iterator[None]:
    read.register(reader)
    try:
        yield
    finally:
        read.unregister(reader.content_type)


@pytest.fixture
def fatal_reader() -> Iterator[None]:
    with _registered(_InWorker(".fatal", _kill_self)):
        yield


@pytest.mark.slow
@pytest.mark.usefixtures("fatal_reader")
def test_a_worker_that_dies_fails_only_its_file(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", 40)
    write(tmp_path / "tree", {"d00/poison.fatal": "any text"})
    events: list[Event] = []
    config = IndexConfig(db_path=tmp_path / "idx.db", workers=2)
    summary = ragidx.index([tmp_path / "tree"], HashEmbedder(), config, events.append)
    assert not any(isinstance(e, WorkersUnavailable) for e in events)
    counts = summary.counts
    assert (counts[FileStatus.INDEXED], counts[FileStatus.FAILED]) == (40, 1)
    failed = _failures(tmp_path / "idx.db")
    assert failed == [("poison.fatal", "parser_crashed: worker process killed by SIGKILL")]


def _failures(db: Path) -> list[tuple[str, str]]:
    """The failed files' names and reasons, as the index holds them."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT path, reason FROM files WHERE status = 'failed'").fetchall()
    finally:
        conn.close()
    return [(Path(path).name, reason) for path, reason in rows]


def _descendants(pid: int) -> set[int]:
    """The processes under `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_no_worker_outlives_a_killed_run(tmp_path: Path) -> None:
    make_tree(tmp_path / "corpus", 300)
    with serve(Faults(dims=32, latency=0.2)) as server:
        proc = start(index_args(server.url, tmp_path / "idx.db", "--workers", "2"), tmp_path)
        deadline = time.monotonic() + 30
        workers: set[int] = set()
        while len(workers) < 3 and time.monotonic() < deadline:  # the fork server and two
            time.sleep(0.05)
            workers = _descendants(proc.pid)
        assert len(workers) >= 3, workers
        proc.kill()  # SIGKILL: nothing of the run's own code runs after it
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Reaped only now: until then the run's process is a zombie, which must not hold
        # its workers back.
        proc.communicate(timeout=10)
    assert not [p for p in workers if _alive(p)]


def test_where_no_process_can_start_a_thread_reads_every_file(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", 20)
    script = textwrap.dedent(
        """
        import multiprocessing, sys
        from pathlib import Path
        import ragidx
        from ragidx.config import IndexConfig
        from ragidx.embed import HashEmbedder

        if __name__ == "__main__":
            multiprocessing.set_executable("/nonexistent/python")
            events = []
            config = IndexConfig(db_path=Path("idx.db"), workers=2)
            summary = ragidx.index([Path("tree")], HashEmbedder(), config, events.append)
            reasons = [e.reason for e in events if type(e).__name__ == "WorkersUnavailable"]
            counts = {k.value: v for k, v in summary.counts.items()}
            print(counts["indexed"], counts["failed"], len(reasons), reasons)
        """
    )
    (tmp_path / "run.py").write_text(script)
    done = subprocess.run(
        [sys.executable, "run.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    indexed, failed, warned, reasons = done.stdout.split(" ", 3)
    assert (indexed, failed, warned) == ("20", "0", "1"), done.stdout
    assert "nonexistent" in reasons or "Error" in reasons, reasons


def test_the_cli_warns_when_workers_cannot_start(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", 5)
    code = (
        "import multiprocessing, sys; multiprocessing.set_executable('/nonexistent/python');"
        " from ragidx.cli import main; sys.argv = ['ragidx', *sys.argv[1:]]; main()"
    )
    if RAGIDX[1:] != ["-m", "ragidx"]:
        pytest.skip("runs the CLI through the interpreter")
    done = subprocess.run(
        [sys.executable, "-c", code, "index", "tree", "--db", "idx.db", "--workers", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "warning: worker processes could not start (" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ctrl_c_at_a_terminal_stops_the_run_and_its_workers(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole process group: the workers and the fork
    server too. The run stops as from one Ctrl-C; no worker says a word or stays."""
    make_tree(tmp_path / "corpus", 300)
    db = tmp_path / "idx.db"
    with serve(Faults(dims=32, latency=0.2)) as server:
        args = index_args(server.url, db, "--workers", "2", "--batch-size", "8", "--json")
        proc = subprocess.Popen(
            args,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own group, as a terminal's foreground job
        )
        deadline = time.monotonic() + 30
        while server.counters.requests < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = _descendants(proc.pid)
        assert len(workers) >= 3, workers
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopping" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in workers if _alive(p)]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    indexed = conn.execute("SELECT count(*) FROM files WHERE status = 'indexed'").fetchone()[0]
    conn.close()
    reported = [line for line in out.splitlines() if '"status": "indexed"' in line]
    assert indexed == len(reported) < 300


@pytest.mark.slow
def test_a_file_that_hangs_its_parser_fails_with_parse_timeout(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", 30)
    write(tmp_path / "tree", {"d01/forever.stuck": "any text"})
    config = IndexConfig(db_path=tmp_path / "idx.db", workers=2, parse_timeout=1)
    with _registered(_InWorker(".stuck", _hang)):
        summary = ragidx.index([tmp_path / "tree"], HashEmbedder(), config)
    counts = summary.counts
    assert (counts[FileStatus.INDEXED], counts[FileStatus.FAILED]) == (30, 1)
    failed = _failures(tmp_path / "idx.db")
    assert failed == [("forever.stuck", "parse_timeout: reading and chunking took over 1 s")]


def _hog() -> None:
    held = [bytearray(64 * 1024**2) for _ in range(64)]  # 4 GiB, a parser gone wild
    raise AssertionError(f"allocated {len(held)} blocks")


@pytest.mark.slow
def test_a_file_whose_parser_takes_too_much_memory_fails_too_large(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", 10)
    write(tmp_path / "tree", {"d00/huge.hog": "any text"})
    config = IndexConfig(db_path=tmp_path / "idx.db", workers=1, parse_memory=256 * 1024**2)
    with _registered(_InWorker(".hog", _hog)):
        summary = ragidx.index([tmp_path / "tree"], HashEmbedder(), config)
    counts = summary.counts
    assert (counts[FileStatus.INDEXED], counts[FileStatus.FAILED]) == (10, 1)
    failed = _failures(tmp_path / "idx.db")
    assert failed == [
        ("huge.hog", "too_large: reading and chunking it needed more memory than --parse-memory")
    ]
