"""The Postgres + pgvector index: many workers, one index, each file all old or all new.

`PostgresStore` implements `Store` by composing one module per concern, each a set of
functions over a connection: `connect` (the URL, the schema, migrations), `writing` (the
write path), `staging`, `runs`, `tree` (what a run plans from), `queries` (search and
export), `stats` and `maintain`. Every public method raises `StoreError`, never psycopg's
errors, and names the index by its URL without a password (`location`).

One connection per store, not a pool: a run's liveness is a session advisory lock held on
the connection that committed its files (`runs`), which a pool would hand to other sessions;
a worker thread reads through its own store (`reader`). A connection lost under `commit`
(the server restarted, the backend was terminated) rolled the group back whole: the store
reconnects, takes its runs' locks again and sends the group again (`connect.retried`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from ragidx.errors import StoreError
from ragidx.store.base import ChunkRow, FileRecord, Store, StoreStats, Write
from ragidx.store.postgres import maintain, queries, runs, stats, tree
from ragidx.store.postgres.connect import Target, connect, pg_error, retried, target
from ragidx.store.postgres.migrations import GC, lock_key
from ragidx.store.postgres.rows import Conn
from ragidx.store.postgres.writing import PgWriter, check_space, read_manifest
from ragidx.store.stamps import DirStamp, Stamp

if TYPE_CHECKING:
    import numpy as np

__all__ = ["PostgresStore"]

_T = TypeVar("_T")


def _guard(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(self: PostgresStore, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except psycopg.Error as exc:
            raise self._failed(exc) from exc
        if isinstance(result, types.GeneratorType):
            return _guard_rows(self, result)  # rows are read, and can fail, later
        return result

    return guarded


def _guard_rows(store: PostgresStore, rows: Iterator[_T]) -> Iterator[_T]:
    try:
        yield from rows
    except psycopg.Error as exc:
        raise store._failed(exc) from exc


def _maps_pg_errors(cls: type[_T]) -> type[_T]:
    """Every public method raises `StoreError`, never psycopg's own errors."""
    for name, attr in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(attr):
            setattr(cls, name, _guard(attr))
    return cls


