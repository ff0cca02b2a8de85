"""The CLI against a Postgres index (`--db postgresql://...`): index, search, stats, export
and gc work as on SQLite; a second run finds every file unchanged; the URL's password never
reaches the output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Cli, make_tree

pytestmark = pytest.mark.postgres


def _with_password(url: str) -> str:
    # pgserver's superuser has no password; one in the URL is ignored by the server's trust
    # rule, so a test can check that it is never shown.
    return url.replace("postgres:@", "postgres:s3cret-pw@", 1)


def test_index_search_stats_export_and_gc_on_postgres(
    tmp_path: Path, cli: Cli, pg_url: str
) -> None:
    url = _with_password(pg_url)
    tree = tmp_path / "tree"
    make_tree(tree, 12)
    (tree / "special.md").write_text("# Ops\n\nThe zebra-7 runbook restarts the ingest queue.\n")
    first = cli("index", str(tree), "--db", url, "--json")
    assert first.exit_code == 0, first.stderr
    done = [json.loads(line) for line in first.stdout.splitlines()]
    summary = done[-1]
    assert summary["indexed"] == 13 and summary["failed"] == 0
    # The HNSW graph is built as the first run ends, and the user is told what it waits for.
    assert "finishing: building the vector index over" in first.stderr
    again = cli("index", str(tree), "--db", url, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["unchanged"] == 13
    assert "building the vector index" not in again.stderr  # built once, kept up since

    found = cli("search", "zebra-7 runbook", "--db", url, "--json")
    assert found.exit_code == 0, found.stderr
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    assert hits and hits[0]["path"].endswith("special.md")

    stats = cli("stats", "--db", url, "--json")
    assert stats.exit_code == 0, stats.stderr
    record = json.loads(stats.stdout)
    assert record["files"]["indexed"] == 13
    assert record["chunks"] == record["vectors"] > 0
    assert [w["status"] for w in record["workers"]] == ["completed", "completed"]
    assert record["workers"][1]["files_done"] == 13

    exported = cli("export", "--db", url)
    assert exported.exit_code == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(rows) == record["chunks"]

    (tree / "special.md").write_text("# Ops\n\nNothing about animals here any more.\n")
    third = cli("index", str(tree), "--db", url, "--json")
    assert third.exit_code == 0, third.stderr
    gc = cli("gc", "--db", url, "--json")
    assert gc.exit_code == 0, gc.stderr
    assert json.loads(gc.stdout)["vectors"] >= 1  # the old text's vector, no chunk uses it
    for result in (first, again, found, stats, exported, third, gc):
        assert "s3cret-pw" not in result.stdout + result.stderr


def test_a_wrong_postgres_url_is_a_clear_error(tmp_path: Path, cli: Cli, pg_url: str) -> None:
    url = _with_password(pg_url).replace("/t_", "/no_such_db_", 1)
    tree = tmp_path / "tree"
    make_tree(tree, 2)
    result = cli("index", str(tree), "--db", url)
    assert result.exit_code == 2
    assert "\nerror: cannot connect" in result.stderr and "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr
    assert "no_such_db_" in result.stderr


def test_dry_run_and_doctor_refuse_a_postgres_index(tmp_path: Path, cli: Cli, pg_url: str) -> None:
    tree = tmp_path / "tree"
    make_tree(tree, 2)
    dry = cli("index", str(tree), "--db", pg_url, "--dry-run")
    assert dry.exit_code == 2 and "--dry-run" in dry.stderr
    doctor = cli("doctor", "--db", pg_url)
    assert doctor.exit_code == 2 and "SQLite" in doctor.stderr


def test_ragidx_db_may_name_a_postgres_index(
    tmp_path: Path, cli: Cli, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree, 3)
    monkeypatch.setenv("RAGIDX_DB", pg_url)
    result = cli("index", str(tree), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["indexed"] == 3
    stats = cli("stats", "--json")
    assert stats.exit_code == 0 and json.loads(stats.stdout)["files"]["indexed"] == 3
    # The library reads it too: an IndexConfig() made now indexes into the same database.
    from ragidx.config import IndexConfig

    config = IndexConfig()
    assert config.db_url == pg_url
    assert not (tmp_path / ".ragidx").exists()
