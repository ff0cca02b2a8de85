"""The manifest: the vector space an index was built with (provider, model, dims and the
settings that change vectors, `normalize`), and the settings of the run that recorded it.

An index holds vectors of one space only. A run checks the space it would use against the
recorded one before it embeds anything, and records its own with its first stored vectors
(`SqliteStore.claim_manifest`), in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

from ragidx.errors import ManifestMismatch
from ragidx.store.damage import damaged_by_length, lengths

__all__ = ["check_space", "read_manifest", "write_manifest"]


def read_manifest(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM manifest").fetchall())


def write_manifest(conn: sqlite3.Connection, rows: Mapping[str, str]) -> None:
    """Record `rows`, each key's value replacing the one recorded."""
    conn.executemany(
        "INSERT INTO manifest (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        rows.items(),
    )


def check_space(
    conn: sqlite3.Connection, path: Path, have: dict[str, str], wanted: Mapping[str, str | None]
) -> None:
    """Raise `ManifestMismatch` where a value of `wanted` differs from the one recorded in
    `have` (a value of None, or a key not recorded, matches anything)."""
    have = _with_legacy_binding(conn, have, wanted)
    for key, value in wanted.items():
        if value is not None and key in have and have[key] != value:
            raise ManifestMismatch(
                f"the index {path} was built with {key} {have[key]!r}, not {value!r}",
                hint="use the same embedder settings, or pass --reset to start over",
            )


def _with_legacy_binding(
    conn: sqlite3.Connection, have: dict[str, str], wanted: Mapping[str, str | None]
) -> dict[str, str]:
    """An index from before `normalize` was recorded stored vectors as servers sent them:
    whether it holds unit vectors is read off a sample of them (none of which a unit index
    would call damaged by its length)."""
    if "normalize" not in wanted or "normalize" in have or "dims" not in have:
        return have
    import numpy as np

    blobs = [blob for (blob,) in conn.execute("SELECT vector FROM embeddings LIMIT 256")]
    if not blobs:
        return have
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1)
    unit = not damaged_by_length(lengths(matrix), unit=True).any()
    return {**have, "normalize": "true" if unit else "false"}
