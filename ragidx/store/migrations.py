"""Schema migrations, applied in order; `PRAGMA user_version` records how far a database got.

Never edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ragidx.errors import StoreError
from ragidx.store.cache import embedding_key

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]

# A step is SQL, or SQL and then a Python function run in the same transaction.
Step = str | tuple[str, Callable[[sqlite3.Connection], None]]


def _move_vectors(conn: sqlite3.Connection) -> None:
    """Version 1 kept a vector per chunk: move each into the cache under its chunk's key."""
    manifest = dict(conn.execute("SELECT key, value FROM manifest").fetchall())
    if "dims" not in manifest:
        return
    space = (manifest["provider"], manifest["model"], int(manifest["dims"]))
    rows = conn.execute(
        "SELECT c.id, coalesce(c.input, c.text), v.vector FROM chunks c"
        " JOIN vectors v ON v.chunk_id = c.id"
    ).fetchall()
    for chunk_id, text, vector in rows:
        key = embedding_key(*space, text)
        conn.execute(
            "INSERT INTO embeddings (key, vector) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (key, vector),
        )
        conn.execute(
            "UPDATE chunks SET embedding_id = (SELECT id FROM embeddings WHERE key = ?)"
            " WHERE id = ?",
            (key, chunk_id),
        )


MIGRATIONS: tuple[Step, ...] = (
    # 1: files, chunks, vectors, full text, runs, manifest
    """
    CREATE TABLE manifest (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        dir TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        mtime_ns INTEGER NOT NULL DEFAULT 0,
        content_hash TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        encoding TEXT,
        format TEXT,
        chunking TEXT,
        chunks INTEGER NOT NULL DEFAULT 0,
        tokens INTEGER NOT NULL DEFAULT 0,
        run_id INTEGER,
        updated_at REAL NOT NULL
    );
    CREATE INDEX files_dir ON files (dir);
    CREATE INDEX files_status ON files (status);
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY,
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        text TEXT NOT NULL,
        input TEXT,
        char_start INTEGER NOT NULL,
        char_end INTEGER NOT NULL,
        line_start INTEGER NOT NULL,
        line_end INTEGER NOT NULL,
        heading_path TEXT NOT NULL,
        tokens INTEGER NOT NULL,
        UNIQUE (file_id, ordinal)
    );
    CREATE TABLE vectors (
        chunk_id INTEGER PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
        vector BLOB NOT NULL
    );
    -- Contentless: the store writes each chunk's text with CJK characters spaced apart
    -- (ragidx.chunk.tokens.space_cjk), and deletes rows with that same text.
    CREATE VIRTUAL TABLE chunks_fts USING fts5 (
        text, content = '', tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at REAL NOT NULL,
        finished_at REAL,
        seconds REAL,
        status TEXT NOT NULL,
        roots TEXT NOT NULL,
        summary TEXT
    );
    """,
    # 2: the embedding cache, shared by chunks with the same input
    (
        """
        CREATE TABLE embeddings (
            id INTEGER PRIMARY KEY,
            key BLOB NOT NULL UNIQUE,
            vector BLOB NOT NULL
        );
        ALTER TABLE chunks ADD COLUMN embedding_id INTEGER REFERENCES embeddings (id);
        CREATE INDEX chunks_embedding ON chunks (embedding_id);
        """,
        _move_vectors,
    ),
    # 3: drop version 1's vectors table; a view keeps `SELECT ... FROM vectors` working
    """
    DROP TABLE vectors;
    CREATE VIEW vectors (chunk_id, vector) AS
        SELECT c.id, e.vector FROM chunks c
        JOIN files f ON f.id = c.file_id AND f.status != 'staging'
        JOIN embeddings e ON e.id = c.embedding_id;
    """,
    # 4: a re-run reads each directory's stamps from one index, never the table
    """
    CREATE INDEX files_dir_stamp
        ON files (dir, path, size, mtime_ns, status, chunking, chunks, reason);
    DROP INDEX files_dir;
    """,
    # 5: a stamp per directory, true while none of its files' rows changes (see `stamps`);
    # the directories whose rows changed since their stamp was written wait in `unstamped`
    """
    CREATE TABLE dir_stamps (
        dir TEXT PRIMARY KEY,
        chunking TEXT,
        digest BLOB,
        chunks BLOB NOT NULL,
        notes TEXT
    ) WITHOUT ROWID;
    -- Not INSERT OR IGNORE in the triggers: under an upsert on files (ON CONFLICT DO UPDATE)
    -- SQLite applies the upsert's conflict handling to them, and the duplicate fails.
    CREATE TABLE unstamped (dir TEXT PRIMARY KEY) WITHOUT ROWID;
    INSERT INTO unstamped (dir) SELECT DISTINCT dir FROM files WHERE dir != '';
    CREATE TRIGGER files_insert_unstamps AFTER INSERT ON files
    BEGIN
        DELETE FROM dir_stamps WHERE dir = NEW.dir;
        INSERT INTO unstamped (dir)
            SELECT NEW.dir WHERE NOT EXISTS (SELECT 1 FROM unstamped WHERE dir = NEW.dir);
    END;
    CREATE TRIGGER files_update_unstamps AFTER UPDATE ON files
    BEGIN
        DELETE FROM dir_stamps WHERE dir IN (OLD.dir, NEW.dir);
        INSERT INTO unstamped (dir)
            SELECT OLD.dir WHERE NOT EXISTS (SELECT 1 FROM unstamped WHERE dir = OLD.dir);
        INSERT INTO unstamped (dir)
            SELECT NEW.dir WHERE NOT EXISTS (SELECT 1 FROM unstamped WHERE dir = NEW.dir);
    END;
    CREATE TRIGGER files_delete_unstamps AFTER DELETE ON files
    BEGIN
        DELETE FROM dir_stamps WHERE dir = OLD.dir;
        INSERT INTO unstamped (dir)
            SELECT OLD.dir WHERE NOT EXISTS (SELECT 1 FROM unstamped WHERE dir = OLD.dir);
    END;
    """,
    # 6: where in a paged document (PDF pages, slides, sheets) each chunk is
    """
    ALTER TABLE chunks ADD COLUMN page_start INTEGER;
    ALTER TABLE chunks ADD COLUMN page_end INTEGER;
    ALTER TABLE files ADD COLUMN unit TEXT;
    ALTER TABLE files ADD COLUMN pages INTEGER;
    """,
    # 7: who runs each run and how far it got, for everyone watching the index
    """
    ALTER TABLE runs ADD COLUMN worker TEXT;
    ALTER TABLE runs ADD COLUMN shard TEXT;
    ALTER TABLE runs ADD COLUMN heartbeat_at REAL;
    ALTER TABLE runs ADD COLUMN files_done INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN files_failed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
    CREATE VIEW ragidx_progress AS
        SELECT id AS run_id, worker, shard, status, started_at, heartbeat_at,
            files_done, files_failed, in_flight
        FROM runs;
    """,
    # 8: what the vector file beside the index must match (`ragidx.store.vector_file`): a
    # random nonce and a generation, both changed in the transaction of anything that
    # deletes or rewrites a cached vector (an id can be used again once it is deleted)
    """
    CREATE TABLE vector_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        nonce BLOB NOT NULL,
        generation INTEGER NOT NULL
    );
    INSERT INTO vector_state (id, nonce, generation) VALUES (1, randomblob(8), 0);
    CREATE TRIGGER embeddings_delete_moves AFTER DELETE ON embeddings
    BEGIN
        UPDATE vector_state SET nonce = randomblob(8), generation = generation + 1;
    END;
    CREATE TRIGGER embeddings_update_moves AFTER UPDATE ON embeddings
    BEGIN
        UPDATE vector_state SET nonce = randomblob(8), generation = generation + 1;
    END;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version the database was at before."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the index has schema version {version}, newer than this ragidx knows "
            f"({SCHEMA_VERSION}): upgrade ragidx"
        )
    for number in range(version, SCHEMA_VERSION):
        step = MIGRATIONS[number]
        sql, then = step if isinstance(step, tuple) else (step, None)
        # One transaction per step: a crash leaves the database at the previous version.
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}")
            if then is not None:
                then(conn)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
    return int(version)
