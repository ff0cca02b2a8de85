"""ragidx against a real server: Infinity serving all-MiniLM-L6-v2 on the CPU.

The commands are the README's recipe for Infinity (`ragidx.testing.infinity.USE`), run as
shown, with this server's port and a copy of sample_docs as `docs`. The server is built on
first use into a cache folder; where it cannot be (no network, no pip) these tests are
skipped with the reason, unless `RAGIDX_REQUIRE_INTEGRATION=1` (as `.ci/run` sets): then
they fail.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from helpers import RAGIDX, SAMPLE_DOCS

from ragidx.embed.hashing import STOP_WORDS
from ragidx.testing.infinity import DIMS, MODEL, PORT, USE

pytestmark = pytest.mark.integration

DOCTOR, INDEX, SEARCH = USE

# Each query shares no word with the file it should find (checked below), so only the
# meaning can lead there. Paths are within sample_docs, which the tests copy to `docs`.
QUERIES = {
    "who may log into the web console": "docs/guides/authentication.md",
    "start something automatically at midnight": "docs/guides/scheduling.md",
    "which knobs can be tuned and whence do they come": "docs/configuration.md",
    "what does a particular numeric fault identifier mean": "docs/reference/errors.rst",
    "how can I watch it on a chart": "docs/guides/monitoring.md",
    "which interpreters are compatible": "docs/installation.md",
    "embedded engine or remote cache": "docs/guides/storage-backends.md",
}


def run(command: str, url: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """A recipe command, `ragidx` as this interpreter's, the README's port as the server's."""
    args = shlex.split(command.replace(f"127.0.0.1:{PORT}", url.removeprefix("http://")[:-3]))
    assert args[0] == "ragidx"
    return subprocess.run(
        [*RAGIDX, *args[1:], *extra], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def indexed(infinity: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """sample_docs indexed through the server; the working directory and the summary."""
    work = tmp_path_factory.mktemp("infinity")
    shutil.copytree(SAMPLE_DOCS, work / "docs")
    (summary,) = [r for r in lines(run(INDEX, infinity, work, "--json")) if r["event"] == "summary"]
    return work, summary


def test_doctor_reaches_the_server(infinity: str, tmp_path: Path) -> None:
    checks = {r["name"]: r for r in lines(run(DOCTOR, infinity, tmp_path, "--json"))}
    assert all(check["ok"] for check in checks.values()), checks
    assert checks["dims"]["detail"] == str(DIMS)
    assert checks["reachable"]["detail"].startswith("HTTP 200")


def test_sample_docs_are_indexed(indexed: tuple[Path, dict[str, Any]]) -> None:
    _, summary = indexed
    assert summary["failed"] == 0 and summary["indexed"] == 27 and summary["skipped"] == 2
    assert summary["chunks"] == summary["embedded"] > 200
    assert summary["retries"] == 0


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP_WORDS}


@pytest.mark.parametrize("query", QUERIES)
def test_a_paraphrase_finds_its_file(
    infinity: str, indexed: tuple[Path, dict[str, Any]], query: str
) -> None:
    work, _ = indexed
    expected = f"docs/{QUERIES[query]}"
    body = _words((work / expected).read_text(encoding="utf-8"))
    stems = {w[:5] for w in body if len(w) >= 5}
    shared = {w for w in _words(query) if w in body or (len(w) >= 5 and w[:5] in stems)}
    assert not shared, f"the query shares {shared} with {expected}: not a paraphrase"

    hits = lines(run(f'ragidx search --mode vector "{query}"', infinity, work, "--json"))
    assert hits[0]["path"] == expected, [h["path"] for h in hits]


def test_the_recipes_search_finds_the_authentication_guide(
    infinity: str, indexed: tuple[Path, dict[str, Any]]
) -> None:
    work, _ = indexed
    result = run(SEARCH, infinity, work)
    assert result.returncode == 0, result.stderr
    assert "docs/docs/guides/authentication.md" in result.stdout.splitlines()[0]


def test_stored_vectors_are_the_servers(
    infinity: str, indexed: tuple[Path, dict[str, Any]]
) -> None:
    work, _ = indexed
    chunks = lines(run("ragidx export --vectors", infinity, work))
    sample = chunks[:: max(len(chunks) // 40, 1)]
    inputs = [c.get("input", c["text"]) for c in sample]
    answer = httpx.post(
        f"{infinity}/embeddings", json={"model": MODEL, "input": inputs}, timeout=120
    )
    theirs = np.array([d["embedding"] for d in answer.json()["data"]], dtype=np.float64)
    ours = np.array([c["vector"] for c in sample], dtype=np.float64)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert len(sample) >= 40 and cosine.min() > 0.9999, cosine.min()


def test_an_edit_sends_only_what_changed(
    infinity: str, indexed: tuple[Path, dict[str, Any]]
) -> None:
    # Last in this module: it edits the index the tests above share.
    work, _ = indexed
    guide = work / "docs/docs/guides/retries.md"
    text = guide.read_text(encoding="utf-8")
    text += (
        "\n## Poison messages\n\nA job that fails on every attempt is parked after max_attempts.\n"
    )
    guide.write_text(text, encoding="utf-8")
    (summary,) = [r for r in lines(run(INDEX, infinity, work, "--json")) if r["event"] == "summary"]
    assert summary["indexed"] == 1 and summary["unchanged"] == 26 and summary["failed"] == 0
    assert 1 <= summary["embedded"] <= 2 < summary["reused"], summary
    hits = lines(
        run('ragidx search --mode vector "parked poison messages"', infinity, work, "--json")
    )
    assert hits[0]["path"] == "docs/docs/guides/retries.md" and "Poison" in hits[0]["text"]
