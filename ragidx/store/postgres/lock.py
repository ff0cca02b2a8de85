"""Who may index which files of a Postgres index at once: `run_lock`, the Postgres
counterpart of `ragidx.store.lock.writer_lock`, with the same contract.

On a connection of its own, held for the whole run, session advisory locks: an unsharded
run takes the index's writers lock whole; a sharded run (`--shard K/N`) takes it shared,
plus its own part's lock whole, plus the part count N shared. So two unsharded runs, or two
runs of the same part, never index the same files at once, while different parts of one
split run together; a split into another N (whose parts overlap these) waits. The server
drops the locks when the holder's connection ends, even by `kill -9` of its process.

In: the index URL and the shard ("K/N", or None). Raises `IndexBusy` where busy and not
`wait`, `Interrupted` where `give_up()` says to stop waiting, `StoreError` where the
server cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import psycopg
from psycopg import sql

from ragidx.errors import IndexBusy, Interrupted
from ragidx.store.postgres.connect import Target, pg_error, target
from ragidx.store.postgres.migrations import WRITERS, lock_key

__all__ = ["POLL_SECONDS", "run_lock"]

POLL_SECONDS = 0.2

_AConn = psycopg.AsyncConnection[tuple[object, ...]]


def _locks(schema: str, shard: str | None) -> list[tuple[str, int, int]]:
    """(function, key1, key2) of each lock the run takes, in the order it takes them."""
    index = lock_key(schema, "index")
    if shard is None:
        return [("pg_try_advisory_lock", index, WRITERS)]
    number, _, count = shard.partition("/")
    return [
        ("pg_try_advisory_lock_shared", index, WRITERS),
        ("pg_try_advisory_lock_shared", lock_key(schema, "parts"), int(count)),
        ("pg_try_advisory_lock", lock_key(schema, f"shard {count}"), int(number)),
    ]


async def _try(conn: _AConn, schema: str, shard: str | None) -> bool:
    """Take every lock, or none (what was taken is let go): whether the run may start."""
    taken: list[tuple[str, int, int]] = []
    for function, key1, key2 in _locks(schema, shard):
        cur = await conn.execute(f"SELECT {function}(%s, %s)", (key1, key2))
        row = await cur.fetchone()
        if not (row and row[0]):
            for done, k1, k2 in reversed(taken):
                unlock = "pg_advisory_unlock_shared" if "shared" in done else "pg_advisory_unlock"
                await conn.execute(f"SELECT {unlock}(%s, %s)", (k1, k2))
            return False
        taken.append((function, key1, key2))
    if shard is not None and await _other_split(conn, schema, shard):
        await conn.execute("SELECT pg_advisory_unlock_all()")
        return False
    return True


async def _other_split(conn: _AConn, schema: str, shard: str) -> bool:
    """Whether a run of a split into another number of parts holds the index: their parts
    overlap this one's."""
    cur = await conn.execute(
        "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid = %s::oid AND objid <> %s::oid LIMIT 1",
        (lock_key(schema, "parts"), int(shard.partition("/")[2])),
    )
    return await cur.fetchone() is not None


async def _holder(conn: _AConn, where: Target) -> str | None:
    """The workers of the runs in progress, as they recorded themselves, if any can be read."""
    query = sql.SQL(
        "SELECT string_agg(DISTINCT coalesce(nullif(worker, ''), 'run ' || id), ', ')"
        " FROM {}.runs WHERE status = 'running'"
    ).format(sql.Identifier(where.schema))
    try:
        async with conn.transaction():
            cur = await conn.execute(query)
            row = await cur.fetchone()
    except psycopg.Error:
        return None  # no index yet, or no right to read it: the wait says no name
    return str(row[0]) if row and row[0] else None


@contextlib.asynccontextmanager
async def run_lock(
    url: str,
    shard: str | None,
    *,
    wait: bool,
    on_wait: Callable[[str | None], None],
    give_up: Callable[[], bool] = lambda: False,
) -> AsyncIterator[None]:
    """Hold the run's locks on the index at `url` (for `shard`, "K/N", or the whole index);
    when busy, call `on_wait` once and poll until they are free (or `give_up()`:
    `Interrupted`), or with `wait=False` raise `IndexBusy`."""
    where = target(url)
    try:
        conn = await psycopg.AsyncConnection.connect(where.conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise pg_error(where, exc, "cannot connect to") from exc
    try:
        if not await _try(conn, where.schema, shard):
            holder = await _holder(conn, where)
            if not wait:
                who = f" ({holder})" if holder else ""
                part = f" part {shard} of" if shard else ""
                raise IndexBusy(
                    f"another ragidx is writing{part} the index {where.location}{who}",
                    hint="wait for it to finish, or leave out --no-wait to wait for it",
                )
            on_wait(holder)
            while not await _try(conn, where.schema, shard):
                if give_up():
                    raise Interrupted("stopped while waiting for the index")
                await asyncio.sleep(POLL_SECONDS)
        yield
    except psycopg.Error as exc:
        raise pg_error(where, exc) from exc
    finally:
        with contextlib.suppress(psycopg.Error):
            # Let go now: a closed session's locks go only once its backend has exited.
            await conn.execute("SELECT pg_advisory_unlock_all()")
        with contextlib.suppress(psycopg.Error):
            await conn.close()
