"""The test server itself: it stops at once, whatever its handlers are doing, and what it
counted is final when its block ends."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from ragidx.testing.server import Faults, serve


def _handlers() -> set[threading.Thread]:
    """The test servers' request handlers alive in this process."""
    return {t for t in threading.enumerate() if "process_request_thread" in t.name}


def test_stopping_does_not_wait_for_hung_requests_or_idle_connections() -> None:
    errors: list[Exception] = []
    others = _handlers()  # of servers before this one (none, unless a test left one)

    def hang(url: str) -> None:
        try:
            httpx.post(f"{url}/v1/embeddings", json={"input": ["x"]}, timeout=60)
        except httpx.HTTPError as exc:
            errors.append(exc)

    with serve(Faults(hang_first=1, hang_seconds=60)) as server:
        client = threading.Thread(target=hang, args=(server.url,))
        client.start()
        idle = socket.create_connection(server.server_address)  # connected, sends nothing
        while server.counters.requests < 1 or len(_handlers() - others) < 2:
            time.sleep(0.01)
        started = time.monotonic()
    stopped_in = time.monotonic() - started
    client.join(timeout=5)
    idle.close()
    assert stopped_in < 2, stopped_in
    assert not client.is_alive()
    assert len(errors) == 1  # the hung request ended with the server, unanswered
    assert _handlers() - others == set()  # none left sleeping


def test_what_a_client_gave_up_on_is_counted_when_the_block_ends() -> None:
    # Five inputs take 0.5 s to compute; the client leaves after 0.1 s, the block at once.
    with serve(Faults(dims=8, serial_rate=10)) as server, pytest.raises(httpx.TimeoutException):
        httpx.post(f"{server.url}/v1/embeddings", json={"input": list("abcde")}, timeout=0.1)
    assert server.counters.inputs == 5
