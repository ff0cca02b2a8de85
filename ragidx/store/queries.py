"""Reading what is indexed: chunks in order (export), by id, by full-text match and by
vector (search, exact: over the vector file beside the index, `ragidx.store.vector_file`,
or over the BLOBs). Staging rows are never read (`staging.visible`; the `vectors` view
keeps to them too), and a stored vector that does not read back is never ranked or
exported."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragidx.errors import IndexDamaged
from ragidx.store.base import ChunkRow
from ragidx.store.damage import damage_hint, damaged_by_length, lengths, vectors_damaged
from ragidx.store.rows import IN_LIMIT
from ragidx.store.staging import visible
from ragidx.store.vector_file import Matrix, VectorFile

if TYPE_CHECKING:
    import numpy as np

__all__ = ["chunks_by_id", "fts5_match", "iter_chunks", "text_search", "vector_search"]

_VECTOR_SCAN_ROWS = 4096
_CHUNK_COLUMNS = (
    "c.id, f.path, c.ordinal, c.text, c.input, c.char_start, c.char_end,"
    " c.line_start, c.line_end, c.heading_path, c.tokens, c.page_start, c.page_end, f.unit"
)

_VECTOR = 14  # after the chunk's columns


def _chunk_row(row: tuple[Any, ...]) -> ChunkRow:
    return ChunkRow.from_columns(row, json.loads(row[9]))


def iter_chunks(
    conn: sqlite3.Connection, path: Path, *, vectors: bool, dims: int, unit: bool
) -> Iterator[tuple[ChunkRow, bytes | None]]:
    """Every chunk in path and ordinal order, streamed from a cursor, with its vector's
    bytes where `vectors`. Raises `IndexDamaged` at a vector that is not `dims` long, or
    not of unit length where the index holds `unit` vectors (dims 0: nothing checked)."""
    # The cache's table, not the `vectors` view: SQLite would copy the view whole first.
    join = "LEFT JOIN embeddings e ON e.id = c.embedding_id" if vectors else ""
    blob = ", e.vector" if vectors else ", NULL"
    rows = conn.execute(
        f"SELECT {_CHUNK_COLUMNS}{blob} FROM chunks c JOIN files f ON f.id = c.file_id {join}"
        f" WHERE {visible('f')} ORDER BY f.path, c.ordinal"
    )
    while batch := rows.fetchmany(_VECTOR_SCAN_ROWS // 16):
        stored = [row for row in batch if row[_VECTOR] is not None]
        if (
            dims
            and stored
            and (bad := vectors_damaged([r[_VECTOR] for r in stored], dims, unit)).any()
        ):
            damaged = stored[int(bad.argmax())][1]
            raise IndexDamaged(
                f"the index {path} is damaged (a vector of {damaged} does not read back)",
                hint=damage_hint(path),
            )
        for row in batch:
            yield _chunk_row(row), row[_VECTOR]


def chunks_by_id(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, ChunkRow]:
    wanted = list(ids)
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    rows = conn.execute(
        f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id"
        f" WHERE c.id IN ({marks}) AND {visible('f')}",
        wanted,
    )
    return {row[0]: _chunk_row(row) for row in rows}


def fts5_match(terms: Sequence[str]) -> str:
    """An FTS5 expression matching any of `terms`, each a quoted phrase, so no FTS5 syntax
    (`OR`, `NEAR`, `*`, columns) in a query leaks in."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def text_search(conn: sqlite3.Connection, match: str, limit: int) -> list[tuple[int, float]]:
    """Chunk ids and BM25 scores (higher is better) for an FTS5 MATCH expression."""
    rows = conn.execute(
        "SELECT t.rowid, bm25(chunks_fts) FROM chunks_fts t"
        " JOIN chunks c ON c.id = t.rowid JOIN files f ON f.id = c.file_id"
        f" WHERE chunks_fts MATCH ? AND {visible('f')} ORDER BY bm25(chunks_fts) LIMIT ?",
        (match, limit),
    )
    return [(rowid, -score) for rowid, score in rows]


def vector_search(
    conn: sqlite3.Connection,
    query: np.ndarray[Any, np.dtype[np.float32]],
    limit: int,
    *,
    unit: bool,
    on_damaged: Callable[[str, int], None] | None = None,
    copy: VectorFile | None = None,
) -> list[tuple[int, float]]:
    """Chunk ids and cosine similarities, best first, exact. With `copy`, every cached
    vector is scored over the file beside the index (caught up first, in the same read
    transaction as the chunks the best are mapped to); without one, or where its vectors
    are not the query's length, vectors are read from SQLite in slices. A vector that did
    not survive in the file (the wrong length, or not of unit length where the index holds
    `unit` vectors) is not ranked: `on_damaged(path, count)` hears of them, file by file."""
    import numpy as np

    q = query.astype(np.float32)
    q /= max(float(np.linalg.norm(q)), 1e-12)
    with _reading(conn):
        matrix = copy.sync(conn) if copy is not None else None
        if matrix is None or matrix.dims != len(q):
            return _scan(conn, q, limit, unit=unit, on_damaged=on_damaged)
        return _rank(conn, matrix, q, limit, on_damaged)


