"""The store seam: what the pipeline, the planner, search, export, stats and gc ask of an
index, and the plain values that cross it.

`SqliteStore` (`ragidx.store.sqlite`) is the first implementation. Another backend (Postgres)
is one new module whose class implements `Store`, plus its tests; nothing outside `store/`
names an implementation but the code that opens one. A store knows nothing of embedders:
what it needs of the vector space (provider, model, dims, whether vectors are unit length)
comes to it as values, and the embedding cache's keys are made by the caller
(`ragidx.store.cache.embedding_key`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from ragidx.models import Chunk, FileStatus, RunRecord, StoreStats, WorkerProgress
from ragidx.store.stamps import DirStamp, Stamp

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ChunkRow",
    "Embeddings",
    "FileRecord",
    "FileWrite",
    "RunRecord",
    "Staged",
    "Store",
    "StoreStats",
    "WorkerProgress",
    "Write",
]


class FileRecord(NamedTuple):
    """What the index knows of a file. A tuple: the planner reads one per file of a tree."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str | None
    status: str
    reason: str | None
    chunking: str | None
    chunks: int


@dataclass(slots=True)
class FileWrite:
    """One file's change, applied atomically with the others of its group."""

    status: FileStatus
    path: str
    size: int = 0
    mtime_ns: int = 0
    content_hash: str | None = None
    reason: str | None = None
    encoding: str | None = None
    format: str | None = None
    unit: str | None = None
    """What the document's `pages` count (`Document.unit`); None for a text without pages."""
    pages: int | None = None
    chunking: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    """Each chunk's embedding key; the vector is in the cache by the time the file commits."""
    touch_only: bool = False
    stage: int | None = None
    """A big file's chunks were committed in `Staged` parts under a staging row; this write
    puts that row in the place of the file's old version."""
    staged_chunks: int = 0
    staged_tokens: int = 0
    held: list[tuple[Chunk, bytes]] = field(default_factory=list)
    """A failed file's chunks and keys, of which those whose vectors came back are held
    (`ragidx.store.staging`): `gc` keeps what was paid for until the file is indexed,
    skipped, removed or gone."""

    @property
    def chunk_count(self) -> int:
        return self.staged_chunks if self.stage is not None else len(self.chunks)

    @property
    def token_count(self) -> int:
        return self.staged_tokens if self.stage is not None else sum(c.tokens for c in self.chunks)


@dataclass(frozen=True, slots=True)
class Embeddings:
    """Vectors received from the embedder, cached by key before any file uses them."""

    keys: list[bytes]
    vectors: np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True, slots=True)
class Staged:
    """Consecutive chunks of a big file, stored under a staging row that search, stats and
    export do not see until the file's `FileWrite` (with the same `stage`) commits."""

    stage: int
    path: str
    chunks: list[Chunk]
    keys: list[bytes]


