"""One stretch of text too large for its budget, cut into chunks that fit, with overlap.

The stretch is split recursively, first at blank lines, then at line breaks, then after
sentences, then between words, and as a last resort inside a word, until every piece fits;
pieces are then packed greedily back into chunks. Each chunk after the first starts with up
to `overlap` tokens of whole pieces from the end of the one before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from ragidx.chunk.tokens import TokenCounter

__all__ = ["Part", "Splitter", "gap_tokens", "trim"]

_SEPARATORS = (
    re.compile(r"\n[ \t]*\n\s*"),  # blank lines: paragraphs
    re.compile(r"\n\s*"),  # line breaks
    re.compile(r"(?<=[.!?。！？])\s+"),  # sentences  # noqa: RUF001 - CJK full stops
    re.compile(r"\s+"),  # words
)
_NON_SPACE = re.compile(r"\S")

_Piece = tuple[int, int, int, bool]
"""Start, end, tokens, and whether the text around it is whitespace (a piece cut inside a
word is not: the count of two such pieces is not that of their join)."""

Part = tuple[int, int, int]
"""A paragraph's start, end and tokens."""

Measure = Callable[[int, int], int]
"""The exact tokens of the input a chunk of text[start:end] makes (prefix included)."""


class Splitter:
    """Splits stretches of one text into pieces that fit a budget, then packs them with
    overlap. `additive`: the counter's counts add up over text cut at whitespace (the
    estimate), so a chunk's count is its pieces'; otherwise every chunk is counted again,
    whole, and one over the budget is cut smaller."""

    def __init__(self, text: str, shown: str, counter: TokenCounter, overlap: int) -> None:
        self.text = text
        self.shown = shown
        self.count = counter.count
        self.additive = bool(getattr(counter, "additive", False))
        self.overlap = overlap

    def paragraphs(self, start: int, end: int) -> tuple[list[Part], int]:
        """The paragraphs of text[start:end] (trimmed) with their tokens, and the tokens of
        the whole taken as theirs and the blank lines' (exact for the estimate)."""
        text, count = self.text, self.count
        parts = [(a, b, count(text[a:b])) for a, b in _split(text, start, end, _SEPARATORS[0])]
        gaps = sum(gap_tokens(text, parts[k][1], parts[k + 1][0]) for k in range(len(parts) - 1))
        return parts, sum(p[2] for p in parts) + gaps

    def spans(
        self,
        start: int,
        end: int,
        budget: int,
        limit: int,
        measure: Measure,
        paragraphs: list[Part] | None = None,
    ) -> Iterator[tuple[int, int, int]]:
        """Each chunk's start and end within text[start:end], and the tokens of its input:
        `budget` for its text, `limit` for its input, which `measure` counts exactly;
        `paragraphs`: the range's, where they were counted. A chunk starts and ends with
        pieces a reader sees, and holds one not in the chunk before: pieces of markup alone,
        or with the overlap, make no chunk."""
        budget = max(budget, 1)
        if paragraphs is None:
            pieces = self._pieces(*trim(self.text, start, end), 0, budget)
        else:
            pieces = []
            for a, b, size in paragraphs:
                fits = size <= budget
                pieces += [(a, b, size, True)] if fits else self._pieces(a, b, 1, budget, size)
        seen = [bool(_NON_SPACE.search(self.shown, a, b)) for a, b, _, _ in pieces]
        i, last = 0, -1
        while i < len(pieces):
            j, total = i, pieces[i][2]
            # Joining two pieces adds at most one token: the whitespace between them.
            while j + 1 < len(pieces) and total + 1 + pieces[j + 1][2] <= budget:
                j += 1
                total += 1 + pieces[j][2]
            a, b = i, j
            while a < b and not seen[a]:
                a += 1
            while b > a and not seen[b]:
                b -= 1
            if seen[b] and b > last:
                tokens = self._exact(pieces, a, b, limit - budget)
                if tokens is None:
                    tokens = measure(pieces[a][0], pieces[b][1])
                if tokens > limit:
                    fitted = _shrink(pieces, seen, a, b, last, limit, measure)
                    if fitted is None and self._refine(pieces, seen, a, tokens - limit):
                        continue  # the one piece, over with the prefix, is now smaller ones
                    a, b, tokens = fitted or (a, b, tokens)
                    j = b
                yield pieces[a][0], pieces[b][1], tokens
                last = b
            if j + 1 >= len(pieces):
                return
            # The overlap repeats the chunk's tail, never its first piece a reader sees: a
            # window that began with hidden markup would otherwise start the next chunk there.
            i = max(self._overlap_start(pieces, i, j, budget), a + 1)

    def _refine(self, pieces: list[_Piece], seen: list[bool], k: int, over: int) -> bool:
        """Cut piece `k` into smaller ones, `over` tokens below its count; False for a
        single character, which goes over the budget alone."""
        a, b, size, _ = pieces[k]
        if b - a <= 1:
            return False
        finer = self._pieces(a, b, 0, max(size - over, 1))
        pieces[k : k + 1] = finer
        seen[k : k + 1] = [bool(_NON_SPACE.search(self.shown, x, y)) for x, y, _, _ in finer]
        return True

    def _exact(self, pieces: list[_Piece], i: int, j: int, prefix: int) -> int | None:
        """The input's tokens from the pieces' own, where the counter adds up."""
        if not self.additive or not all(p[3] for p in pieces[i : j + 1]):
            return None
        text = self.text
        gaps = sum(gap_tokens(text, pieces[k][1], pieces[k + 1][0]) for k in range(i, j))
        return prefix + sum(p[2] for p in pieces[i : j + 1]) + gaps

    def _overlap_start(self, pieces: list[_Piece], i: int, j: int, budget: int) -> int:
        nxt = pieces[j + 1][2] + 1
        k, carried = j + 1, 0
        while k - 1 > i:
            cost = pieces[k - 1][2] + 1
            if carried + cost > self.overlap or carried + cost + nxt > budget:
                break
            k -= 1
            carried += cost
        return k

    def _pieces(
        self, start: int, end: int, level: int, budget: int, size: int | None = None
    ) -> list[_Piece]:
        """The range as one piece if it fits, else its parts at this level's separator,
        themselves split further where they do not fit. Text is counted once at each level
        it is split at; the whole's count is taken as its parts' plus the whitespace between
        (exact for the estimate). `size` is the range's count, when known."""
        if start >= end:
            return []
        if level == len(_SEPARATORS):
            return self._hard_split(start, end, budget)
        text, count = self.text, self.count
        parts = list(_split(text, start, end, _SEPARATORS[level]))
        if len(parts) == 1:
            (a, b) = parts[0]
            size = count(text[a:b]) if size is None else size
            if size <= budget:
                return [(a, b, size, True)]
            return self._pieces(a, b, level + 1, budget, size)
        sizes = [count(text[a:b]) for a, b in parts]
        gaps = sum(gap_tokens(text, parts[k][1], parts[k + 1][0]) for k in range(len(parts) - 1))
        if size is None and (whole := sum(sizes) + gaps) <= budget:
            return [(start, end, whole, True)]
        out: list[_Piece] = []
        for (a, b), part in zip(parts, sizes, strict=True):
            fits = part <= budget
            out += [(a, b, part, True)] if fits else self._pieces(a, b, level + 1, budget, part)
        return out

    def _hard_split(self, start: int, end: int, budget: int) -> list[_Piece]:
        # No whitespace left. No character costs the estimate more than two tokens; another
        # counter's window is halved until it fits (a character alone always goes).
        text, count = self.text, self.count
        width = max(budget // 2, 1)
        out: list[_Piece] = []
        a = start
        while a < end:
            b = min(a + width, end)
            size = count(text[a:b])
            while size > budget and b - a > 1:
                b = a + (b - a) // 2
                size = count(text[a:b])
            out.append((a, b, size, False))
            a = b
        return out


def _shrink(
    pieces: list[_Piece], seen: list[bool], a: int, b: int, last: int, limit: int, measure: Measure
) -> tuple[int, int, int] | None:
    """Pieces a..b less their last ones (while one not in the chunk before stays), then
    less their first ones (the overlap), until the input fits; None if one piece is over."""
    tokens = limit + 1
    while tokens > limit:
        nb = b - 1
        while nb > a and not seen[nb]:
            nb -= 1
        if a <= nb < b and nb > last and seen[nb]:
            b = nb
        elif a < b:
            a += 1
            while a < b and not seen[a]:
                a += 1
        else:
            return None
        tokens = measure(pieces[a][0], pieces[b][1])
    return a, b, tokens


def gap_tokens(text: str, end: int, start: int) -> int:
    """The estimate of the whitespace between two pieces: a run with a newline, or of two
    or more characters, is a token (see `ragidx.chunk.tokens`)."""
    return 1 if end + 1 < start or (end < start and text[end] == "\n") else 0


def _split(text: str, start: int, end: int, sep: re.Pattern[str]) -> Iterator[tuple[int, int]]:
    pos = start
    for m in sep.finditer(text, start, end):
        if m.start() > pos:
            yield trim(text, pos, m.start())
        pos = m.end()
    if pos < end:
        yield trim(text, pos, end)


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """The range without the whitespace at either end."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
