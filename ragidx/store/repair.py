"""What `ragidx doctor --db` finds in an index, and `--salvage`: a fresh index that keeps
the cached vectors that read back intact, so that indexing the files again embeds only what
was lost.

Every look here reads around damage: a query that meets a corrupt page stops there, so rows
are read in id order and, past a page that fails, read on from the next id that can be.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragidx.errors import IndexBusy, StoreError
from ragidx.store.connect import connect_read_only, connect_uri
from ragidx.store.damage import is_damage, vectors_damaged
from ragidx.store.lock import WriterLock
from ragidx.store.manifest import write_manifest
from ragidx.store.sqlite import SqliteStore

__all__ = ["IndexReport", "Salvaged", "inspect_index", "salvage"]

MAX_PROBLEMS = 20
"""Integrity messages kept: a badly damaged file has thousands, and the first tell enough."""
_BATCH = 512


@dataclass
class IndexReport:
    """What reading every part of an index found."""

    path: Path
    fatal: str | None = None
    """Why nothing could be read (not a database, the schema unreadable)."""
    problems: list[str] = field(default_factory=list)
    damaged_tables: list[str] = field(default_factory=list)
    files: int = 0
    affected: dict[str, str] = field(default_factory=dict)
    """File path -> what of it fails to read."""
    unreadable: dict[str, list[str]] = field(default_factory=dict)
    """Table -> the ranges of ids whose rows cannot be read at all (on a damaged page)."""
    cached: int = 0
    cache_damaged: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.fatal
            or self.problems
            or self.damaged_tables
            or self.affected
            or self.unreadable
            or self.cache_damaged
        )


@dataclass(frozen=True, slots=True)
class Salvaged:
    kept: int
    dropped: int
    unreadable: list[str]
    """The ranges of cache ids that could not be read at all."""
    moved_to: Path
    roots: list[str]


def inspect_index(path: Path) -> IndexReport:
    """Run SQLite's integrity check on the index at `path`, then read every file's chunks and
    vectors and the whole embedding cache, saying which files are affected. Reads only."""
    report = IndexReport(path)
    try:
        conn = connect_read_only(path)
    except StoreError as exc:
        report.fatal = exc.message
        return report
    try:
        _check_structure(conn, report)
        if report.fatal is None:
            _check_rows(conn, report)
    finally:
        conn.close()
    return report


def _check_structure(conn: sqlite3.Connection, report: IndexReport) -> None:
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND rootpage > 0"
            )
        ]
    except sqlite3.DatabaseError as exc:
        report.fatal = f"its schema cannot be read ({exc})"
        return
    try:
        found = [row[0] for row in conn.execute(f"PRAGMA integrity_check({MAX_PROBLEMS})")]
        if found == ["ok"]:
            return
        lines = [line for text in found for line in str(text).splitlines()]
        report.problems = [line for line in lines if not line.startswith("*** ")]
    except sqlite3.DatabaseError as exc:
        report.problems = [str(exc)]
    if sqlite3.sqlite_version_info < (3, 33, 0):
        return  # no integrity check of one table before then
    # Which tables (each checked with its indexes) the problems are in.
    for table in tables:
        try:
            ok = [row[0] for row in conn.execute(f"PRAGMA integrity_check({_quote(table)})")]
        except sqlite3.DatabaseError:
            ok = []
        if ok != ["ok"]:
            report.damaged_tables.append(table)


def _check_rows(conn: sqlite3.Connection, report: IndexReport) -> None:
    manifest: dict[str, str] = {}
    try:
        manifest = dict(conn.execute("SELECT key, value FROM manifest").fetchall())
    except sqlite3.DatabaseError:
        report.unreadable["manifest"] = ["all rows"]  # vectors cannot be checked without it
    dims = _dims(manifest)
    unit = manifest.get("normalize") == "true"
    files = list(_rows_by_id(conn, "files", "id, path, status", report))
    for file_id, path, status in files:
        if status == "staging":
            continue
        report.files += 1
        if what := _file_damage(conn, file_id, dims, unit):
            report.affected[str(path)] = what
    for _, _, vector in _rows_by_id(conn, "embeddings", "id, key, vector", report):
        report.cached += 1
        report.cache_damaged += bool(dims) and bool(vectors_damaged([vector], dims, unit)[0])


def _file_damage(conn: sqlite3.Connection, file_id: int, dims: int, unit: bool) -> str | None:
    """What of a file's chunks and vectors fails to read, if anything."""
    try:
        rows = conn.execute(
            "SELECT heading_path, text, input, embedding_id FROM chunks WHERE file_id = ?",
            (file_id,),
        ).fetchall()
        for row in rows:
            json.loads(row[0])
    except (sqlite3.DatabaseError, ValueError) as exc:
        if isinstance(exc, sqlite3.DatabaseError) and not is_damage(exc):
            raise
        return "its chunks fail to read"
    ids = sorted({row[3] for row in rows if row[3] is not None})
    vectors: list[bytes] = []
    try:
        for start in range(0, len(ids), _BATCH):
            part = ids[start : start + _BATCH]
            marks = ",".join("?" * len(part))
            sql = f"SELECT vector FROM embeddings WHERE id IN ({marks})"
            vectors += [vector for (vector,) in conn.execute(sql, part)]
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return "its vectors fail to read"
    unlinked = sum(row[3] is None for row in rows)
    missing = unlinked + len(ids) - len(vectors)
    bad = int(vectors_damaged(vectors, dims, unit).sum()) if dims else 0
    if not bad + missing:
        return None
    return f"{bad + missing} of {len(rows)} vectors damaged or missing"