Write = FileWrite | Embeddings | Staged


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A stored chunk, as search and export read it."""

    id: int
    path: str
    ordinal: int
    text: str
    input: str | None
    char_start: int
    char_end: int
    line_start: int
    line_end: int
    heading_path: tuple[str, ...]
    tokens: int
    page_start: int | None = None
    page_end: int | None = None
    unit: str | None = None
    """What the pages count: "page", "slide", "sheet"; None where the file has none."""

    @classmethod
    def from_columns(cls, row: Sequence[Any], heading_path: Iterable[str]) -> ChunkRow:
        """From the 14 columns every store's chunk queries select, in this class's field
        order; `heading_path` decoded as the backend stores it (JSON text, jsonb)."""
        return cls(
            id=row[0],
            path=row[1],
            ordinal=row[2],
            text=row[3],
            input=row[4],
            char_start=row[5],
            char_end=row[6],
            line_start=row[7],
            line_end=row[8],
            heading_path=tuple(heading_path),
            tokens=row[10],
            page_start=row[11],
            page_end=row[12],
            unit=row[13],
        )


@runtime_checkable
class Store(Protocol):
    """An open index. Every method raises `StoreError` (`IndexDamaged` where the index is
    corrupt) and no backend's own errors. Not shared between threads at the same time.

    Opening one is the implementation's business (`SqliteStore.open`,
    `PostgresStore.open`); `close` ends it."""

    @property
    def location(self) -> str:
        """Where the index is, as messages name it: a file's path, or a database URL without
        its password."""
        ...

    def close(self) -> None:
        """Release the index; the store is not used after."""
        ...

    def reader(self, *, blank: bool = False) -> Store:
        """Another handle on the same index, for reads in a worker thread beside this one's
        writes (`blank`: on an empty index instead, as a reset plans). Close it after."""
        ...

    # -- the manifest and resets ---------------------------------------------------------

    def manifest(self) -> dict[str, str]:
        """The vector space and settings the index was built with (none while a reset
        waits)."""
        ...

    def check_manifest(
        self, provider: str, model: str, dims: int, binding: Mapping[str, str] | None = None
    ) -> None:
        """Raise `ManifestMismatch` for another vector space than the one recorded (dims 0:
        not known yet); `binding` holds settings that change the vectors (`normalize`)."""
        ...

    def claim_manifest(
        self,
        provider: str,
        model: str,
        dims: int,
        settings: Mapping[str, int | str],
        *,
        binding: Mapping[str, str] | None = None,
    ) -> None:
        """As `check_manifest`; then record this space and `settings` with the first commit
        that stores vectors. Nothing is written now."""
        ...

    @property
    def resetting(self) -> bool:
        """Whether a deferred reset waits for the first vectors of the run."""
        ...

    def reset(self, *, defer: bool = False) -> None:
        """Forget everything: files, chunks, cached vectors, runs and the manifest; with
        `defer`, in the transaction of the first commit that carries vectors."""
        ...

    def complete_reset(self, run_id: int) -> None:
        """Carry out a deferred reset in a run that had nothing to embed and completed."""
        ...

    # -- runs ----------------------------------------------------------------------------

    def begin_run(self, roots: Iterable[str], *, worker: str = "", shard: str | None = None) -> int:
        """Record a run that starts now, by `worker` ("host:pid") over `shard` ("K/N", None
        for the whole tree); returns its id."""
        ...

    def heartbeat(self, run_id: int, in_flight: int) -> None:
        """Record that the run is alive with `in_flight` files between reading and commit
        (what `StoreStats.workers` shows). `commit` counts the files done and failed."""
        ...

    def finish_run(
        self,
        run_id: int,
        status: str,
        summary: dict[str, object],
        *,
        on_build: Callable[[int], None] | None = None,
    ) -> None:
        """Record how the run `run_id` ended, and its summary (a JSON object). A store that
        builds a vector index as a run ends (Postgres: minutes at millions of vectors) calls
        `on_build` with the number of vectors first."""
        ...

    # -- what the index holds of a tree (the planner) ------------------------------------

    def lookup(self, path: str) -> FileRecord | None:
        """What the index holds of the file at `path`; None where it holds nothing."""
        ...

    def stamp(self, path: str) -> Stamp | None:
        """The file's stamp; None where the index holds nothing for `path`."""
        ...

    def stamps_in_dir(self, directory: str) -> dict[str, Stamp]:
        """The stamps of the files directly in `directory`, by path."""
        ...

    def dir_stamp(self, directory: str) -> DirStamp | None:
        """The directory's stamp, where it has a usable one."""
        ...

    def stamp_dirs(self, rows_per_commit: int = 20_000) -> int:
        """Stamp each directory whose files changed since its last stamp; returns how many."""
        ...

    def count_under(self, root: str, limit: int) -> int:
        """How many files the index holds at or below `root`, counting no further than
        `limit`."""
        ...

    def paths_under(self, root: str) -> Iterator[str]:
        """The files the index holds below the directory `root`, in path order."""
        ...

    def dirs_under(self, root: str) -> list[str]:
        """Directories at or below `root` that hold indexed files, in order."""
        ...

    def failed_files(self) -> list[tuple[str, str | None]]:
        """Each failed file's path and reason, in path order."""
        ...

    # -- writing and the embedding cache -------------------------------------------------

    def commit(self, writes: list[Write], run_id: int) -> None:
        """Apply a group of writes in one transaction, in order: each file is all old or all
        new, and the vectors a file uses are cached before it. The run's counters of files
        done (indexed, skipped, removed) and failed grow in the same transaction."""
        ...

    def cached(self, keys: list[bytes]) -> set[bytes]:
        """Which of `keys` the embedding cache holds a vector for."""
        ...

    def drop_staged(self) -> int:
        """Clear what runs that never finished staged (only the writer may); returns how
        many files had parts staged."""
        ...

    def checkpoint(self) -> None:
        """Fold pending writes into the index where nothing is in the way; never fails."""
        ...

    # -- maintenance ---------------------------------------------------------------------

    def gc(self) -> int:
        """Drop the cached vectors no chunk uses; returns how many went."""
        ...

    def held_vectors(self) -> int:
        """Cached vectors kept only for files not yet indexed."""
        ...

    def file_bytes(self) -> tuple[int, int]:
        """The index's size in bytes, and how much of it is free for reuse."""
        ...

    def vacuum(self) -> None:
        """Give free space back to the file system."""
        ...

    def stats(self) -> StoreStats:
        """Counts of what is indexed and cached, the vector space, the last run."""
        ...

    # -- reading chunks and searching ----------------------------------------------------

    def iter_chunks(self, *, vectors: bool = False) -> Iterator[tuple[ChunkRow, bytes | None]]:
        """Every indexed chunk in path and ordinal order, with its vector's bytes (little-
        endian float32) where `vectors`; raises `IndexDamaged` at a vector that does not
        read back."""
        ...

    def chunks_by_id(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        """The indexed chunks among `ids`, by id; ids of chunks gone are left out."""
        ...

    def text_search(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        """Chunk ids and full-text scores (BM25 or the backend's like; higher is better) of
        the chunks that hold any of `terms`, phrases as `ragidx.query.search.query_terms`
        makes them: the store quotes them in its own query syntax."""
        ...

    def vector_search(
        self,
        query: np.ndarray[Any, np.dtype[np.float32]],
        limit: int,
        on_damaged: Callable[[str, int], None] | None = None,
    ) -> list[tuple[int, float]]:
        """Chunk ids and cosine similarities, best first; vectors that did not survive are
        not ranked, and `on_damaged(path, count)` hears of them, file by file."""
        ...
