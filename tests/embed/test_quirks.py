"""Real servers' quirks, each imitated by the test server on 127.0.0.1, and what ragidx does.

- llama.cpp's server refuses an input longer than its batch with HTTP 500 "input is too large
  to process": not transient, so the chunk is split, never retried;
- some llama.cpp builds return vectors that are not unit length: stored normalised, or as
  they came with `--no-normalize`, and the index holds every later run to that choice;
- Ollama answers an empty input with a vector of zeros: no blank input is ever sent;
- Infinity counts `usage.prompt_tokens` in characters (tests/test_http.py).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
from helpers import DIMS, FILES, LONG, Cli, assert_exact, db_rows, index_with, stored, write

from ragidx.testing.server import Faults, expected_vector, serve


def test_a_500_input_is_too_large_splits_the_chunk_and_is_not_retried(cli: Cli, work: Path) -> None:
    write(work, {**FILES, "docs/f07.md": LONG})
    with serve(Faults(dims=DIMS, too_large_chars=200)) as server:
        result = index_with(cli, server, "--batch-size", "4")
        again = index_with(cli, server, "--batch-size", "4")
    assert result.exit_code == 0, result.stderr
    summary = result.summary()
    assert summary["failed"] == 0 and summary["retries"] == 0
    assert "split to fit" in result.files()["docs/f07.md"]["reason"]
    pieces = stored()["f07.md"]
    assert len(pieces) >= 3 and all(len(text) <= 200 for text, _ in pieces)
    assert_exact(12)
    # The batch holding the long chunk, its halves, the chunk alone, then its pieces and
    # theirs: each refused once and never asked again (no retries above).
    assert 1 <= server.counters.statuses[500] <= 8
    line = again.files()["docs/f07.md"]  # a re-run keeps the reason
    assert line["status"] == "unchanged" and "split to fit" in line["reason"]


def _lengths(db: str = "idx.db") -> list[float]:
    conn = sqlite3.connect(db)
    blobs = [blob for (blob,) in conn.execute("SELECT vector FROM vectors")]
    conn.close()
    return [float(np.linalg.norm(np.frombuffer(b, "<f4"))) for b in blobs]


def _first_input(cli: Cli) -> tuple[str, str]:
    record = json.loads(cli("export", "--db", "idx.db", "--vectors").stdout.splitlines()[0])
    return record["path"], record.get("input", record["text"])


def test_vectors_that_are_not_unit_length_are_normalised(cli: Cli, work: Path) -> None:
    write(work, FILES)
    with serve(Faults(dims=DIMS, scale=3.5)) as server:
        result = index_with(cli, server)
        assert result.exit_code == 0, result.stderr
        assert_exact(12)  # the server's direction, at length 1
        assert np.allclose(_lengths(), 1.0, atol=1e-5)
        path, text = _first_input(cli)
        hits = cli("search", text, "--db", "idx.db", "--mode", "vector", "--json").json_lines()
        assert hits[0]["path"] == path
        # The index was built normalised: a run that would store raw vectors is refused.
        refused = index_with(cli, server, "--no-normalize")
    assert refused.exit_code == 2
    assert "built with normalize 'true', not 'false'" in refused.stderr
    assert "--reset" in refused.stderr


def test_no_normalize_keeps_vectors_as_the_server_sent_them(cli: Cli, work: Path) -> None:
    write(work, FILES)
    with serve(Faults(dims=DIMS, scale=3.5)) as server:
        result = index_with(cli, server, "--no-normalize")
        assert result.exit_code == 0, result.stderr
        assert np.allclose(_lengths(), 3.5, atol=1e-4)
        for chunks in stored().values():
            for text, vector in chunks:
                assert np.allclose(vector, 3.5 * expected_vector(text, DIMS), atol=1e-5)
        path, text = _first_input(cli)
        hits = cli("search", text, "--db", "idx.db", "--mode", "vector", "--json").json_lines()
        assert hits[0]["path"] == path
        refused = index_with(cli, server)  # normalize, the default, on an index built without
    assert refused.exit_code == 2 and "not 'true'" in refused.stderr


BLANK = {
    "docs/spaces.md": "   \n\n\t\n   \n",
    "docs/nbsp.txt": "\u00a0\u00a0\n\u2003\u3000\n",
    "docs/blank.html": "<html><body> <p> </p>\n<div>\u00a0</div></body></html>",
    "docs/crlf.txt": "\r\n\r\n \r\n",
}


# Blank stretches inside files that have text: empty headings, blank sections, and megabytes
# of whitespace before the words of a file read in segments.
GAPPY = {
    "docs/sections.md": "# One\n\nText one.\n\n#\n\n\u00a0\n\n##  \n\n \t \n\n# Two\n\nText two.\n",
    "docs/late.txt": " \n" * (3 * 1024 * 1024) + "\nThe words come at last.\n",
}


def test_no_blank_input_is_ever_sent(cli: Cli, work: Path) -> None:
    write(work, {**FILES, **BLANK, **GAPPY})
    with serve(Faults(dims=DIMS, empty_zeros=True)) as server:
        result = cli(
            "index", "docs", "--db", "idx.db", "--json", "--provider", "ollama",
            "--base-url", server.url, "--model", "m",
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert server.counters.blank == 0
    files = result.files()
    for path in BLANK:
        assert files[path]["status"] == "skipped", files[path]
        assert files[path]["chunks"] == 0
    assert result.summary()["indexed"] == 14
    texts = {name: [t for t, _ in chunks] for name, chunks in stored().items()}
    assert any("Text two." in t for t in texts["sections.md"])
    assert any("The words come at last." in t for t in texts["late.txt"])
    assert all(t.strip() for chunks in texts.values() for t in chunks)
    assert min(_lengths()) > 0.99  # no vector of zeros stored


def test_an_index_from_before_the_choice_is_held_to_what_it_stored(cli: Cli, work: Path) -> None:
    # Older indexes kept vectors as servers sent them and recorded no choice.
    write(work, FILES)
    for scale, default_run in ((1.0, 0), (3.5, 2)):
        with serve(Faults(dims=DIMS, scale=scale)) as server:
            assert index_with(cli, server, "--no-normalize", "--reset").exit_code == 0
            with sqlite3.connect("idx.db") as conn:
                conn.execute("DELETE FROM manifest WHERE key = 'normalize'")
            write(work, {"docs/new.md": "# New\n\nA file added since.\n"})
            result = index_with(cli, server)
        assert result.exit_code == default_run, result.stderr
        if default_run:  # raw vectors stored: normalising the new ones would mix the two
            assert "built with normalize 'false', not 'true'" in result.stderr
        else:  # unit vectors stored: the default holds, and is recorded
            recorded = db_rows(Path("idx.db"), "SELECT value FROM manifest WHERE key = 'normalize'")
            assert recorded == [("true",)]
            (work / "docs/new.md").unlink()


def test_doctor_says_whether_vectors_are_unit_length(cli: Cli, work: Path) -> None:
    with serve(Faults(dims=DIMS, scale=3.5)) as server:
        base = ("doctor", "--base-url", f"{server.url}/v1", "--model", "m", "--json")
        checks = {r["name"]: r for r in cli(*base).json_lines()}
        kept = {r["name"]: r for r in cli(*base, "--no-normalize").json_lines()}
    with serve(Faults(dims=DIMS)) as server:
        base = ("doctor", "--base-url", f"{server.url}/v1", "--model", "m", "--json")
        unit = {r["name"]: r for r in cli(*base).json_lines()}
    assert checks["vectors"]["detail"] == "length 3.5, not 1: ragidx scales them to 1"
    assert kept["vectors"]["detail"] == "length 3.5, not 1: ragidx keeps them (--no-normalize)"
    assert unit["vectors"]["detail"] == "unit length"
