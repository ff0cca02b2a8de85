"""Short sections packed into fuller chunks, and budgets held under every token counter."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_chunker import WIDE_WITH_SPACE, documents, fmts
from tokenizers import Tokenizer, models, pre_tokenizers

from ragidx.chunk.chunker import Chunker, chunk_text
from ragidx.chunk.tokens import counter
from ragidx.config import ChunkConfig
from ragidx.models import Chunk


def packed(text: str, tokens: int = 512, overlap: int = 0, **extra: object) -> list[Chunk]:
    extra.setdefault("pack", True)
    config = ChunkConfig(chunk_tokens=tokens, chunk_overlap=overlap, **extra)  # type: ignore[arg-type]
    return chunk_text(text, "markdown", config)


def test_short_sections_share_a_chunk_under_their_common_parent() -> None:
    text = "# A\n\ntext\n\n## B\n\nmore\n\n## C\n\nmost\n"
    (only,) = packed(text)
    assert only.heading_path == ("A",)
    assert only.text == text.strip()  # each section keeps its heading line
    assert only.input == "A\n\n" + only.text
    assert (only.line_start, only.line_end) == (1, 11)


def test_text_before_the_first_heading_packs_with_an_empty_path() -> None:
    (only,) = packed("preamble line\n\n# H\n\nbody")
    assert only.heading_path == ()
    assert only.input == only.text == "preamble line\n\n# H\n\nbody"


def _section(title: str, words: int, level: int = 2) -> str:
    return "#" * level + f" {title}\n\n" + " ".join(f"{title.lower()}{i}" for i in range(words))


def test_the_highest_level_that_fits_is_kept_whole() -> None:
    # Guide's two parts each fit, together they do not: each is a chunk with its subsections.
    # (The bare `# Guide` line joins the section after it, so the first path is One's.)
    one = "\n\n".join([_section("One", 20), _section("OneA", 20, 3), _section("OneB", 20, 3)])
    two = "\n\n".join([_section("Two", 20), _section("TwoA", 20, 3)])
    text = f"# Guide\n\n{one}\n\n{two}\n"
    chunks = packed(text, tokens=200)
    assert [c.heading_path for c in chunks] == [("Guide", "One"), ("Guide", "Two")]
    assert chunks[0].text == f"# Guide\n\n{one}"
    assert chunks[1].text == two
    # Smaller: One is taken apart (Two still fits whole), and its pieces packed in order.
    smaller = packed(text, tokens=120)
    assert [c.heading_path for c in smaller] == [
        ("Guide", "One"),
        ("Guide", "One", "OneB"),
        ("Guide", "Two"),
    ]
    assert smaller[2].text == two
    for c in chunks:
        assert c.tokens <= 200


def test_a_section_too_large_is_split_alone_with_overlap() -> None:
    text = "\n\n".join(
        [
            "# Doc",
            _section("Small", 5),
            _section("Huge", 400),
            _section("Tail", 5),
            _section("End", 5),
        ]
    )
    chunks = packed(text, tokens=64, overlap=8)
    huge = [c for c in chunks if c.heading_path == ("Doc", "Huge")]
    assert len(huge) > 5
    for prev, nxt in itertools.pairwise(huge):
        assert nxt.char_start < prev.char_end  # the overlap stays inside the section
    # The sections around it are packed with their neighbours, never with a piece of it.
    first, last = chunks[0], chunks[-1]
    assert first.heading_path == ("Doc", "Small") and "huge0" not in first.text
    assert last.heading_path == ("Doc",) and last.text.startswith("## Tail")
    assert "## End" in last.text


def test_packing_makes_fewer_fuller_chunks_than_one_section_each() -> None:
    text = "# Manual\n\n" + "\n\n".join(_section(f"S{i}", 20) for i in range(30))
    one_each = packed(text, pack=False)
    together = packed(text)
    assert len(one_each) == 30
    assert len(together) < 10
    assert sum(c.tokens for c in together) < sum(c.tokens for c in one_each)
    assert " ".join(c.text for c in together).split() == text.split()


def test_segments_are_packed_apart() -> None:
    first = "# A\n\nalpha\n\n## B\n\nbeta\n\n"
    second = "## C\n\ngamma\n\n# D\n\ndelta\n"
    chunker = Chunker("markdown", ChunkConfig(pack=True))
    chunks = chunker.feed(first) + chunker.feed(second)
    assert [c.text for c in chunks] == [first.strip(), second.strip()]
    assert [c.heading_path for c in chunks] == [("A",), ()]
    assert chunks[1].char_start == len(first)
    assert chunks[1].line_start == first.count("\n") + 1


# --- every counter --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def word_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tokenizer.json of whole words and single punctuation marks, unknown ones included."""
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tokenizer.save(str(path))
    return str(path)


