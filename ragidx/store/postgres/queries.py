"""Reading what a Postgres index holds: chunks in order (export), by id, by full-text match
and by vector (search). Only visible chunks are read (`chunks.visible`: a staging row's
chunks are not), and a stored vector that is not of unit length where the index holds unit
vectors is neither ranked nor exported, as in SQLite (`ragidx.store.queries`).

In: an autocommit connection from `connect` (search path on the index's schema, pgvector's
types registered). Out: plain values (`ChunkRow`, ids and scores). Errors: psycopg's own,
which `PostgresStore` turns into `StoreError`; `IndexDamaged` for a vector that does not
read back.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ragidx.errors import IndexDamaged
from ragidx.store.base import ChunkRow
from ragidx.store.damage import damaged_by_length, lengths
from ragidx.store.postgres.fulltext import fold

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EF_SEARCH", "chunks_by_id", "iter_chunks", "text_search", "vector_search"]

Conn = psycopg.Connection[tuple[Any, ...]]

EF_SEARCH = 200
"""HNSW's candidate list per query (pgvector's default is 40): recall@10 0.986 at 1,000,000
clustered vectors of 384 dims in 10 ms with the index's ef_construction of 128 (100: 0.949;
bench/search_scale.py), 0.999 or more at 10k-100k (docs/design/postgres.md §1)."""

_ROWS = 1024  # rows a server-side cursor hands over at a time
_CHUNK_COLUMNS = (
    "c.id, f.path, c.ordinal, c.text, c.input, c.char_start, c.char_end,"
    " c.line_start, c.line_end, c.heading_path, c.tokens, c.page_start, c.page_end, f.unit"
)
_VECTOR = 14  # after the chunk's columns


def _chunk_row(row: Sequence[Any]) -> ChunkRow:
    return ChunkRow.from_columns(row, row[9])


def iter_chunks(
    conn: Conn, location: str, *, vectors: bool, dims: int, unit: bool
) -> Iterator[tuple[ChunkRow, bytes | None]]:
    """Every visible chunk in path and ordinal order, streamed from a server-side cursor in
    a transaction of its own (a consistent snapshot however long the reader takes), with its
    vector's bytes (little-endian float32) where `vectors`. Raises `IndexDamaged` at a vector
    that is not `dims` long, or not of unit length where the index holds `unit` vectors
    (dims 0: nothing checked)."""
    import numpy as np

    join = "LEFT JOIN embeddings e ON e.id = c.embedding_id" if vectors else ""
    vector = ", e.vector" if vectors else ", NULL"
    query = (
        f"SELECT {_CHUNK_COLUMNS}{vector} FROM chunks c JOIN files f ON f.id = c.file_id {join}"
        " WHERE c.visible ORDER BY f.path, c.ordinal"
    )
    with conn.transaction(), conn.cursor(f"ragidx_chunks_{uuid.uuid4().hex}", binary=True) as cur:
        cur.itersize = _ROWS
        cur.execute(query)
        while batch := cur.fetchmany(_ROWS):
            blobs = [None if r[_VECTOR] is None else _le_bytes(r[_VECTOR]) for r in batch]
            stored = [(r[1], b) for r, b in zip(batch, blobs, strict=True) if b is not None]
            if dims and stored:
                matrix = [np.frombuffer(b, "<f4") for _, b in stored]
                for (path, _), v in zip(stored, matrix, strict=True):
                    if len(v) != dims:
                        _damaged(location, path)
                bad = damaged_by_length(lengths(np.stack(matrix)), unit)
                if bad.any():
                    _damaged(location, stored[int(bad.argmax())][0])
            for row, blob in zip(batch, blobs, strict=True):
                yield _chunk_row(row), blob


def _le_bytes(vector: Any) -> bytes:
    """pgvector's `Vector` (or a numpy array) as little-endian float32 bytes."""
    import numpy as np

    array = vector.to_numpy() if hasattr(vector, "to_numpy") else np.asarray(vector)
    return bytes(array.astype("<f4").tobytes())


