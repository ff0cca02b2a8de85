"""Pacing end to end: `ragidx index` against the test server's rate budgets, told the budget
(--rpm/--tpm) or left to the x-ratelimit headers, under both meanings of the reset.

"window": 50 requests (or 2,500 tokens) per sliding 5-second window, reset in OpenAI's meaning
(until the window's whole usage has expired). "bucket": the test server's default, a bucket of
a second's worth under a per-minute limit header, reset until the bucket is full again.
Each run checks every file indexed, the share of the budget used and the 429s. The bounds are
loose (the machine is shared); bench/pacing.py prints the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Cli, write

from ragidx.testing.server import Faults, serve

DIMS = 64
RPM = 600  # 10 a second
TPM = 30_000  # 500 tokens a second; a request of two files is about 80 by the server's count


def tree(work: Path, files: int) -> None:
    words = " ".join(f"w{j:02d}" for j in range(36))
    write(work, {f"docs/n{i:03d}.md": f"note {i}: {words}\n" for i in range(files)})


@pytest.mark.slow
@pytest.mark.parametrize("told", [True, False], ids=["told", "headers"])
@pytest.mark.parametrize(
    ("unit", "window", "files"),
    [
        ("requests", 5.0, 160),  # 80 requests: 8 s at the budget
        ("tokens", 5.0, 100),  # 50 requests, 4,000 tokens: 8 s
        ("requests", None, 60),  # 3 s
        ("tokens", None, 40),  # 3 s
    ],
    ids=["requests-window", "tokens-window", "requests-bucket", "tokens-bucket"],
)
def test_pacing_uses_the_budget(
    cli: Cli, work: Path, unit: str, window: float | None, files: int, told: bool
) -> None:
    tree(work, files)
    per_minute = RPM if unit == "requests" else TPM
    flag = "--rpm" if unit == "requests" else "--tpm"
    budget = {"rpm" if unit == "requests" else "tpm": per_minute}
    with serve(Faults(dims=DIMS, budget_window=window, **budget)) as server:
        result = cli(
            "index", "docs", "--db", "idx.db", "--json", "--provider", "openai",
            "--base-url", server.url + "/v1", "--model", "m", "--dimensions", str(DIMS),
            "--batch-size", "2", *([flag, str(per_minute)] if told else []),
        )  # fmt: skip
        counters = server.counters
    assert result.exit_code == 0, result.stderr
    summary = result.summary()
    assert summary["indexed"] == files
    spent = counters.statuses[200] if unit == "requests" else counters.tokens
    share = spent / summary["seconds"] / (per_minute / 60)
    # Pausing for the whole reset whenever the budget ran low used 50-57% of a window's
    # budget when told it; waiting for just what is missing uses 94-98%.
    assert share >= 0.75
    assert counters.statuses.get(429, 0) <= 3
