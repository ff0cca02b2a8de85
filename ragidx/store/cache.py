"""The embedding cache: one vector per distinct input of a vector space, shared by every
chunk with that input, kept across runs and resets of a file.

A key is the vector space and the exact input, hashed (`embedding_key`); the caller makes
it, so the store needs to know nothing of embedders. Vectors are cached (`put`) in the
transaction that commits the first file using them, before it. A vector no chunk uses any
more is unused: `stats` counts those and `gc` drops them. Chunks of staging rows count as
users (`ragidx.store.staging`): what was paid for stays until its file is indexed.
"""

from __future__ import annotations

import hashlib
import sqlite3

from ragidx.store.base import Embeddings
from ragidx.store.rows import IN_LIMIT

__all__ = ["cached", "count_unused", "drop_unused", "embedding_key", "put"]

_UNUSED = "NOT EXISTS (SELECT 1 FROM chunks c WHERE c.embedding_id = e.id)"
"""SQL: the cached vector `e` is one no chunk refers to."""


def embedding_key(provider: str, model: str, dims: int, text: str) -> bytes:
    """The embedding cache's key: the vector space and the exact input, hashed."""
    return hashlib.blake2b(f"{provider}\0{model}\0{dims}\0{text}".encode(), digest_size=16).digest()


def put(conn: sqlite3.Connection, e: Embeddings) -> None:
    """Cache vectors by key (little-endian float32); a key already cached keeps its own."""
    conn.executemany(
        "INSERT INTO embeddings (key, vector) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        zip(e.keys, (v.astype("<f4").tobytes() for v in e.vectors), strict=True),
    )


def cached(conn: sqlite3.Connection, keys: list[bytes]) -> set[bytes]:
    """Which of `keys` the cache holds a vector for."""
    found: set[bytes] = set()
    for start in range(0, len(keys), IN_LIMIT):
        part = keys[start : start + IN_LIMIT]
        marks = ",".join("?" * len(part))
        rows = conn.execute(f"SELECT key FROM embeddings WHERE key IN ({marks})", part)
        found.update(row[0] for row in rows)
    return found


def count_unused(conn: sqlite3.Connection) -> int:
    """How many cached vectors no chunk uses: what `drop_unused` would drop."""
    (unused,) = conn.execute(f"SELECT count(*) FROM embeddings e WHERE {_UNUSED}").fetchone()
    return int(unused)


def drop_unused(conn: sqlite3.Connection) -> int:
    """Delete the cached vectors no chunk uses; returns how many went."""
    return conn.execute(f"DELETE FROM embeddings AS e WHERE {_UNUSED}").rowcount