def _damaged(location: str, path: str) -> None:
    raise IndexDamaged(
        f"the index {location} is damaged (a vector of {path} does not read back)",
        hint="index the file again (`ragidx index --reset` rebuilds every vector)",
    )


def chunks_by_id(conn: Conn, ids: Iterable[int]) -> dict[int, ChunkRow]:
    """The visible chunks among `ids`, by id; ids of chunks gone are left out."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = conn.execute(
        f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN files f ON f.id = c.file_id"
        " WHERE c.id = ANY(%s) AND c.visible",
        (wanted,),
    )
    return {row[0]: _chunk_row(row) for row in rows}


def text_search(conn: Conn, terms: Sequence[str], limit: int) -> list[tuple[int, float]]:
    """Chunk ids and `ts_rank` scores (higher is better) of the visible chunks that hold any
    of `terms`, best first. Each term, folded as chunk texts were (`fold`), is one parameter
    of `phraseto_tsquery`: its words must stand next to each other, and nothing of a query
    is ever read as tsquery syntax."""
    phrases = [p for p in (fold(t).strip() for t in terms) if p]
    if not phrases or limit <= 0:
        return []
    query = sql.SQL(" || ").join(sql.SQL("phraseto_tsquery('simple', %s)") for _ in phrases)
    rows = conn.execute(
        sql.SQL(
            "SELECT c.id, ts_rank(c.tsv, q) AS score FROM chunks c, (SELECT {}) AS t(q)"
            " WHERE c.visible AND c.tsv @@ q ORDER BY score DESC, c.id LIMIT %s"
        ).format(query),
        (*phrases, limit),
    )
    return [(int(i), float(score)) for i, score in rows]


def vector_search(
    conn: Conn,
    query: np.ndarray[Any, np.dtype[np.float32]],
    limit: int,
    *,
    unit: bool,
    on_damaged: Callable[[str, int], None] | None = None,
) -> list[tuple[int, float]]:
    """Chunk ids and cosine similarities of the visible chunks nearest `query`, best first.

    The HNSW index is on the cache (`embeddings`), whose vectors staged, held or unused
    chunks may be the only users of: the scan goes on past those (`iterative_scan`) until
    `limit` visible chunks are found. `relaxed_order` lets it hand them over a little out of
    order: twice `limit` are fetched and re-sorted here. A vector that is not of unit length
    where the index holds `unit` vectors is not ranked: `on_damaged(path, count)` hears of
    them, file by file."""
    import numpy as np

    if limit <= 0:
        return []
    q = np.asarray(query, dtype=np.float32)
    fetch = 2 * limit
    damaged: Counter[str] = Counter()
    found: list[tuple[int, float]] = []
    with conn.transaction():
        # `set_config(..., true)` = SET LOCAL: the settings end with this transaction.
        conn.execute(
            "SELECT set_config('hnsw.ef_search', %s, true),"
            " set_config('hnsw.iterative_scan', 'relaxed_order', true)",
            (str(min(max(EF_SEARCH, fetch), 1000)),),
        )
        rows = conn.execute(
            "SELECT c.id, f.path, e.vector <=> %(q)s AS distance, vector_norm(e.vector)"
            " FROM embeddings e JOIN chunks c ON c.embedding_id = e.id AND c.visible"
            " JOIN files f ON f.id = c.file_id ORDER BY distance LIMIT %(n)s",
            {"q": q, "n": fetch},
        ).fetchall()
    norms = np.array([r[3] for r in rows], dtype=np.float64)
    bad = damaged_by_length(norms, unit) if rows else np.zeros(0, dtype=bool)
    for (chunk_id, path, distance, _), wrong in zip(rows, bad, strict=True):
        if wrong:
            damaged[path] += 1
        else:
            # A zero vector (a featureless chunk) has no angle: NaN here, 0 in SQLite.
            found.append((int(chunk_id), 0.0 if distance != distance else 1.0 - distance))
    if damaged and on_damaged is not None:
        for path, count in damaged.items():
            on_damaged(path, count)
    found.sort(key=lambda hit: (-hit[1], hit[0]))
    return found[:limit]
