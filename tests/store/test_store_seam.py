"""The store is a seam: `SqliteStore` implements the `Store` protocol, its stats are a typed
value, and the store knows nothing of embedders (it never imports `ragidx.embed`)."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from helpers import ROOT

import ragidx.store
from ragidx.models import Chunk, FileStatus
from ragidx.store import Embeddings, FileWrite, SqliteStore, Store, StoreStats, embedding_key

_STORE_DIR = ROOT / "ragidx" / "store"


def _members(protocol: type) -> list[str]:
    return [
        name
        for name, value in vars(protocol).items()
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))
    ]


def test_sqlite_store_has_every_member_of_the_protocol(tmp_path: Path) -> None:
    """mypy checks the same in `ragidx.store.sqlite` (`_implements_store`); this checks the
    names, parameters and defaults at run time, and `isinstance`."""
    members = _members(Store)
    assert {"commit", "stats", "vector_search", "location", "resetting"} <= set(members)
    store = SqliteStore.open(tmp_path / "idx.db")
    try:
        assert isinstance(store, Store)
        for name in members:
            assert hasattr(store, name), f"SqliteStore has no {name}"
            wanted = inspect.getattr_static(Store, name)
            if isinstance(wanted, property):
                continue  # `path` is an attribute, `resetting` a property: both read alike
            expected = inspect.signature(wanted).parameters
            found = inspect.signature(getattr(SqliteStore, name)).parameters  # the unwrapped
            assert [(p.name, p.kind, p.default) for p in found.values()] == [
                (p.name, p.kind, p.default) for p in expected.values()
            ], name
    finally:
        store.close()


def test_the_package_exports_the_seam() -> None:
    for name in ("Store", "StoreStats", "FileRecord", "FileWrite", "Embeddings", "Staged"):
        assert name in ragidx.store.__all__
    for name in ("ChunkRow", "RunRecord", "Write", "SqliteStore"):
        assert name in ragidx.store.__all__


def test_no_store_module_imports_embed() -> None:
    for module in sorted(_STORE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.startswith("ragidx.embed")], module.name


def test_using_the_store_loads_no_embedder(tmp_path: Path) -> None:
    """Every path through the store, the legacy manifest check among them (which once read
    whether vectors are unit length with the embedders' helper), leaves `ragidx.embed`
    unloaded."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path

        import numpy as np

        from ragidx.models import Chunk, FileStatus
        from ragidx.store import Embeddings, FileWrite, SqliteStore, embedding_key

        store = SqliteStore.open(Path({str(tmp_path / "idx.db")!r}))
        store.claim_manifest("p", "m", 4, {{}})
        chunk = Chunk(0, "hello", "hello", 0, 5, 1, 1, (), 1)
        key = embedding_key("p", "m", 4, "hello")
        vectors = np.array([[1, 0, 0, 0]], dtype=np.float32)
        write = FileWrite(FileStatus.INDEXED, "/a.md", 5, 1, "h", chunks=[chunk], keys=[key])
        store.commit([Embeddings([key], vectors), write], store.begin_run(["/"]))
        store.check_manifest("p", "m", 4, {{"normalize": "true"}})  # read off the vectors
        assert [row.text for row, _ in store.iter_chunks(vectors=True)] == ["hello"]
        assert store.vector_search(vectors[0], 5) and store.text_search(["hello"], 5)
        assert store.stats().chunks == 1 and store.gc() == 0
        store.close()
        assert not [m for m in sys.modules if m.startswith("ragidx.embed")], sys.modules
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_stats_are_a_typed_value_with_the_json_record_in_order(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "idx.db")
    try:
        store.claim_manifest("p", "m", 2, {"chunk_tokens": 512, "chunk_overlap": 64})
        chunk = Chunk(0, "hi", "hi", 0, 2, 1, 1, ("Top",), 1)
        key = embedding_key("p", "m", 2, "hi")
        run = store.begin_run(["/"], worker="host:1", shard="1/2")
        write = FileWrite(FileStatus.INDEXED, "/d/a.md", 2, 1, "h", chunks=[chunk], keys=[key])
        vectors = np.array([[0.6, 0.8]], dtype=np.float32)
        store.commit([Embeddings([key], vectors), write], run)
        store.finish_run(run, "completed", {"indexed": 1, "seconds": 0.5})
        stats = store.stats()
    finally:
        store.close()
    assert isinstance(stats, StoreStats)
    assert stats.files == {"indexed": 1, "skipped": 0, "failed": 0}
    assert (stats.chunks, stats.vectors, stats.dims, stats.chunk_tokens) == (1, 1, 2, 512)
    assert stats.last_run is not None and stats.last_run.summary == {"indexed": 1, "seconds": 0.5}
    (worker,) = stats.workers
    assert (worker.run_id, worker.worker, worker.shard, worker.status) == (
        run,
        "host:1",
        "1/2",
        "completed",
    )
    assert (worker.files_done, worker.files_failed, worker.in_flight) == (1, 0, 0)
    record = stats.as_dict()
    assert list(record) == [
        "db",
        "db_bytes",
        "files",
        "chunks",
        "tokens",
        "vectors",
        "cached_vectors",
        "unused_vectors",
        "held_vectors",
        "failed_not_stored",
        "provider",
        "model",
        "dims",
        "chunk_tokens",
        "chunk_overlap",
        "file_types",
        "last_run",
        "workers",
    ]
    assert list(record["last_run"]) == [
        "id",
        "started_at",
        "finished_at",
        "seconds",
        "status",
        "roots",
        "summary",
    ]
    assert record["file_types"] == {".md": 1} and record["last_run"]["roots"] == ["/"]
