"""The Postgres index's schema: migrations applied in order, each in a transaction under an
advisory lock, so workers that start together migrate once; `schema_version` records how far
a schema got.

In: a connection whose `search_path` names the index's schema first (`connect`). Out: the
schema brought up to date, or `StoreError` for one newer than this ragidx knows. Never edit a
migration that has shipped: append a new one.

What differs from SQLite's schema (`ragidx.store.migrations`), and why:

- A staging row is a `files` row with the file's real path and a `stage` (text cannot hold
  the NUL that SQLite's staging paths use); `stage IS NULL` is the file itself. Its chunks
  have `visible = false` until the file's write makes them its own.
- Staging rows carry the `run_id` that staged them: `drop_staged` only takes those of runs
  that are gone (whose advisory lock is free).
- Full text is `chunks.tsv`, made in the chunk's own INSERT from the folded text
  (`ragidx.store.postgres.fulltext.fold`), with a GIN index over visible chunks.
- `embeddings.vector` is an untyped `vector` until the first vectors of a space are stored:
  `type_vectors` then gives it its dimensions, which the HNSW index needs; the index is
  built whole after a run (`index_vectors`), not kept up vector by vector from the first.
- Paths and directories compare in byte order (`COLLATE "C"`), as the tree queries need.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import psycopg
from psycopg import sql

from ragidx.errors import StoreError

__all__ = [
    "HNSW_BUILD_MB",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_M",
    "HNSW_MAX_DIMS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "index_vectors",
    "lock_key",
    "migrate",
    "schema_version",
    "type_vectors",
]

HNSW_MAX_DIMS = 2000
"""pgvector's HNSW indexes `vector` columns of at most this many dimensions; a wider space
is searched exactly."""
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
"""Measured at 1,000,000 clustered vectors of 384 dims (bench/search_scale.py): with 64,
recall@10 is 0.786 at ef_search 100 and no ef_search reaches 0.95 (0.941 at pgvector's
maximum, 1000); with 128, 0.949 at 100 and 0.986 at 200, in 10 ms. The build takes about
1.6x as long."""
HNSW_BUILD_MB = (64, 4096)
"""The least and most `maintenance_work_mem` for a build: the graph (about its vectors plus
600 bytes each) must fit, or the build slows 5-7x (measured at 1M: 2,500 vectors/s while it
fit in 512 MB, 340-530/s after)."""


def lock_key(schema: str, kind: str) -> int:
    """The first key of the two-key advisory locks of `schema` for `kind` ("index", "run",
    "shard"): a stable positive int4, so `pg_locks.classid` shows it as is."""
    return zlib.crc32(f"ragidx\0{schema}\0{kind}".encode()) & 0x7FFF_FFFF


# Second keys under lock_key(schema, "index").
MIGRATE, GC, MANIFEST, WRITERS, HNSW = 1, 2, 3, 4, 5

MIGRATIONS: tuple[str, ...] = (
    # 1: everything SQLite's six migrations built, and the runs' progress for many workers
    """
    CREATE TABLE manifest (
        key text PRIMARY KEY,
        value text NOT NULL
    );
    CREATE TABLE runs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        started_at double precision NOT NULL,
        finished_at double precision,
        seconds double precision,
        status text NOT NULL,
        roots jsonb NOT NULL,
        summary jsonb,
        worker text NOT NULL DEFAULT '',
        shard text,
        heartbeat_at double precision,
        files_done bigint NOT NULL DEFAULT 0,
        files_failed bigint NOT NULL DEFAULT 0,
        in_flight integer NOT NULL DEFAULT 0,
        groups bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE files (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        path text COLLATE "C" NOT NULL,
        dir text COLLATE "C" NOT NULL,
        stage integer,
        size bigint NOT NULL DEFAULT 0,
        mtime_ns bigint NOT NULL DEFAULT 0,
        content_hash text,
        status text NOT NULL,
        reason text,
        encoding text,
        format text,
        chunking text,
        chunks integer NOT NULL DEFAULT 0,
        tokens bigint NOT NULL DEFAULT 0,
        run_id bigint,
        updated_at double precision NOT NULL,
        unit text,
        pages integer
    );
    CREATE UNIQUE INDEX files_path ON files (path) WHERE stage IS NULL;
    CREATE UNIQUE INDEX files_staged ON files (path, stage, run_id) WHERE stage IS NOT NULL;
    CREATE INDEX files_dir_stamp ON files (dir, path)
        INCLUDE (size, mtime_ns, status, chunking, chunks, reason) WHERE stage IS NULL;
    CREATE INDEX files_status ON files (status);
    CREATE TABLE embeddings (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key bytea NOT NULL UNIQUE,
        vector vector NOT NULL
    );
    CREATE TABLE chunks (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        file_id bigint NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        ordinal integer NOT NULL,
        text text NOT NULL,
        input text,
        char_start integer NOT NULL,
        char_end integer NOT NULL,
        line_start integer NOT NULL,
        line_end integer NOT NULL,
        heading_path jsonb NOT NULL,
        tokens integer NOT NULL,
        page_start integer,
        page_end integer,
        embedding_id bigint REFERENCES embeddings (id),
        visible boolean NOT NULL,
        tsv tsvector NOT NULL,
        UNIQUE (file_id, ordinal)
    );
    CREATE INDEX chunks_embedding ON chunks (embedding_id);
    CREATE INDEX chunks_tsv ON chunks USING gin (tsv) WHERE visible;
    CREATE TABLE dir_stamps (
        dir text COLLATE "C" PRIMARY KEY,
        chunking text,
        digest bytea,
        chunks bytea NOT NULL,
        notes text
    );
    CREATE TABLE unstamped (dir text COLLATE "C" PRIMARY KEY);
    -- A directory's stamp is true only while none of its rows changes (ragidx.store.stamps):
    -- every change to a row drops the stamps of its directories and lists them to stamp.
    -- Staging rows have the directory '', which no walk plans.
    CREATE FUNCTION files_unstamp() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.dir <> '' THEN
            DELETE FROM dir_stamps WHERE dir = OLD.dir;
            INSERT INTO unstamped (dir) VALUES (OLD.dir) ON CONFLICT DO NOTHING;
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.dir <> ''
                AND (TG_OP = 'INSERT' OR NEW.dir IS DISTINCT FROM OLD.dir) THEN
            DELETE FROM dir_stamps WHERE dir = NEW.dir;
            INSERT INTO unstamped (dir) VALUES (NEW.dir) ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
    END;
    $$;
    CREATE TRIGGER files_unstamp AFTER INSERT OR UPDATE OR DELETE ON files
        FOR EACH ROW EXECUTE FUNCTION files_unstamp();
    """,
    # 2: parallel HNSW builds. Postgres plans a build's workers from the table's heap pages,
    # and a vector of more than ~500 dims is TOASTed out of the heap: 100,000 vectors of
    # 1,024 dims left 935 pages, under `min_parallel_table_scan_size`, and the build ran in
    # one process. A number here replaces that guess; the server's own caps
    # (`max_parallel_maintenance_workers`, `max_parallel_workers_per_gather` for an exact
    # scan) still decide. Measured at 30,000 x 1,024 on 2 cores: 56 s serial, 28 s parallel.
    """
    ALTER TABLE embeddings SET (parallel_workers = 64);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

