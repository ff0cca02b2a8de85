"""A damaged index: SQLite's errors turned into `StoreError`s that say what happened, and
stored vectors checked before anything ranks by them.

A page of the file overwritten (a bad disk, a copy cut short, a stray `dd`) makes SQLite
raise "database disk image is malformed" wherever a query touches it; a page holding the
end of a vector blob is not checked by SQLite at all, and reads back as random floats.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragidx.errors import IndexDamaged, StoreError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "damage_hint",
    "damaged_by_length",
    "is_damage",
    "lengths",
    "salvage_hint",
    "store_error",
    "vectors_damaged",
    "write_error",
]

_READ_ONLY = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether `exc` says the file is corrupt, not that it is busy, missing or read-only."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB":
        return True
    text = str(exc)
    # Python's own error for a TEXT value that is not UTF-8 carries no SQLite code.
    return "malformed" in text or text.startswith("Could not decode to UTF-8")


def damage_hint(path: Path | str) -> str:
    return f"`ragidx doctor --db {path}` says which files are affected; {salvage_hint(path)}"


def salvage_hint(path: Path | str) -> str:
    return (
        f"`ragidx doctor --db {path} --salvage` starts a fresh index that keeps the intact"
        " cached vectors; then index your files again"
    )


def store_error(path: Path | str, exc: sqlite3.Error, doing: str = "cannot read") -> StoreError:
    """The one mapping of SQLite's errors: `IndexDamaged` for a corrupt file, else a
    `StoreError` that names the index (and says why a read-only one cannot be written)."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    if is_damage(exc):
        text = str(exc)
        if text.startswith("Could not decode"):
            text = "a stored text is not valid UTF-8"  # the message would quote the bytes
        hint = damage_hint(path)
        if name == "SQLITE_NOTADB":  # or never was one: its first page says nothing else
            hint = f"is {path} the index? If it is, {salvage_hint(path)}"
        return IndexDamaged(f"the index {path} is damaged ({text})", hint=hint)
    read_only = (
        "the index or its directory cannot be written here: search, stats and export can"
        " read it; to index, copy it somewhere writable or pass --db"
    )
    hint_ro = read_only if name.startswith(_READ_ONLY) else None
    return StoreError(f"{doing} the index {path}: {exc}", hint=hint_ro)


def write_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """A failed write; the transaction was rolled back, so the index is as it was."""
    if is_damage(exc):
        return store_error(path, exc)
    name = getattr(exc, "sqlite_errorname", "")
    hint = None
    if name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR"):
        hint = (
            "free some disk space (or raise the file size limit) and run again;"
            " everything committed so far is kept"
        )
    return StoreError(f"cannot write to the index {path}: {exc}", hint=hint)


def vectors_damaged(blobs: list[bytes], dims: int, unit: bool) -> np.ndarray[Any, Any]:
    """Which stored vectors did not survive: the wrong length in bytes, or a length (norm)
    that `damaged_by_length` refuses."""
    import numpy as np

    bad = np.fromiter((len(b) != dims * 4 for b in blobs), dtype=bool, count=len(blobs))
    sound = [b for b, wrong in zip(blobs, bad, strict=True) if not wrong]
    if sound:
        matrix = np.frombuffer(b"".join(sound), dtype="<f4").reshape(len(sound), dims)
        bad[~bad] = damaged_by_length(lengths(matrix), unit)
    return bad


def lengths(matrix: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Each row's length; inf where random bits overflow it, without numpy's warning."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        found: np.ndarray[Any, Any] = np.linalg.norm(matrix, axis=1)
    return found


def damaged_by_length(found: np.ndarray[Any, Any], unit: bool) -> np.ndarray[Any, Any]:
    """Rows whose length says they are not what was stored: not finite (a value that is
    not, or so large its length overflows), or, where the index stores unit vectors, other
    than 1. A zero vector is left alone: it is what a featureless chunk embeds to."""
    import numpy as np

    bad: np.ndarray[Any, Any] = ~np.isfinite(found)
    if unit:
        bad |= (np.abs(found - 1) > 1e-3) & (found != 0)
    return bad
