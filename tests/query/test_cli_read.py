"""`stats`, `search` and `export` through the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import Cli, write

# Queries chosen over sample_docs/, each with the file a person would open first.
RANKED = [
    ("TW-E4031", "sample_docs/docs/reference/errors.rst"),
    ("compute_backoff_delay", "sample_docs/src/tidewater/backoff.py"),
    ("cron daylight saving timezone", "sample_docs/docs/guides/scheduling.md"),
    ("thundering herd jitter", "sample_docs/docs/guides/retries.md"),
    ("Prometheus Grafana alerting", "sample_docs/docs/guides/monitoring.md"),
    ("rotating secrets OAuth", "sample_docs/docs/guides/authentication.md"),
    ("noeviction appendfsync Sentinel", "sample_docs/docs/guides/storage-backends.md"),
    ("deploy workers on kubernetes", "sample_docs/docs/guides/deployment.md"),
    ("file d'attente", "sample_docs/i18n/guide_fr.md"),
]


@pytest.fixture
def indexed(cli: Cli, sample: Path) -> Path:
    assert cli("index", "sample_docs", "--db", "idx.db", "--quiet").exit_code == 0
    return Path("idx.db")


@pytest.mark.parametrize("mode", ["hybrid", "vector", "text"])
@pytest.mark.parametrize(("query", "expected"), RANKED)
def test_search_ranks_the_relevant_file_first(
    cli: Cli, indexed: Path, query: str, expected: str, mode: str
) -> None:
    result = cli("search", query, "--db", "idx.db", "--json", "--mode", mode, "-k", "3")
    assert result.exit_code == 0, result.stderr
    hits = result.json_lines()
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["path"] == expected


def test_search_hit_fields_and_exact_identifier(cli: Cli, indexed: Path) -> None:
    hits = cli("search", "TW-E4031", "--db", "idx.db", "--json", "-k", "10").json_lines()
    top = hits[0]
    assert set(top) == {
        "rank", "score", "path", "ordinal", "line_start", "line_end",
        "heading_path", "text_rank", "vector_rank", "text",
    }  # fmt: skip
    assert "TW-E4031" in top["text"]
    source = Path(top["path"]).read_text(encoding="utf-8").split("\n")
    assert top["text"].split("\n")[0] in source[top["line_start"] - 1]
    assert top["heading_path"][0] == "Error codes"
    assert all(h["score"] >= n["score"] for h, n in itertools.pairwise(hits))


def test_search_human_output(cli: Cli, indexed: Path) -> None:
    result = cli("search", "thundering herd", "--db", "idx.db", "-k", "2")
    assert result.exit_code == 0
    first = result.stdout.splitlines()[0]
    assert first.startswith("1. sample_docs/docs/guides/retries.md:")
    assert "Jitter" in first


def test_search_without_index_exit_2(cli: Cli, work: Path) -> None:
    result = cli("search", "anything", "--db", "missing.db")
    assert result.exit_code == 2
    assert "error: no index at missing.db" in result.stderr
    assert not (work / "missing.db").exists()


def test_stats_json(cli: Cli, indexed: Path) -> None:
    result = cli("stats", "--db", "idx.db", "--json")
    assert result.exit_code == 0
    stats = json.loads(result.stdout)
    assert stats["files"]["skipped"] == 2 and stats["files"]["failed"] == 0
    assert stats["files"]["indexed"] == sum(stats["file_types"].values())
    assert stats["file_types"][".md"] >= 10 and stats["file_types"][".py"] == 4
    assert stats["chunks"] == stats["vectors"] > 0
    assert (stats["provider"], stats["model"], stats["dims"]) == ("hash", "ragidx-hash-v1", 1024)
    assert (stats["chunk_tokens"], stats["chunk_overlap"]) == (512, 64)
    assert stats["db_bytes"] > 0
    last = stats["last_run"]
    assert last["status"] == "completed" and last["summary"]["indexed"] == stats["files"]["indexed"]


def test_stats_human(cli: Cli, indexed: Path) -> None:
    result = cli("stats", "--db", "idx.db", "--failed")
    assert result.exit_code == 0
    text = result.stdout
    assert "hash ragidx-hash-v1 (1024 dims)" in text
    assert "no failed files" in text
    assert "last run" in text and "completed" in text


def test_export_streams_every_chunk(cli: Cli, indexed: Path) -> None:
    result = cli("export", "--db", "idx.db")
    assert result.exit_code == 0
    rows = result.json_lines()
    stats = json.loads(cli("stats", "--db", "idx.db", "--json").stdout)
    assert len(rows) == stats["chunks"]
    keys = [(r["path"], r["ordinal"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert "vector" not in rows[0]
    for row in rows:
        source = Path(row["path"])
        # HTML's and documents' chunks index the text extracted from them, not the file
        if source.suffix not in {".html", ".pdf", ".docx", ".pptx"}:
            text = source.read_bytes().decode("utf-8" if "latin1" not in source.name else "latin-1")
            assert text[row["char_start"] : row["char_end"]] == row["text"]


def test_export_vectors_and_inputs(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "# Title\n\n## Part\n\nSome body text here.\n", "b.txt": "plain text\n"})
    assert cli("index", ".", "--db", "idx.db", "--quiet", "--dimensions", "128").exit_code == 0
    rows = {r["path"]: r for r in cli("export", "--db", "idx.db", "--vectors").json_lines()}
    a, b = rows["a.md"], rows["b.txt"]
    assert a["heading_path"] == ["Title", "Part"]
    assert a["input"] == "Title > Part\n\n" + a["text"]
    assert "input" not in b  # sent exactly as stored
    for row in (a, b):
        vector = np.array(row["vector"])
        assert vector.shape == (128,)
        assert abs(np.linalg.norm(vector) - 1) < 1e-5


@pytest.mark.parametrize("mode", ["text", "hybrid"])
@pytest.mark.parametrize("query", ["画像", "永続"])
def test_cjk_words_are_found(cli: Cli, indexed: Path, query: str, mode: str) -> None:
    hits = cli("search", query, "--db", "idx.db", "--json", "--mode", mode).json_lines()
    assert hits[0]["path"] == "sample_docs/i18n/guide_ja.md"
    assert query in hits[0]["text"]


@pytest.mark.parametrize("query", ["???", '"', "   "])
def test_query_without_words_matches_nothing(cli: Cli, indexed: Path, query: str) -> None:
    result = cli("search", query, "--db", "idx.db")
    assert result.exit_code == 0
    assert result.stdout == "no matches\n"


def test_k_is_bounded(cli: Cli, indexed: Path) -> None:
    result = cli("search", "retry", "--db", "idx.db", "-k", "99999999999999999999")
    assert result.exit_code == 2