# `ragidx_progress` names the schema's lock key, so it is made per schema (after migrating).
_PROGRESS_VIEW = """
CREATE OR REPLACE VIEW ragidx_progress AS
SELECT r.id AS run_id, r.worker, r.shard,
       CASE WHEN r.status = 'running' AND NOT EXISTS (
                SELECT 1 FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                  AND l.database = (SELECT oid FROM pg_database
                                    WHERE datname = current_database())
                  AND l.classid = {key}::oid AND l.objid = r.id::oid)
            THEN 'died' ELSE r.status END AS status,
       to_timestamp(r.started_at) AS started_at,
       to_timestamp(r.heartbeat_at) AS heartbeat_at,
       r.files_done, r.files_failed, r.in_flight
FROM runs r
"""


def schema_version(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """The schema's version; 0 where the schema or its `schema_version` table is missing."""
    row = conn.execute(
        "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'schema_version'",
        (schema,),
    ).fetchone()
    if row is None:
        return 0
    found = conn.execute(
        sql.SQL("SELECT version FROM {}.schema_version").format(sql.Identifier(schema))
    ).fetchone()
    return int(str(found[0])) if found else 0


def migrate(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> int:
    """Bring `schema` up to date (making it where missing); returns the version it was at.
    Each step commits on its own: a crash leaves the schema at the previous version. The
    connection must not be in a transaction."""
    before = schema_version(conn, schema)
    if before == SCHEMA_VERSION:
        return before  # the common case: no lock taken
    with conn.transaction():
        # Workers that start together wait here; the first migrates, the others find it done.
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (lock_key(schema, "index"), MIGRATE))
        before = version = schema_version(conn, schema)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the index has schema version {version}, newer than this ragidx knows "
                f"({SCHEMA_VERSION}): upgrade ragidx"
            )
        name = sql.Identifier(schema)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_version (version integer NOT NULL)"
            ).format(name)
        )
        for number in range(version, SCHEMA_VERSION):
            with conn.transaction():  # a savepoint: the step and its version together
                conn.execute(MIGRATIONS[number])
                conn.execute(sql.SQL("DELETE FROM {}.schema_version").format(name))
                conn.execute(
                    sql.SQL("INSERT INTO {}.schema_version VALUES (%s)").format(name),
                    (number + 1,),
                )
        conn.execute(_PROGRESS_VIEW.format(key=lock_key(schema, "run")))
    return before