@_maps_pg_errors
class PostgresStore:
    """An open Postgres index (see `Store` for what each method promises). Not shared
    between threads at the same time."""

    def __init__(self, conn: Conn, where: Target, *, read_only: bool = False) -> None:
        self.conn = conn
        self.target = where
        self._read_only = read_only
        self._runs: set[int] = set()  # this store's running runs, whose locks it holds
        self._writer = PgWriter(self._transaction, where.schema, where.location)

    @property
    def location(self) -> str:
        return self.target.location

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, create: bool = True, upgrade: bool = True) -> PostgresStore:
        """Open (with `create`, make) the index at `url`, migrating its schema; without
        `upgrade`, refusing a schema that needs migrating."""
        where = target(url)
        return cls(connect(where, create=create, upgrade=upgrade), where)

    @classmethod
    def open_for_reading(cls, url: str) -> PostgresStore:
        """For commands that only read: an existing index, in read-only transactions."""
        return cls._reading(target(url))

    @classmethod
    def _reading(cls, where: Target) -> PostgresStore:
        conn = connect(where, create=False, upgrade=False)
        conn.execute("SET default_transaction_read_only = on")
        return cls(conn, where, read_only=True)

    def close(self) -> None:
        # The runs left unfinished stay locked until the backend has exited (a moment
        # after): they are not finished, so nothing waits for them to be let go.
        self.conn.close()

    def reader(self, *, blank: bool = False) -> Store:
        """Another connection, read-only where this one is; `blank`: an empty in-memory
        index, all a reset plans from."""
        if blank:
            from ragidx.store.sqlite import SqliteStore

            return SqliteStore.open(Path(":memory:"))
        if self._read_only:
            return self._reading(self.target)
        return type(self)(connect(self.target), self.target)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Conn]:
        with self.conn.transaction():
            yield self.conn

    def _failed(self, exc: psycopg.Error) -> StoreError:
        if self.conn.broken:  # a later call reconnects instead of failing the same way
            with contextlib.suppress(StoreError):
                self.reconnect()
        return pg_error(self.target, exc)

    def reconnect(self) -> None:
        """A new connection in the place of a lost one, holding the same runs' locks."""
        with contextlib.suppress(psycopg.Error):
            self.conn.close()
        self.conn = connect(self.target)
        for run_id in sorted(self._runs):
            runs.hold_run_lock(self.conn, self.target.schema, run_id)

    # -- the manifest and resets ---------------------------------------------------------

    def manifest(self) -> dict[str, str]:
        return {} if self._writer.deferred is not None else read_manifest(self.conn)

    def check_manifest(
        self, provider: str, model: str, dims: int, binding: Mapping[str, str] | None = None
    ) -> None:
        wanted = {"provider": provider, "model": model, "dims": str(dims) if dims else None}
        check_space(self.location, self.manifest(), {**wanted, **(binding or {})})

    def claim_manifest(
        self,
        provider: str,
        model: str,
        dims: int,
        settings: Mapping[str, int | str],
        *,
        binding: Mapping[str, str] | None = None,
    ) -> None:
        wanted = {"provider": provider, "model": model, "dims": str(dims), **(binding or {})}
        check_space(self.location, self.manifest(), wanted)
        self._writer.claimed = {**wanted, **{k: str(v) for k, v in settings.items()}}
        self._writer.space = wanted

    @property
    def resetting(self) -> bool:
        return self._writer.deferred is not None

    def reset(self, *, defer: bool = False) -> None:
        """As `SqliteStore.reset`; refused while another worker's run is alive."""
        runs.refuse_while_others_run(self.conn, self.target, self._runs)
        self._writer.reset(defer=defer)

    def complete_reset(self, run_id: int) -> None:
        self._writer.complete_reset(run_id)

    # -- runs ----------------------------------------------------------------------------

    def begin_run(self, roots: Iterable[str], *, worker: str = "", shard: str | None = None) -> int:
        run_id = runs.begin_run(self.conn, self.target.schema, roots, worker, shard)
        self._runs.add(run_id)
        return run_id

    def finish_run(
        self,
        run_id: int,
        status: str,
        summary: dict[str, object],
        *,
        on_build: Callable[[int], None] | None = None,
    ) -> None:
        runs.finish_run(self.conn, self.target.schema, run_id, status, summary, on_build)
        self._runs.discard(run_id)

    def heartbeat(self, run_id: int, in_flight: int) -> None:
        runs.heartbeat(self.conn, run_id, in_flight)

    # -- what the index holds of a tree --------------------------------------------------

    def lookup(self, path: str) -> FileRecord | None:
        return tree.lookup(self.conn, path)

    def stamp(self, path: str) -> Stamp | None:
        return tree.read_stamp(self.conn, path)

    def stamps_in_dir(self, directory: str) -> dict[str, Stamp]:
        return tree.read_stamps_in_dir(self.conn, directory)

    def dir_stamp(self, directory: str) -> DirStamp | None:
        return tree.read_dir_stamp(self.conn, directory)

    def stamp_dirs(self, rows_per_commit: int = 20_000) -> int:
        return tree.stamp_dirs(self._transaction, rows_per_commit)

    def count_under(self, root: str, limit: int) -> int:
        return tree.count_under(self.conn, root, limit)

    def paths_under(self, root: str) -> Iterator[str]:
        yield from tree.paths_under(self.conn, root)

    def dirs_under(self, root: str) -> list[str]:
        return tree.dirs_under(self.conn, root)

    def failed_files(self) -> list[tuple[str, str | None]]:
        return tree.failed_files(self.conn)

    # -- writing and the embedding cache -------------------------------------------------

    def commit(self, writes: list[Write], run_id: int) -> None:
        """As `Store.commit`; a group whose connection was lost (or that lost a deadlock)
        was rolled back whole, and is sent again on a new connection (`retried`)."""
        retried(functools.partial(self._writer.commit, writes, run_id), self, self._failed)

    def cached(self, keys: list[bytes]) -> set[bytes]:
        rows = self.conn.execute("SELECT key FROM embeddings WHERE key = ANY(%s)", (keys,))
        return {bytes(key) for (key,) in rows}

    def drop_staged(self) -> int:
        """Only what runs that are gone staged: a live worker's parts stay its own."""
        return self._writer.drop_staged(runs.dead(self.target.schema, "f.run_id"))

    def checkpoint(self) -> None:
        """Nothing to fold: the server's own checkpoints and autovacuum do it."""

    # -- maintenance ---------------------------------------------------------------------

    def gc(self) -> int:
        """Under gc's lock taken whole: no group is half-way between caching a vector and
        committing the chunk that uses it."""
        with self._transaction() as conn:
            key = lock_key(self.target.schema, "index")
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (key, GC))
            return maintain.drop_unused(conn)

    def held_vectors(self) -> int:
        return maintain.held_vectors(self.conn)

    def file_bytes(self) -> tuple[int, int]:
        return maintain.file_bytes(self.conn)

    def vacuum(self) -> None:
        maintain.vacuum(self.conn)

    def stats(self) -> StoreStats:
        return stats.read_stats(self.conn, self.location, self.manifest())

    # -- reading chunks and searching ----------------------------------------------------

    def iter_chunks(self, *, vectors: bool = False) -> Iterator[tuple[ChunkRow, bytes | None]]:
        manifest = self.manifest() if vectors else {}
        dims, unit = int(manifest.get("dims") or 0), manifest.get("normalize") == "true"
        yield from queries.iter_chunks(
            self.conn, self.location, vectors=vectors, dims=dims, unit=unit
        )

    def chunks_by_id(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        return queries.chunks_by_id(self.conn, ids)

    def text_search(self, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
        return queries.text_search(self.conn, terms, limit)

    def vector_search(
        self,
        query: np.ndarray[Any, np.dtype[np.float32]],
        limit: int,
        on_damaged: Callable[[str, int], None] | None = None,
    ) -> list[tuple[int, float]]:
        unit = self.manifest().get("normalize") == "true"
        return queries.vector_search(self.conn, query, limit, unit=unit, on_damaged=on_damaged)


if TYPE_CHECKING:

    def _implements_store(store: PostgresStore) -> Store:
        return store  # mypy checks here that `PostgresStore` is a `Store`
