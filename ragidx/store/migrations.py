"""Schema migrations, applied in order; `PRAGMA user_version` records how far a database got.

Never edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

import sqlite3

from ..errors import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: tuple[str, ...] = (
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
    -- (ragidx.tokens.space_cjk), and deletes rows with that same text.
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
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version the database was at before."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the index has schema version {version}, newer than this ragidx knows "
            f"({SCHEMA_VERSION}): upgrade ragidx"
        )
    for number in range(version, SCHEMA_VERSION):
        # One transaction per step: a crash leaves the database at the previous version.
        script = (
            f"BEGIN IMMEDIATE;\n{MIGRATIONS[number]}\nPRAGMA user_version = {number + 1};\nCOMMIT;"
        )
        try:
            conn.executescript(script)
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
    return int(version)