def type_vectors(conn: psycopg.Connection[tuple[object, ...]], dims: int) -> None:
    """Give `embeddings.vector` the dimensions `dims`, unless it has them: in the
    transaction of the first commit that stores a space's vectors, after a reset has
    emptied the table where the space changed. The HNSW index comes later, built whole
    (`index_vectors`)."""
    row = conn.execute(
        "SELECT a.atttypmod FROM pg_attribute a"
        " WHERE a.attrelid = 'embeddings'::regclass AND a.attname = 'vector'"
    ).fetchone()
    if row is not None and row[0] == dims:
        return
    conn.execute("DROP INDEX IF EXISTS embeddings_hnsw")
    conn.execute(
        sql.SQL(
            "ALTER TABLE embeddings ALTER COLUMN vector TYPE vector({0}) USING vector::vector({0})"
        ).format(sql.Literal(dims))
    )


def index_vectors(
    conn: psycopg.Connection[tuple[object, ...]],
    schema: str,
    on_build: Callable[[int], None] | None = None,
) -> bool:
    """Build the HNSW index (cosine) of the cached vectors where it is missing or a build
    was cut short, and the vectors have dimensions it can index; returns whether it did.

    Built whole after a run rather than kept up from the first vector: inserting into HNSW
    costs ~2 ms a vector here (measured: 20 vectors of 384 dims, 1.2 ms without the index,
    40 ms with it), ~25x the rest of a commit, while a build over 10,000 vectors takes
    ~1.8 s. Once built, later commits keep it up to date. CONCURRENTLY: other workers go on
    committing meanwhile; one worker builds (a try lock), the others go on. The connection
    must be in autocommit mode, outside a transaction."""
    row = conn.execute(
        "SELECT a.atttypmod, (SELECT i.indisvalid FROM pg_index i"
        "  WHERE i.indexrelid = to_regclass(%s)) FROM pg_attribute a"
        " WHERE a.attrelid = 'embeddings'::regclass AND a.attname = 'vector'",
        (f'"{schema}".embeddings_hnsw',),
    ).fetchone()
    if row is None or not 0 < int(str(row[0])) <= HNSW_MAX_DIMS or row[1] is True:
        return False
    key = lock_key(schema, "index")
    taken = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (key, HNSW)).fetchone()
    if not (taken and taken[0]):
        return False
    try:
        if row[1] is False:  # a build cut short left an invalid index
            conn.execute("DROP INDEX CONCURRENTLY IF EXISTS embeddings_hnsw")
        (count,) = conn.execute("SELECT count(*) FROM embeddings").fetchone() or (0,)
        if on_build is not None:
            on_build(int(str(count)))
        megabytes = _build_memory_mb(int(str(count)), int(str(row[0])))
        conn.execute(f"SET maintenance_work_mem = '{megabytes}MB'")
        try:
            _build(conn)
        except psycopg.Error as exc:
            # A parallel build keeps its graph in dynamic shared memory, as large as
            # `maintenance_work_mem`: a server in a container with a small /dev/shm (Docker
            # gives 64 MB) fails it with "could not resize shared memory segment" (class 53,
            # insufficient resources). One process builds in its own memory instead.
            if not (exc.sqlstate or "").startswith("53"):
                raise
            conn.execute("DROP INDEX CONCURRENTLY IF EXISTS embeddings_hnsw")
            conn.execute("SET max_parallel_maintenance_workers = 0")
            _build(conn)
    finally:
        conn.execute("RESET maintenance_work_mem")
        conn.execute("RESET max_parallel_maintenance_workers")
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (key, HNSW))
    return True


def _build(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS embeddings_hnsw ON embeddings"
        " USING hnsw (vector vector_cosine_ops)"
        f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
    )


def _build_memory_mb(vectors: int, dims: int) -> int:
    """`maintenance_work_mem` for an HNSW build over `vectors` of `dims`: room for the graph,
    within `HNSW_BUILD_MB`."""
    need = vectors * (dims * 4 + 600) * 5 // 4
    return max(HNSW_BUILD_MB[0], min(HNSW_BUILD_MB[1], need // 2**20 + 1))
