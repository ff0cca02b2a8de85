"""Tests for ragidx.chunk.chunker.chunk_text and ragidx.chunk.tokens.estimate_tokens."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragidx.chunk.chunker import chunk_document, chunk_text
from ragidx.chunk.tokens import estimate_tokens
from ragidx.config import ChunkConfig
from ragidx.errors import ConfigError
from ragidx.models import Chunk, Document

FORMATS = ("markdown", "rst", "html", "text", "code")
PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- document strategy ----------------------------------------------------------------------

WORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# CJK ideographs, kana, full-width punctuation (\uff01 and \uff1f are full-width ! and ?)
# and emoji. U+3000 (ideographic space) is left out here: it breaks the token budget (see
# test_budget_holds_with_ideographic_spaces) and would mask everything else the budget
# property checks. The structural properties use WIDE_WITH_SPACE, which includes it.
WIDE = "中文字符测试日本語のテキスト한국어。、\uff01\uff1f「」😀🎉🚀👍🏽"
WIDE_WITH_SPACE = WIDE + "\u3000"

# Markup a reader of the rendered Markdown never sees; code blocks hold markup of their own,
# which is code and must be kept.
HIDDEN = ("<!-- hidden -->", '<a id="hidden"></a>', "<!--\nhidden\n-->", "</details>")
HIDDEN_RE = re.compile("|".join(map(re.escape, HIDDEN)))

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def hide_outside_fences(text: str) -> str:
    """`text` with the hidden markup blanked where a reader would not see it: outside fenced
    code, which (CommonMark) runs from a line of three or more backticks or tildes to one of
    the same character at least as long, or to the end of the text when it is never closed."""
    lines = text.split("\n")
    code = [False] * len(lines)
    fence = ""
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if fence:
            code[i] = True
            run = m.group(1) if m else ""
            if run[:1] == fence[0] and len(run) >= len(fence) and m and not line[m.end() :].strip():
                fence = ""
        elif m and not (m.group(1)[0] == "`" and "`" in line[m.end() :]):
            code[i], fence = True, m.group(1)
    blocks = []
    for in_code, group in itertools.groupby(zip(lines, code, strict=True), key=lambda lc: lc[1]):
        block = "\n".join(line for line, _ in group)
        blocks.append(block if in_code else _blank(block))
    return "\n".join(blocks)


def _blank(text: str) -> str:
    return HIDDEN_RE.sub(lambda m: " " * len(m.group()), text)


words = st.text(WORD_CHARS, min_size=1, max_size=12)
titles = st.lists(words, min_size=1, max_size=5).map(" ".join)


@st.composite
def paragraphs(draw: st.DrawFn) -> str:
    out = []
    for word in draw(st.lists(words, min_size=1, max_size=80)):
        out.append(word + draw(st.sampled_from(["", "", "", ".", ",", "!", "?", ";"])))
        out.append(draw(st.sampled_from([" ", " ", " ", " ", " ", "\n", "  ", "\t"])))
    return "".join(out).rstrip()


@st.composite
def code_blocks(draw: st.DrawFn) -> str:
    fence = draw(st.sampled_from(["```", "~~~", "````"]))
    lang = draw(st.sampled_from(["", "python", "sh"]))
    body = draw(
        st.lists(
            st.one_of(
                titles.map(lambda t: "# " + t),  # looks like a heading, is not one
                paragraphs().map(lambda p: "    " + p.replace("\n", " ")),
                st.just(""),
                st.sampled_from(["<!-- code -->", '<a id="code"></a>']),
            ),
            max_size=8,
        )
    )
    return "\n".join([fence + lang, *body, fence])


def blocks(wide: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda n, t: "#" * n + " " + t, st.integers(1, 6), titles),
        st.builds(lambda t, c: t + "\n" + c * max(3, len(t)), titles, st.sampled_from("=-~^*")),
        paragraphs(),
        paragraphs(),
        code_blocks(),
        st.text(WORD_CHARS + "-_/.:", min_size=20, max_size=400),  # long words, no spaces
        st.text(wide, min_size=1, max_size=200),
        st.lists(st.sampled_from([*WIDE, " ", "\n"]), min_size=1, max_size=60).map("".join),
        st.sampled_from(["", "\n", "   ", "\n\n\n"]),
        st.lists(st.sampled_from(HIDDEN), min_size=1, max_size=3).map("\n".join),
    )


@st.composite
def documents(draw: st.DrawFn, wide: str = WIDE) -> str:
    parts = draw(st.lists(blocks(wide), max_size=20))
    text = ""
    for part in parts:
        text += part + draw(st.sampled_from(["\n\n", "\n\n", "\n", "\n\n\n", " \n\n"]))
    return draw(st.sampled_from(["", "\n", "  "])) + text


@st.composite
def configs(draw: st.DrawFn) -> ChunkConfig:
    # Biased towards small budgets so that most documents need several chunks.
    tokens = draw(st.one_of(st.integers(16, 48), st.integers(16, 600)))
    overlap = draw(st.integers(0, tokens // 2 - 1))
    return ChunkConfig(chunk_tokens=tokens, chunk_overlap=overlap, pack=draw(st.booleans()))


fmts = st.sampled_from(FORMATS)


def chunk(
    text: str, fmt: str = "markdown", tokens: int = 512, overlap: int = 0, *, pack: bool = False
) -> list[Chunk]:
    """One chunk per section by default: the heading examples below show each section."""
    return chunk_text(text, fmt, ChunkConfig(chunk_tokens=tokens, chunk_overlap=overlap, pack=pack))


# --- properties -----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(documents(), fmts, configs())
def test_every_chunk_fits_the_budget(text: str, fmt: str, config: ChunkConfig) -> None:
    for c in chunk_text(text, fmt, config):
        assert estimate_tokens(c.input) <= config.chunk_tokens, c
        assert c.tokens == estimate_tokens(c.input)


@PROPERTY_SETTINGS
@given(documents(WIDE_WITH_SPACE), fmts, configs())
def test_chunk_text_is_the_slice_of_the_document(text: str, fmt: str, config: ChunkConfig) -> None:
    for c in chunk_text(text, fmt, config):
        assert c.text == text[c.char_start : c.char_end]
        assert 0 <= c.char_start < c.char_end <= len(text)
        assert c.text.strip() == c.text, "chunks are trimmed of surrounding whitespace"


@PROPERTY_SETTINGS
@given(documents(WIDE_WITH_SPACE), fmts, configs())
def test_chunks_cover_the_text_in_order(text: str, fmt: str, config: ChunkConfig) -> None:
    chunks = chunk_text(text, fmt, config)
    # In Markdown, what a reader sees: the text with the hidden markup blanked out.
    shown = hide_outside_fences(text) if fmt == "markdown" else text
    covered = [False] * len(text)
    for c in chunks:
        for i in range(c.char_start, c.char_end):
            covered[i] = True
    for i, ch in enumerate(shown):
        if not ch.isspace():
            assert covered[i], f"character {ch!r} at {i} is in no chunk"
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.char_start > prev.char_start
        assert nxt.char_end > prev.char_end
        gap = shown[prev.char_end : nxt.char_start]
        assert gap.strip() == "", f"non-whitespace {gap!r} between chunks"
    for c in chunks:
        assert shown[c.char_start : c.char_end].strip(), f"{c.text!r}: nothing a reader sees"
    if shown.strip():
        assert chunks
    else:
        assert chunks == []


@PROPERTY_SETTINGS
@given(documents(WIDE_WITH_SPACE), fmts, configs())
def test_chunking_is_deterministic(text: str, fmt: str, config: ChunkConfig) -> None:
    first = chunk_text(text, fmt, config)
    second = chunk_text(text, fmt, ChunkConfig(**vars(config)))
    assert first == second


@PROPERTY_SETTINGS
@given(documents(WIDE_WITH_SPACE), fmts, configs())
def test_line_numbers_match_offsets(text: str, fmt: str, config: ChunkConfig) -> None:
    for c in chunk_text(text, fmt, config):
        assert c.line_start == text.count("\n", 0, c.char_start) + 1
        assert c.line_end == text.count("\n", 0, c.char_end - 1) + 1
        assert c.line_end - c.line_start == c.text.count("\n")


@PROPERTY_SETTINGS
@given(documents(WIDE_WITH_SPACE), fmts, configs())
def test_ordinals_and_inputs(text: str, fmt: str, config: ChunkConfig) -> None:
    chunks = chunk_text(text, fmt, config)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        if not c.heading_path:
            assert c.input == c.text
        elif c.input != c.text:
            # The prefix is the heading path, or its deepest part when the whole is too long.
            prefix, sep, body = c.input.partition("\n\n")
            assert sep
            assert body == c.text
            suffixes = {" > ".join(c.heading_path[i:]) for i in range(len(c.heading_path))}
            assert prefix in suffixes
        if fmt in ("text", "code"):
            assert c.heading_path == ()


# --- examples: headings ---------------------------------------------------------------------


def test_markdown_heading_paths() -> None:
    text = "# A\n\ntext\n\n## B\n\nmore"
    chunks = chunk(text)
    assert [c.heading_path for c in chunks] == [("A",), ("A", "B")]
    assert [c.text for c in chunks] == ["# A\n\ntext", "## B\n\nmore"]
    assert [c.input for c in chunks] == ["A\n\n# A\n\ntext", "A > B\n\n## B\n\nmore"]
    assert [(c.line_start, c.line_end) for c in chunks] == [(1, 3), (5, 7)]


def test_markdown_sibling_and_shallower_headings_pop_the_path() -> None:
    text = "# A\n\na\n\n## B\n\nb\n\n### C\n\nc\n\n## D\n\nd\n\n# E\n\ne\n"
    assert [c.heading_path for c in chunk(text)] == [
        ("A",),
        ("A", "B"),
        ("A", "B", "C"),
        ("A", "D"),
        ("E",),
    ]


def test_text_before_first_heading_has_empty_path() -> None:
    chunks = chunk("preamble line\n\n# H\n\nbody")
    assert [(c.heading_path, c.text) for c in chunks] == [
        ((), "preamble line"),
        (("H",), "# H\n\nbody"),
    ]
    assert chunks[0].input == "preamble line"


def test_closing_hashes_and_indent_in_atx_heading() -> None:
    chunks = chunk("   ## Title here ##\n\nbody")
    assert chunks[0].heading_path == ("Title here",)


def test_hash_without_space_is_not_a_heading() -> None:
    chunks = chunk("#hashtag\n\nbody\n\n####### seven")
    assert [c.heading_path for c in chunks] == [()]


def test_heading_only_section_folds_into_the_next() -> None:
    chunks = chunk("# A\n\n## B\n\ntext")
    assert len(chunks) == 1
    assert chunks[0].heading_path == ("A", "B")
    assert chunks[0].text == "# A\n\n## B\n\ntext"
    assert chunks[0].input.startswith("A > B\n\n")


@pytest.mark.parametrize("fence", ["```", "~~~", "```python"])
def test_hash_line_in_fenced_code_is_not_a_heading(fence: str) -> None:
    close = fence[:3]
    text = f"# Top\n\n{fence}\n# not a heading\nx = 1\n{close}\n\nafter the fence\n"
    chunks = chunk(text)
    assert len(chunks) == 1
    assert chunks[0].heading_path == ("Top",)
    assert "# not a heading" in chunks[0].text
    assert "after the fence" in chunks[0].text


def test_heading_after_closed_fence_is_a_heading() -> None:
    text = "# Top\n\n```\n# inside\n```\n\n## Real\n\nbody\n"
    assert [c.heading_path for c in chunk(text)] == [("Top",), ("Top", "Real")]


def test_shorter_fence_does_not_close_a_longer_one() -> None:
    text = "# Top\n\n````\n```\n# still code\n````\n\n## Real\n\nbody\n"
    assert [c.heading_path for c in chunk(text)] == [("Top",), ("Top", "Real")]


def test_headings_are_ignored_for_plain_text_and_code() -> None:
    text = "# A\n\ntext\n\n## B\n\nmore"
    for fmt in ("text", "code"):
        chunks = chunk(text, fmt)
        assert [c.heading_path for c in chunks] == [()]
        assert chunks[0].input == chunks[0].text == text


def test_html_format_uses_markdown_headings() -> None:
    assert [c.heading_path for c in chunk("# A\n\nx\n\n## B\n\ny\n", "html")] == [
        ("A",),
        ("A", "B"),
    ]


def test_rst_underlined_titles() -> None:
    text = (
        "Title\n=====\n\nIntro text.\n\n"
        "Section\n-------\n\nBody text.\n\n"
        "Other\n-----\n\nMore text.\n"
    )
    chunks = chunk(text, "rst")
    assert [c.heading_path for c in chunks] == [
        ("Title",),
        ("Title", "Section"),
        ("Title", "Other"),
    ]
    assert chunks[1].text == "Section\n-------\n\nBody text."
    assert chunks[1].input == "Title > Section\n\nSection\n-------\n\nBody text."


def test_rst_overlined_title_is_its_own_level() -> None:
    text = "=====\nDoc\n=====\n\nabc\n\nPart\n====\n\ndef\n"
    chunks = chunk(text, "rst")
    assert [c.heading_path for c in chunks] == [("Doc",), ("Doc", "Part")]
    assert chunks[0].char_start == 0


def test_rst_underline_shorter_than_title_is_not_a_title() -> None:
    assert [c.heading_path for c in chunk("Long title\n===\n\nbody\n", "rst")] == [()]


def test_setext_headings_in_markdown() -> None:
    text = "Title\n=====\n\nbody\n\nPart\n----\n\nmore\n"
    assert [c.heading_path for c in chunk(text, "markdown")] == [("Title",), ("Title", "Part")]


def test_front_matter_list_rules_and_paragraph_rules_are_not_headings() -> None:
    text = "---\ntitle: x\n---\n\n- item\n---\n\nline one\nline two\n---\n\nbody\n"
    assert {c.heading_path for c in chunk(text, "markdown")} == {()}


def test_input_starts_with_heading_path() -> None:
    text = "# Guide\n\n## Install\n\n### Linux\n\n" + "apt install thing. " * 200
    chunks = chunk(text, tokens=64, overlap=8)
    assert len(chunks) > 3
    for c in chunks:
        assert c.heading_path == ("Guide", "Install", "Linux")
        assert c.input.startswith("Guide > Install > Linux\n\n")
        assert c.input == "Guide > Install > Linux\n\n" + c.text
        assert estimate_tokens(c.input) <= 64


def test_overlong_heading_path_is_shortened_from_the_top() -> None:
    long_title = " ".join(["word"] * 30)
    text = f"# {long_title}\n\n## Short\n\n" + "body text here " * 40
    chunks = chunk(text, tokens=32, overlap=0)
    assert chunks
    for c in chunks:
        assert c.heading_path == (long_title, "Short")
        assert c.input == "Short\n\n" + c.text
        assert estimate_tokens(c.input) <= 32


# --- examples: budget and overlap -----------------------------------------------------------


LONG_PARAGRAPH = " ".join(f"word{i}" for i in range(600))


def test_small_section_is_one_chunk() -> None:
    chunks = chunk("just a little text\n", "text")
    assert len(chunks) == 1
    assert chunks[0] == Chunk(
        ordinal=0,
        text="just a little text",
        input="just a little text",
        char_start=0,
        char_end=18,
        line_start=1,
        line_end=1,
        heading_path=(),
        tokens=estimate_tokens("just a little text"),
    )


@pytest.mark.parametrize("overlap", [3, 8, 16, 31])
def test_overlap_makes_consecutive_chunks_overlap(overlap: int) -> None:
    chunks = chunk(LONG_PARAGRAPH, "text", tokens=64, overlap=overlap)
    assert len(chunks) > 5
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.char_start < prev.char_end
        shared = LONG_PARAGRAPH[nxt.char_start : prev.char_end]
        assert estimate_tokens(shared) <= overlap
        assert estimate_tokens(nxt.input) <= 64


def test_no_overlap_when_overlap_is_zero() -> None:
    chunks = chunk(LONG_PARAGRAPH, "text", tokens=64, overlap=0)
    assert len(chunks) > 5
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.char_start > prev.char_end
        assert LONG_PARAGRAPH[prev.char_end : nxt.char_start] == " "


def test_chunks_never_span_two_sections() -> None:
    text = "# A\n\n" + "alpha " * 100 + "\n\n# B\n\n" + "beta " * 100
    chunks = chunk(text, tokens=48, overlap=10)
    b_start = text.index("# B")
    for c in chunks:
        assert c.char_end <= b_start or c.char_start >= b_start
        assert c.heading_path == (("A",) if c.char_start < b_start else ("B",))


def test_paragraph_boundaries_are_preferred() -> None:
    paras = [" ".join([f"p{n}w{i}" for i in range(10)]) for n in range(6)]
    text = "\n\n".join(paras)
    budget = estimate_tokens(paras[0]) * 2 + 1
    chunks = chunk(text, "text", tokens=max(budget, 16))
    for c in chunks:
        assert c.text.startswith("p") and c.text.split()[0].endswith("w0")
        assert c.text.split()[-1].endswith("w9")


def test_long_word_is_split_inside_the_word() -> None:
    word = "x" * 2000
    chunks = chunk(word, "text", tokens=16)
    assert len(chunks) > 1
    assert "".join(c.text for c in chunks) == word
    assert all(estimate_tokens(c.input) <= 16 for c in chunks)


def test_cjk_without_spaces_fits_budget() -> None:
    text = "中文字符测试" * 100
    chunks = chunk(text, "text", tokens=20)
    assert "".join(c.text for c in chunks) == text
    assert all(estimate_tokens(c.input) <= 20 for c in chunks)


def test_budget_holds_with_ideographic_spaces() -> None:
    text = "字\u3000\u3000" * 200
    chunks = chunk(text, "text", tokens=16)
    assert max(estimate_tokens(c.input) for c in chunks) <= 16


def test_empty_and_whitespace_text_gives_no_chunks() -> None:
    assert chunk("") == []
    assert chunk(" \n\n\t \n") == []


def test_chunk_document_uses_text_and_format() -> None:
    doc = Document(
        path=Path("x.md"),
        text="# A\n\nbody\n",
        format="markdown",
        encoding="utf-8",
        content_hash="0" * 32,
        size=11,
        mtime_ns=0,
    )
    config = ChunkConfig()
    assert chunk_document(doc, config) == chunk_text(doc.text, "markdown", config)
    assert chunk_document(doc, config)[0].heading_path == ("A",)


# --- ChunkConfig ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "overlap", "message"),
    [
        (15, 0, "--chunk-tokens"),
        (0, 0, "--chunk-tokens"),
        (100, 50, "--chunk-overlap"),
        (100, -1, "--chunk-overlap"),
        (16, 8, "--chunk-overlap"),
    ],
)
def test_chunk_config_validation(tokens: int, overlap: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ChunkConfig(chunk_tokens=tokens, chunk_overlap=overlap)


def test_chunk_config_bounds_accepted_and_fingerprint() -> None:
    assert ChunkConfig(chunk_tokens=16, chunk_overlap=7).fingerprint == "v4:16:7:sections:estimate"
    assert ChunkConfig().fingerprint == "v4:512:64:sections:estimate"
    # Unsaid, packing follows the tokenizer: a model's own encoding packs.
    assert ChunkConfig(tokenizer="cl100k_base").fingerprint == "v4:512:64:packed:cl100k_base"
    assert ChunkConfig(pack=True).fingerprint == "v4:512:64:packed:estimate"
    assert (
        ChunkConfig(chunk_tokens=100, chunk_overlap=49).fingerprint
        != ChunkConfig(chunk_tokens=100, chunk_overlap=48).fingerprint
    )
    fingerprints = {
        ChunkConfig(pack=pack, tokenizer=tokenizer).fingerprint
        for pack in (True, False)
        for tokenizer in (None, "cl100k_base", "o200k_base")
    }
    assert len(fingerprints) == 6  # packing and the tokenizer each re-chunk an index


# --- estimate_tokens ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("the", 1),
        ("tokenizer", 3),
        ("abcd", 1),
        ("abcde", 2),
        ("123", 1),
        ("1234", 2),
        ("!", 1),
        ("a, b.", 4),
        ("é", 1),
        ("中", 2),
        ("😀", 2),
        (" ", 0),
        ("a b", 2),
        ("a  b", 3),
        ("a\nb", 3),
        ("\n\n\n", 1),
        ("word12", 2),
    ],
)
def test_estimate_tokens_examples(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_estimate_tokens_joined_by_a_space_is_at_most_the_sum_plus_one(a: str, b: str) -> None:
    assert estimate_tokens(a + " " + b) <= estimate_tokens(a) + estimate_tokens(b) + 1


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text())
def test_estimate_tokens_is_monotone_under_concatenation(a: str, b: str) -> None:
    whole = estimate_tokens(a + b)
    assert whole >= estimate_tokens(a)
    assert whole >= estimate_tokens(b)
    assert estimate_tokens(a) >= 0


@settings(max_examples=300, deadline=None)
@given(st.text(WORD_CHARS + WIDE + ".,;!?-", min_size=1))
def test_estimate_tokens_of_visible_text_is_positive_and_at_most_two_per_char(text: str) -> None:
    assert 1 <= estimate_tokens(text) <= 2 * len(text)


def _reference_estimate(text: str) -> int:
    """The rules of ragidx.chunk.tokens, written out one by one."""
    tokens = sum((len(run) + 3) // 4 for run in re.findall(r"[A-Za-z]+", text))
    tokens += sum((len(run) + 2) // 3 for run in re.findall(r"[0-9]+", text))
    tokens += len(re.findall(r"[^\sA-Za-z0-9]", text))
    tokens += len(re.findall(r"[^\x00-\u2e7f\s]", text))
    tokens += len(re.findall(r"[ \t\f\v]*\n\s*|\s{2,}", text))
    return tokens


@given(st.text(alphabet="aZ09 .,\n\t\r\x0b\x1c-_#é日😀\u3000", max_size=60))
def test_estimate_follows_its_rules(text: str) -> None:
    assert estimate_tokens(text) == _reference_estimate(text)
