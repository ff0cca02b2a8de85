"""Tests for ragidx.chunk.tokens.counter: the estimate, OpenAI's encodings, a tokenizer.json."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from helpers import DIMS, Cli, db_rows, write
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers

from ragidx.chunk.tokens import BPE_ENCODINGS, ESTIMATE, counter, estimate_tokens
from ragidx.config import TOKENIZER_NAMES, ChunkConfig
from ragidx.errors import ConfigError
from ragidx.testing.server import Faults, serve


def encoding(name: str) -> Any:
    """bpe_openai's own encoding, to check the counter against."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its importlib.resources use
        import bpe_openai  # type: ignore[import-untyped]

        return bpe_openai.get_encoding(name)


PROSE = "The quick brown fox jumps over the lazy dog. 中文字符 and emoji 😀!\n\n  Indented line."


def test_cl100k_counts_the_ids_of_the_encoding() -> None:
    ids = encoding("cl100k_base").encode_ordinary("hello world")
    assert ids == [15339, 1917]  # cl100k's own ids: the real encoding, not a look-alike
    assert counter("cl100k_base").count("hello world") == len(ids) == 2


@pytest.mark.parametrize("name", BPE_ENCODINGS)
def test_bpe_counters_count_what_the_encoding_encodes(name: str) -> None:
    own = encoding(name)
    tokens = counter(name)
    assert tokens.name == name
    for text in ("", "x", PROSE, "<|endoftext|> is ordinary text here", "\ud800 lone surrogate"):
        assert tokens.count(text) == len(own.encode_ordinary(text)), text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_cl100k_count_matches_the_encoding_on_any_text(text: str) -> None:
    own = encoding("cl100k_base")
    assert counter("cl100k_base").count(text) == len(own.encode_ordinary(text))


def test_bpe_counts_text_past_the_encodings_own_limits_exactly() -> None:
    # bpe_openai refuses a million characters, or 200,000 tokens, at once.
    line = "Packing short sections together fills chunks (see issue 16), 2024-06-01.\n"
    text = line * 16_000  # 1.2 million characters
    tokens = counter("cl100k_base").count(text)
    assert tokens == 16_000 * len(encoding("cl100k_base").encode_ordinary(line))


def test_counters_are_built_once_per_process_by_name() -> None:
    assert counter("cl100k_base") is counter("cl100k_base")
    assert counter(None).name == counter(ESTIMATE).name == ESTIMATE
    assert counter(None).count(PROSE) == estimate_tokens(PROSE)
    assert set(TOKENIZER_NAMES) == {*BPE_ENCODINGS, ESTIMATE}


def _word_tokenizer(path: Path, *, truncate: int | None = None) -> Path:
    """A tokenizer.json of whole words (and punctuation), each its own token."""
    vocab = {"[UNK]": 0, "hello": 1, "world": 2}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if truncate is not None:
        tokenizer.enable_truncation(truncate)
    tokenizer.save(str(path))
    return path