@st.composite
def budgets(draw: st.DrawFn) -> tuple[int, int, bool]:
    tokens = draw(st.one_of(st.integers(16, 48), st.integers(16, 400)))
    return tokens, draw(st.integers(0, tokens // 2 - 1)), draw(st.booleans())


COUNTER_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _check_budget(text: str, fmt: str, config: ChunkConfig) -> None:
    tokens = counter(config.tokenizer)
    chunks = chunk_text(text, fmt, config)
    for c in chunks:
        assert c.tokens == tokens.count(c.input), c
        assert c.tokens <= config.chunk_tokens, c
        assert c.text == text[c.char_start : c.char_end]
        assert c.line_start == text.count("\n", 0, c.char_start) + 1
        assert c.line_end == text.count("\n", 0, c.char_end - 1) + 1
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for prev, nxt in itertools.pairwise(chunks):
        assert prev.char_start < nxt.char_start and prev.char_end < nxt.char_end
    if text.strip() and fmt != "markdown":
        assert chunks


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
@COUNTER_SETTINGS
@given(text=documents(WIDE_WITH_SPACE), fmt=fmts, budget=budgets())
def test_no_chunk_exceeds_the_budget_under_openai_encodings(
    name: str, text: str, fmt: str, budget: tuple[int, int, bool]
) -> None:
    tokens, overlap, pack = budget
    config = ChunkConfig(chunk_tokens=tokens, chunk_overlap=overlap, pack=pack, tokenizer=name)
    _check_budget(text, fmt, config)


def test_no_chunk_exceeds_the_budget_under_a_tokenizer_json(word_tokenizer: str) -> None:
    @COUNTER_SETTINGS
    @given(text=documents(WIDE_WITH_SPACE), fmt=fmts, budget=budgets())
    def check(text: str, fmt: str, budget: tuple[int, int, bool]) -> None:
        tokens, overlap, pack = budget
        config = ChunkConfig(
            chunk_tokens=tokens, chunk_overlap=overlap, pack=pack, tokenizer=word_tokenizer
        )
        _check_budget(text, fmt, config)

    check()


@pytest.mark.parametrize("name", [None, "cl100k_base"])
def test_budget_holds_where_joins_cost_more_than_pieces(name: str | None) -> None:
    # Runs of punctuation and digits, which BPE merges differently when pieces are joined.
    text = "# T (1)\n\n" + " ".join(f"{i}){i}.{i}!?" * 3 for i in range(400)) + "\n"
    config = ChunkConfig(chunk_tokens=16, chunk_overlap=3, tokenizer=name)
    tokens = counter(name)
    chunks = chunk_text(text, "markdown", config)
    assert len(chunks) > 20
    assert all(tokens.count(c.input) == c.tokens <= 16 for c in chunks)


def test_cl100k_chunks_are_fuller_than_estimated_ones(tmp_path: Path) -> None:
    text = "# Notes\n\n" + "\n\n".join(_section(f"Topic{i}", 60) for i in range(20))
    estimated = packed(text)
    exact = packed(text, tokenizer="cl100k_base")
    cl100k = counter("cl100k_base")
    assert len(exact) < len(estimated)
    assert max(cl100k.count(c.input) for c in exact) <= 512
    assert sum(c.tokens for c in exact) / len(exact) > 512 * 0.6
