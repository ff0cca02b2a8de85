"""The embedding cache's vectors in a raw float32 file beside the index, `<db>-vectors`,
memory-mapped for search: an exact scan over it answers 30-70x faster than reading every
BLOB out of SQLite (bench/README.md, "Vector index for SQLite").

The file is a copy, never the truth: SQLite holds the vectors; the file is caught up or
rebuilt from it (`VectorFile.sync`) after each commit, after `gc` and at each search.

Layout: a 64-byte header, then one row of `dims` little-endian float32 per embedding id
1..count (row i holds id i + 1): the vector divided by its length, so that a dot product is
the cosine; zeros for an id no row has (deleted, or never used); NaN for a vector that did
not survive in the database (the wrong length, not finite, not of unit length where the
index holds unit vectors), which search reports and never ranks.

The header names the state of the database it copies: the `vector_state` row's random nonce
and generation, which the triggers of its migration (8) change in the transaction of anything
that deletes or rewrites an embedding (gc, a reset, a salvage), and `count` with a hash of
the key of embedding `count`. `embeddings.id` is reused once the highest rows are deleted;
the deletion changes the generation, and a database rolled back under the file (a power
loss under `synchronous = NORMAL`) changes the key. A header that does not match, a file
shorter than its header says, a torn header (its CRC), other dims or another `normalize`:
the file is rebuilt, never trusted.

Concurrency: rows below `count` never change in a file. An append writes the rows past
`count`, syncs them, then the header; a rebuild writes a hidden temporary file and
`os.replace`s it. A reader that holds a map sees one state or the other, never a vector
under the wrong id. Where the directory cannot be written (a read-only mount), the copy is
kept in memory for the store's lifetime instead. `OSError`s about the file never escape
`sync`; SQLite's errors do (the caller maps them).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mmap
import os
import sqlite3
import stat
import struct
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragidx.store.damage import damaged_by_length, lengths

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SUFFIX", "Matrix", "VectorFile", "vectors_path"]

SUFFIX = "-vectors"
_MAGIC = b"RAGIDXVF"
_VERSION = 1
_HEAD = struct.Struct("<8sIIB3x8sqq8s")  # magic, version, dims, unit, nonce, gen, count, last
_HEADER_BYTES = 64
_BLOCK_ROWS = 8192


def vectors_path(db: Path) -> Path:
    return Path(f"{db}{SUFFIX}")


@dataclass(frozen=True, slots=True)
class _State:
    """What a file must match: the database's vector space and its `vector_state`."""

    dims: int
    unit: bool
    nonce: bytes
    generation: int


@dataclass(frozen=True, slots=True)
class Matrix:
    """Rows for embedding ids 1..count, in consecutive parts (a map, then rows in memory)."""

    dims: int
    parts: tuple[np.ndarray[Any, np.dtype[np.float32]], ...]

    @property
    def count(self) -> int:
        return sum(len(p) for p in self.parts)

    def scores(self, q: np.ndarray[Any, np.dtype[np.float32]]) -> np.ndarray[Any, Any]:
        import numpy as np

        if not self.parts:
            return np.empty(0, dtype=np.float32)
        return np.concatenate([p @ q for p in self.parts])