@contextlib.contextmanager
def _reading(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction (one snapshot), unless the caller holds one."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _rank(
    conn: sqlite3.Connection,
    matrix: Matrix,
    q: np.ndarray[Any, np.dtype[np.float32]],
    limit: int,
    on_damaged: Callable[[str, int], None] | None,
) -> list[tuple[int, float]]:
    """Score every row; map the best embeddings to the visible chunks that use them (one
    embedding may serve several chunks, or only staged and unused ones), taking more of
    the best until `limit` chunks come back or every row has been looked at."""
    import numpy as np

    scores = matrix.scores(q)
    damaged = np.isnan(scores)
    if damaged.any():
        if on_damaged is not None:
            for path, count in _using(conn, (np.flatnonzero(damaged) + 1).tolist()).items():
                on_damaged(path, count)
        scores[damaged] = -np.inf
    rows, want = len(scores), min(len(scores), 2 * limit + 16)
    hits: list[tuple[int, int]] = []
    while limit > 0 and want > 0:
        best = np.argpartition(-scores, want - 1)[:want] if want < rows else np.arange(rows)
        best = best[scores[best] > -np.inf]
        hits = _chunks_using(conn, (best + 1).tolist())
        if len(hits) >= limit or want >= rows:
            break
        want = min(rows, want * 4)
    ranked = sorted((-float(scores[e - 1]), c) for c, e in hits)[:limit]
    return [(c, -s) for s, c in ranked]


def _chunks_using(conn: sqlite3.Connection, embedding_ids: list[int]) -> list[tuple[int, int]]:
    """(chunk id, embedding id) of the visible chunks that use `embedding_ids`."""
    found: list[tuple[int, int]] = []
    for start in range(0, len(embedding_ids), IN_LIMIT):
        part = embedding_ids[start : start + IN_LIMIT]
        found += conn.execute(
            "SELECT c.id, c.embedding_id FROM chunks c JOIN files f ON f.id = c.file_id"
            f" WHERE c.embedding_id IN ({','.join('?' * len(part))}) AND {visible('f')}",
            part,
        ).fetchall()
    return found


def _using(conn: sqlite3.Connection, embedding_ids: list[int]) -> Counter[str]:
    """How many visible chunks of each file use `embedding_ids`."""
    found: Counter[str] = Counter()
    for start in range(0, len(embedding_ids), IN_LIMIT):
        part = embedding_ids[start : start + IN_LIMIT]
        found.update(
            dict(
                conn.execute(
                    "SELECT f.path, count(*) FROM chunks c JOIN files f ON f.id = c.file_id"
                    f" WHERE c.embedding_id IN ({','.join('?' * len(part))}) AND {visible('f')}"
                    " GROUP BY f.path",
                    part,
                )
            )
        )
    return found


def _scan(
    conn: sqlite3.Connection,
    q: np.ndarray[Any, np.dtype[np.float32]],
    limit: int,
    *,
    unit: bool,
    on_damaged: Callable[[str, int], None] | None,
) -> list[tuple[int, float]]:
    """`vector_search` without the file: every vector read from SQLite, in slices."""
    import numpy as np

    best_ids = np.empty(0, dtype=np.int64)
    best_scores = np.empty(0, dtype=np.float32)
    damaged: list[int] = []
    cursor = conn.execute("SELECT chunk_id, vector FROM vectors")
    size = 4 * len(q)
    while rows := cursor.fetchmany(_VECTOR_SCAN_ROWS):
        if any(len(r[1]) != size for r in rows):
            damaged += [r[0] for r in rows if len(r[1]) != size]
            rows = [r for r in rows if len(r[1]) == size]
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(-1, len(q))
        norms = lengths(matrix)
        if (bad := damaged_by_length(norms, unit)).any():
            damaged += ids[bad].tolist()
            ids, matrix, norms = ids[~bad], matrix[~bad], norms[~bad]
        scores = (matrix @ q) / np.maximum(norms, 1e-12)
        best_ids = np.concatenate([best_ids, ids])
        best_scores = np.concatenate([best_scores, scores.astype(np.float32)])
        if len(best_ids) > limit:
            keep = np.argpartition(-best_scores, limit)[:limit]
            best_ids, best_scores = best_ids[keep], best_scores[keep]
    if damaged and on_damaged is not None:
        for path, count in _paths_of(conn, damaged).items():
            on_damaged(path, count)
    order = np.argsort(-best_scores, kind="stable")
    return [(int(best_ids[i]), float(best_scores[i])) for i in order]


def _paths_of(conn: sqlite3.Connection, chunk_ids: list[int]) -> Counter[str]:
    """How many of `chunk_ids` each file holds."""
    found: Counter[str] = Counter()
    for start in range(0, len(chunk_ids), IN_LIMIT):
        part = chunk_ids[start : start + IN_LIMIT]
        found.update(
            dict(
                conn.execute(
                    "SELECT f.path, count(*) FROM chunks c JOIN files f ON f.id = c.file_id"
                    f" WHERE c.id IN ({','.join('?' * len(part))}) GROUP BY f.path",
                    part,
                )
            )
        )
    return found