def test_a_tokenizer_json_counts_its_own_tokens(tmp_path: Path) -> None:
    path = str(_word_tokenizer(tmp_path / "tokenizer.json", truncate=2))
    tokens = counter(path)
    assert tokens.name == path
    assert tokens.count("hello world") == 2
    # Words and punctuation, every one counted: the file's truncation to 2 is not applied.
    assert tokens.count("hello, unknown world!") == 5


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "no such file"), ("{not json", "not a tokenizer.json"), ('{"a": 1}', "not a")],
)
def test_a_bad_tokenizer_file_is_a_config_error_naming_it(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "tok.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=reason) as caught:
        counter(str(path))
    assert str(path) in caught.value.message


def test_a_directory_is_no_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        counter(str(tmp_path))


def test_chunk_config_checks_the_tokenizer_cheaply(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--tokenizer missing\.json: no such file"):
        ChunkConfig(tokenizer="missing.json")
    with pytest.raises(ConfigError, match="--tokenizer"):
        ChunkConfig(tokenizer="")
    path = tmp_path / "broken.json"
    path.write_text("{", encoding="utf-8")
    # The file exists: reading it is the counter's (and so the chunker's) work.
    assert ChunkConfig(tokenizer=str(path)).tokenizer == str(path)
    for name in TOKENIZER_NAMES:
        assert ChunkConfig(tokenizer=name).tokenizer == name


def test_cli_tokenizer_and_packing_options(cli: Cli, work: Path) -> None:
    sections = "".join(f"## Part {i}\n\nShort text number {i}.\n\n" for i in range(8))
    write(work, {"docs/a.md": "# Guide\n\n" + sections})
    packed = cli("index", "docs", "--db", "p.db", "--json", "--tokenizer", "cl100k_base")
    assert packed.exit_code == 0, packed.stderr
    assert packed.files()["docs/a.md"]["chunks"] == 1
    single = cli(
        "index", "docs", "--db", "s.db", "--json", "--tokenizer", "cl100k_base",
        "--one-section-per-chunk",
    )  # fmt: skip
    assert single.exit_code == 0, single.stderr
    assert single.files()["docs/a.md"]["chunks"] == 8
    rows = cli("export", "--db", "p.db").json_lines()
    assert [r["heading_path"] for r in rows] == [["Guide"]]
    # By default only a model's own encoding packs: the estimate keeps a section a chunk.
    estimated = cli("index", "docs", "--db", "e.db", "--json")
    assert estimated.files()["docs/a.md"]["chunks"] == 8
    forced = cli("index", "docs", "--db", "f.db", "--json", "--pack")
    assert forced.files()["docs/a.md"]["chunks"] == 1


def test_cli_refuses_a_missing_tokenizer_file_without_a_traceback(cli: Cli, work: Path) -> None:
    write(work, {"docs/a.md": "# A\n\ntext\n"})
    result = cli("index", "docs", "--db", "i.db", "--tokenizer", "nope.json")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --tokenizer nope.json: no such file")
    assert "Traceback" not in result.stderr


def test_cli_refuses_a_broken_tokenizer_file_naming_it(cli: Cli, work: Path) -> None:
    write(work, {"docs/a.md": "# A\n\ntext\n", "tok.json": json.dumps({"model": 1})})
    result = cli("index", "docs", "--db", "i.db", "--dry-run", "--tokenizer", "tok.json")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --tokenizer tok.json: not a tokenizer.json")
    assert "Traceback" not in result.stderr


def test_settings_file_keys(cli: Cli, work: Path) -> None:
    sections = "".join(f"## Part {i}\n\nShort text number {i}.\n\n" for i in range(8))
    write(
        work,
        {
            "docs/a.md": "# Guide\n\n" + sections,
            "ragidx.toml": 'pack = false\ntokenizer = "o200k_base"\n',
        },
    )
    result = cli("index", "docs", "--db", "i.db", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.files()["docs/a.md"]["chunks"] == 8


def test_openai_models_are_counted_in_cl100k_and_packed_others_estimated(
    cli: Cli, work: Path
) -> None:
    """Unsaid, the tokenizer follows the model: OpenAI's embedding models read cl100k, so
    chunks are counted in it and packed; any other model is estimated, a section a chunk."""
    sections = "".join(f"## Part {i}\n\nShort text number {i}.\n\n" for i in range(8))
    write(work, {"docs/a.md": "# Guide\n\n" + sections})
    with serve(Faults(dims=DIMS)) as server:
        for model, fingerprint, chunks in (
            ("text-embedding-3-small", "v4:512:64:packed:cl100k_base", 1),
            ("some-local-model", "v4:512:64:sections:estimate", 8),
        ):
            db = f"{model}.db"
            result = cli(
                "index", "docs", "--db", db, "--json", "--provider", "openai", "--base-url",
                f"{server.url}/v1", "--model", model, "--dimensions", str(DIMS),
            )  # fmt: skip
            assert result.exit_code == 0, result.stderr
            assert result.files()["docs/a.md"]["chunks"] == chunks
            assert db_rows(work / db, "SELECT chunking FROM files") == [(fingerprint,)]