def _rows_by_id(
    conn: sqlite3.Connection, table: str, columns: str, report: IndexReport
) -> Iterator[tuple[Any, ...]]:
    """`table`'s rows in id order, reading on past pages that fail; the ids skipped go in
    `report.unreadable`."""
    try:
        (top,) = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
    except sqlite3.DatabaseError:
        top = None
    after = 0
    while True:
        try:
            for row in conn.execute(
                f"SELECT {columns} FROM {table} WHERE id > ? ORDER BY id", (after,)
            ):
                after = row[0]
                yield row
            return
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
        # sqlite3 steps to the next row as it hands one out: the damage is in the next row
        # or the one after. One row at a time, then, until past it.
        try:
            row = _first_from(conn, table, columns, after + 1)
        except sqlite3.DatabaseError:
            row = _next_readable(conn, table, columns, after, top)
            if row is not None:
                skipped = f"ids {after + 1}-{row[0] - 1}"
            else:
                skipped = f"ids after {after}" if after else "every row"
            report.unreadable.setdefault(table, []).append(skipped)
        if row is None:
            return
        after = row[0]
        yield row


def _first_from(
    conn: sqlite3.Connection, table: str, columns: str, start: int
) -> tuple[Any, ...] | None:
    row = conn.execute(
        f"SELECT {columns} FROM {table} WHERE id >= ? ORDER BY id LIMIT 1", (start,)
    ).fetchone()
    return tuple(row) if row is not None else None


def _next_readable(
    conn: sqlite3.Connection, table: str, columns: str, after: int, top: int | None
) -> tuple[Any, ...] | None:
    """The first row past the one after `after` that reads, probing ever further (a damaged
    page holds a run of consecutive ids)."""
    step = 2
    while top is not None and after + step <= top:
        try:
            return _first_from(conn, table, columns, after + step)
        except sqlite3.DatabaseError:
            step *= 2
    return None


def salvage(path: Path) -> Salvaged:
    """Replace the index at `path` with a fresh one holding its manifest and every cached
    vector that reads back intact; the old file is kept beside it as `<path>.damaged`.
    Indexing the files again then embeds only the chunks whose vectors were lost."""
    lock = WriterLock(path)
    if not lock.try_acquire():
        raise IndexBusy(f"another ragidx is writing the index {path}", hint="wait for it to finish")
    try:
        return _salvage(path)
    except OSError as exc:
        raise StoreError(f"cannot salvage the index {path}: {exc}") from exc
    finally:
        lock.release()


def _salvage(path: Path) -> Salvaged:
    report = IndexReport(path)
    fresh = Path(f"{path}.salvage")
    _remove(fresh)
    try:
        old = connect_read_only(path)
    except StoreError:  # a WAL that cannot be read: what the file holds is all there is
        old = connect_uri(path, "mode=ro&immutable=1")
    try:
        try:
            manifest = dict(old.execute("SELECT key, value FROM manifest").fetchall())
        except sqlite3.DatabaseError:
            manifest = {}
        dims = _dims(manifest)
        unit = manifest.get("normalize") == "true"
        store = SqliteStore.open(fresh)
        kept = dropped = 0
        try:
            batch: list[tuple[bytes, bytes]] = []
            rows = _rows_by_id(old, "embeddings", "id, key, vector", report)
            for _, key, vector in rows:
                if _sound(key, vector, dims, unit):
                    batch.append((key, vector))
                else:
                    dropped += 1
                if len(batch) >= _BATCH:
                    kept += _keep(store, batch)
            kept += _keep(store, batch)
            if dims:  # without the manifest, the next run's embedder claims the index
                with store.transaction() as conn:
                    write_manifest(conn, manifest)
        finally:
            store.close()
        roots = _roots(old)
    finally:
        old.close()
    moved = _aside(path)
    os.replace(fresh, path)
    return Salvaged(kept, dropped, report.unreadable.get("embeddings", []), moved, roots)


def _sound(key: object, vector: object, dims: int, unit: bool) -> bool:
    if not (isinstance(key, bytes) and len(key) == 16 and isinstance(vector, bytes)):
        return False
    if not dims:
        return True
    return not vectors_damaged([vector], dims, unit)[0]


def _keep(store: SqliteStore, batch: list[tuple[bytes, bytes]]) -> int:
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO embeddings (key, vector) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            batch,
        )
    count = len(batch)
    batch.clear()
    return count


def _roots(conn: sqlite3.Connection) -> list[str]:
    try:
        last = conn.execute("SELECT roots FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        roots = json.loads(last[0]) if last else []
    except (sqlite3.DatabaseError, ValueError):
        return []
    return [r for r in roots if isinstance(r, str)] if isinstance(roots, list) else []


def _dims(manifest: dict[Any, Any]) -> int:
    """The manifest's dims, or 0 where it cannot be told (the vectors go unchecked)."""
    dims = str(manifest.get("dims", ""))
    return int(dims) if dims.isdigit() else 0


def _aside(path: Path) -> Path:
    """Move the damaged index (with its WAL) to the first free `<path>.damaged[.N]`."""
    target = Path(f"{path}.damaged")
    n = 1
    while target.exists():
        n += 1
        target = Path(f"{path}.damaged.{n}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm", "-vectors"):
        if os.path.exists(f"{path}{suffix}"):
            os.replace(f"{path}{suffix}", f"{target}{suffix}")
    return target


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-vectors"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
