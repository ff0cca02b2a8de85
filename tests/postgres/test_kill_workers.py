"""The crash test across workers: four `--shard` parts on one tree into one Postgres, killed
with SIGKILL at random moments (at least 30 kills), files edited between rounds; afterwards
every file is indexed exactly once with its current content, every vector is the server's,
nothing is duplicated and no run or lock is left stuck (`ragidx.testing.pg_soak`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragidx.testing.pg_soak import soak_workers
from ragidx.testing.server import Faults, serve
from ragidx.testing.soak import make_corpus

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_four_workers_killed_thirty_times_lose_and_duplicate_nothing(
    tmp_path: Path, pg_url: str
) -> None:
    corpus = tmp_path / "corpus"
    versions = make_corpus(corpus, 240)
    with serve(Faults(dims=32, latency=0.05)) as server:
        result = soak_workers(corpus, pg_url, server, versions, kills=30, workers=4, seed=7)
    assert result.problems == []
    assert result.kills >= 30
    assert result.files == 240 and result.chunks > 240
    assert result.checks_passed == result.rounds + 1
