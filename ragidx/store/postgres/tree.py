"""What the Postgres index holds of a tree, as a run plans it: a file's record and stamp, a
directory's stamps, the files and directories under a root, the files that failed; and
`stamp_dirs`, which keeps directory stamps up to date (`ragidx.store.stamps` says why).

Paths compare in byte order (`COLLATE "C"` columns), so the range scans below mean what
SQLite's do. Staging rows have the directory '' and `stage` set: every query by path keeps
to `stage IS NULL`. Every function raises psycopg's errors; the store maps them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from ragidx.store.base import FileRecord
from ragidx.store.postgres.rows import Conn
from ragidx.store.stamps import STAMP_COLUMNS, DirStamp, Stamp, dir_stamp, dir_stamp_row

__all__ = [
    "count_under",
    "dirs_under",
    "failed_files",
    "lookup",
    "paths_under",
    "read_dir_stamp",
    "read_stamp",
    "read_stamps_in_dir",
    "stamp_dirs",
]

_FILE_COLUMNS = "path, size, mtime_ns, content_hash, status, reason, chunking, chunks"
_OWN = "stage IS NULL"


def lookup(conn: Conn, path: str) -> FileRecord | None:
    row = conn.execute(
        f"SELECT {_FILE_COLUMNS} FROM files WHERE path = %s AND {_OWN}", (path,)
    ).fetchone()
    return FileRecord(*row) if row else None


def read_stamp(conn: Conn, path: str) -> Stamp | None:
    row = conn.execute(
        f"SELECT {STAMP_COLUMNS} FROM files WHERE path = %s AND {_OWN}", (path,)
    ).fetchone()
    return Stamp(*row) if row else None


def read_stamps_in_dir(conn: Conn, directory: str) -> dict[str, Stamp]:
    rows = conn.execute(
        f"SELECT {STAMP_COLUMNS} FROM files WHERE dir = %s AND {_OWN}", (directory,)
    )
    new = tuple.__new__  # `_make` without its Python frame: a row for every file of a tree
    return {row[0]: new(Stamp, row) for row in rows}


def read_dir_stamp(conn: Conn, directory: str) -> DirStamp | None:
    row = conn.execute(
        "SELECT chunking, digest, chunks, notes FROM dir_stamps WHERE dir = %s", (directory,)
    ).fetchone()
    return dir_stamp((row[0], row[1], bytes(row[2]), row[3])) if row else None


def count_under(conn: Conn, root: str, limit: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM files WHERE (dir = %s OR (dir > %s AND dir < %s))"
        f" AND {_OWN} LIMIT %s) AS f",
        (root, root + "/", root + "0", limit),
    ).fetchone()
    return int(row[0]) if row else 0


def paths_under(conn: Conn, root: str) -> Iterator[str]:
    """The files below the directory `root`, in path order, read in pages: a tree may hold
    millions, and a server-side cursor would hold a transaction open meanwhile."""
    after, end = root + "/", root + "0"
    while True:
        rows = conn.execute(
            f"SELECT path FROM files WHERE path > %s AND path < %s AND {_OWN}"
            " ORDER BY path LIMIT 5000",
            (after, end),
        ).fetchall()
        yield from (path for (path,) in rows)
        if len(rows) < 5000:
            return
        after = rows[-1][0]


def dirs_under(conn: Conn, root: str) -> list[str]:
    """Directories at or below `root` that hold indexed files, in order: one index seek per
    directory (a loose index scan), not a read of every file's row."""
    rows = conn.execute(
        """
        WITH RECURSIVE d (dir) AS (
            (SELECT dir FROM files WHERE dir >= %(root)s AND dir < %(end)s AND stage IS NULL
             ORDER BY dir LIMIT 1)
            UNION ALL
            SELECT (SELECT f.dir FROM files f WHERE f.dir > d.dir AND f.dir < %(end)s
                    AND f.stage IS NULL ORDER BY f.dir LIMIT 1)
            FROM d WHERE d.dir IS NOT NULL
        )
        SELECT dir FROM d WHERE dir IS NOT NULL
        """,
        {"root": root, "end": root + "0"},
    ).fetchall()
    # `root` itself, then those below it ('/' sorts first among what can follow `root`, but
    # a sibling such as `root-x` sorts between: keep only the root and what is under it).
    return [d for (d,) in rows if d == root or d.startswith(root + "/")]


def failed_files(conn: Conn) -> list[tuple[str, str | None]]:
    rows = conn.execute(
        f"SELECT path, reason FROM files WHERE status = 'failed' AND {_OWN} ORDER BY path"
    ).fetchall()
    return [(str(p), r) for p, r in rows]


def stamp_dirs(
    transaction: Callable[[], contextlib.AbstractContextManager[Conn]],
    rows_per_commit: int = 20_000,
) -> int:
    """Stamp each directory listed in `unstamped`, in transactions of about
    `rows_per_commit` files; returns how many. Workers doing it at once take different
    directories (SKIP LOCKED)."""
    written = 0
    while True:
        with transaction() as conn:
            batch = [
                d
                for (d,) in conn.execute(
                    "SELECT dir FROM unstamped ORDER BY dir LIMIT 1000 FOR UPDATE SKIP LOCKED"
                )
            ]
            if not batch:
                return written
            rows = 0
            for directory in batch:
                if directory:
                    rows += _stamp_dir(conn, directory)
                conn.execute("DELETE FROM unstamped WHERE dir = %s", (directory,))
                written += 1
                if rows >= rows_per_commit:
                    break


def _stamp_dir(conn: Conn, directory: str) -> int:
    stamps = [
        Stamp(*row)
        for row in conn.execute(
            f"SELECT {STAMP_COLUMNS} FROM files WHERE dir = %s AND {_OWN} ORDER BY path",
            (directory,),
        )
    ]
    if stamps:
        conn.execute(
            "INSERT INTO dir_stamps (dir, chunking, digest, chunks, notes)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (dir) DO UPDATE SET"
            " chunking = excluded.chunking, digest = excluded.digest,"
            " chunks = excluded.chunks, notes = excluded.notes",
            (directory, *dir_stamp_row(stamps)),
        )
    return len(stamps)