class VectorFile:
    """The copy of one index's vectors, and what this process has mapped or built of it."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = None if str(db) == ":memory:" else vectors_path(db)
        self._mapped: tuple[tuple[int, int, int], Any] | None = None  # (dev, ino, count), map
        self._memory: tuple[_State, bytes, Matrix] | None = None  # (state, last key, rows)

    def sync(self, conn: sqlite3.Connection, *, answer: bool = True) -> Matrix | None:
        """The vectors as the database holds them in the caller's read transaction, the
        file caught up or rebuilt where needed; where it cannot be written, rows built in
        memory. None where the index has no vector space yet, or without `answer` (a
        writer following its commit: the file is brought up to date, nothing is mapped or
        built in memory, and numpy is not imported unless rows are written)."""
        state = _state(conn)
        if state is None:
            return None
        (top,) = conn.execute("SELECT coalesce(max(id), 0) FROM embeddings").fetchone()
        if self.path is not None:
            with contextlib.suppress(OSError):
                return self._from_file(conn, state, int(top), answer)
        return self._in_memory(conn, state, int(top)) if answer else None

    def remove(self) -> None:
        """Delete the file (the embeddings it holds went); the next `sync` builds it anew."""
        self.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)

    def close(self) -> None:
        self._mapped = self._memory = None

    def _from_file(
        self, conn: sqlite3.Connection, state: _State, top: int, answer: bool
    ) -> Matrix | None:
        assert self.path is not None
        fd, writable = _open(self.path)
        try:
            count = _valid_count(conn, fd, state, top) if fd >= 0 else None
            if count is None:
                if fd >= 0:
                    os.close(fd)
                    fd = -1
                self._rebuild(conn, state, top)  # OSError where it cannot be written
                fd, _ = _open(self.path)
                count = top
            if not answer:
                if count < top and writable:
                    _append(conn, fd, state, count, top)
                return None
            mapped = self._map(fd, state.dims, count)
            if count == top:
                return mapped
            if writable:
                _append(conn, fd, state, count, top)
                return self._map(fd, state.dims, top)
            tail = (block for _, block in _blocks(conn, state, count, top))
            return Matrix(state.dims, (*mapped.parts, *tail))
        finally:
            if fd >= 0:
                os.close(fd)

    def _rebuild(self, conn: sqlite3.Connection, state: _State, top: int) -> None:
        assert self.path is not None
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            # Whoever may read the index may read its vectors: its mode, not mkstemp's 0600.
            os.fchmod(fd, stat.S_IMODE(os.stat(self.db).st_mode))
            _append(conn, fd, state, 0, top)
            os.close(fd)
            fd = -1
            os.replace(tmp, self.path)
        finally:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _map(self, fd: int, dims: int, count: int) -> Matrix:
        """Rows 1..count of the file open at `fd` (never by its name again: it may have been
        replaced since `fd` was checked)."""
        import numpy as np

        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino, count)
        if self._mapped is None or self._mapped[0] != key:
            rows: Any = np.empty((0, dims), dtype=np.float32)
            if count:
                size = _HEADER_BYTES + count * dims * 4
                mapped = mmap.mmap(fd, size, prot=mmap.PROT_READ)
                rows = np.frombuffer(mapped, dtype="<f4", count=count * dims, offset=_HEADER_BYTES)
                rows = rows.reshape(count, dims)
            self._mapped = (key, rows)
        return Matrix(dims, (self._mapped[1],))

    def _in_memory(self, conn: sqlite3.Connection, state: _State, top: int) -> Matrix:
        """The rows built here and kept: where the file cannot be written (or mapped)."""
        kept = self._memory
        if kept is not None and kept[0] == state and kept[2].count <= top:
            matrix, count = kept[2], kept[2].count
            if count == 0 or _last_key(conn, count) == kept[1]:
                if count < top:
                    tail = [block for _, block in _blocks(conn, state, count, top)]
                    matrix = Matrix(state.dims, (*matrix.parts, *tail))
                self._memory = (state, _last_key(conn, top), matrix)
                return matrix
        matrix = Matrix(state.dims, tuple(b for _, b in _blocks(conn, state, 0, top)))
        self._memory = (state, _last_key(conn, top), matrix)
        return matrix


def _state(conn: sqlite3.Connection) -> _State | None:
    manifest = dict(conn.execute("SELECT key, value FROM manifest").fetchall())
    dims = str(manifest.get("dims") or "")
    if not dims.isdigit() or not int(dims):
        return None
    nonce, generation = conn.execute("SELECT nonce, generation FROM vector_state").fetchone()
    return _State(int(dims), manifest.get("normalize") == "true", bytes(nonce), int(generation))


def _open(path: Path) -> tuple[int, bool]:
    """The file open for appending, or for reading where it cannot be written; -1 where
    there is none."""
    try:
        return os.open(path, os.O_RDWR), True
    except FileNotFoundError:
        return -1, False
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
    return os.open(path, os.O_RDONLY), False


def _last_key(conn: sqlite3.Connection, count: int) -> bytes:
    """A hash of the key of embedding `count`: changes where the database was rolled back
    under the file and the id used again."""
    if count == 0:
        return bytes(8)
    row = conn.execute("SELECT key FROM embeddings WHERE id = ?", (count,)).fetchone()
    if row is None:
        return b"\xff" * 8  # matches no header: a file past the database is rebuilt
    return hashlib.blake2b(bytes(row[0]), digest_size=8).digest()


def _header(state: _State, count: int, last: bytes) -> bytes:
    head = _HEAD.pack(
        _MAGIC, _VERSION, state.dims, state.unit, state.nonce, state.generation, count, last
    )
    return (head + struct.pack("<I", zlib.crc32(head))).ljust(_HEADER_BYTES, b"\0")


def _valid_count(conn: sqlite3.Connection, fd: int, state: _State, top: int) -> int | None:
    """How many rows the file at `fd` holds of the database as it is; None where it cannot
    be trusted."""
    data = os.pread(fd, _HEADER_BYTES, 0)
    if len(data) < _HEADER_BYTES:
        return None
    head = data[: _HEAD.size]
    (crc,) = struct.unpack_from("<I", data, _HEAD.size)
    if zlib.crc32(head) != crc:
        return None
    magic, version, dims, unit, nonce, generation, count, last = _HEAD.unpack(head)
    if (magic, version) != (_MAGIC, _VERSION) or count > top:
        return None
    if _State(dims, bool(unit), nonce, generation) != state:
        return None
    if os.fstat(fd).st_size < _HEADER_BYTES + count * dims * 4:
        return None
    if last != _last_key(conn, count):
        return None
    return int(count)


def _append(conn: sqlite3.Connection, fd: int, state: _State, count: int, top: int) -> None:
    """Write rows count+1..top, sync them, then the header that counts them."""
    row_bytes = state.dims * 4
    for start, block in _blocks(conn, state, count, top):
        data = block.tobytes()
        offset, done = _HEADER_BYTES + start * row_bytes, 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], offset + done)
    os.fdatasync(fd)
    os.pwrite(fd, _header(state, top, _last_key(conn, top)), 0)


def _blocks(
    conn: sqlite3.Connection, state: _State, count: int, top: int
) -> Iterator[tuple[int, np.ndarray[Any, np.dtype[np.float32]]]]:
    """Rows count+1..top as file rows (see the module's docstring), in blocks: each block's
    first row index (id - 1) and its rows."""
    import numpy as np

    dims, size = state.dims, state.dims * 4
    for start in range(count, top, _BLOCK_ROWS):
        end = min(start + _BLOCK_ROWS, top)
        block = np.zeros((end - start, dims), dtype=np.float32)
        rows = conn.execute(
            "SELECT id, vector FROM embeddings WHERE id > ? AND id <= ?", (start, end)
        ).fetchall()
        good = [(i, v) for i, v in rows if len(v) == size]
        if len(good) < len(rows):
            bad_ids = np.array([i for i, v in rows if len(v) != size], dtype=np.int64)
            block[bad_ids - start - 1] = np.nan
        if good:
            at = np.fromiter((i for i, _ in good), dtype=np.int64, count=len(good)) - start - 1
            matrix = np.frombuffer(b"".join(v for _, v in good), dtype="<f4").reshape(-1, dims)
            norms = lengths(matrix)
            bad = damaged_by_length(norms, state.unit)
            with np.errstate(over="ignore", invalid="ignore"):
                block[at] = matrix / np.maximum(norms, 1e-12)[:, None]
            block[at[bad]] = np.nan
        yield start, block
