"""What the integration tests share: one Infinity server (MiniLM on the CPU) a module."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from ragidx.testing.infinity import Unavailable, serve


@pytest.fixture(scope="module")
def infinity() -> Iterator[str]:
    """The server's base URL, `http://127.0.0.1:<port>/v1`. Built on first use; skipped where
    it cannot be, unless `RAGIDX_REQUIRE_INTEGRATION=1` (as `.ci/run` sets): then failed."""
    stack = contextlib.ExitStack()
    try:
        url = stack.enter_context(serve())
    except Unavailable as exc:
        if os.environ.get("RAGIDX_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"Infinity is required here (RAGIDX_REQUIRE_INTEGRATION=1): {exc}")
        pytest.skip(f"Infinity is not available here: {exc}")
    with stack:
        yield url
