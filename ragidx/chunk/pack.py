"""Sections to chunks: the highest level of the heading tree that fits, packed up to the budget.

Each section is counted once. A run of sections that fits the budget whole (a section with
all its subsections, or the whole text) is one unit; a run that does not is taken apart one
level down: its first section, then its subsections at the next level. Adjacent units that fit
are then packed greedily into chunks; a chunk's heading path is the common part of its
sections' paths (their common parent), and each section keeps its own heading line in the
text. A section too large for the budget alone is cut by `Splitter`, with overlap. Without
packing, every section is a chunk of its own (or several, where it is too large).

A chunk's input is its heading path, a blank line, then its text; the budget holds for that
whole string, counted exactly once per chunk by counters whose counts do not add up.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ragidx.chunk.sections import Section
from ragidx.chunk.split import Splitter
from ragidx.chunk.tokens import TokenCounter

__all__ = ["Packer", "Span"]

Span = tuple[int, int, tuple[str, ...], str, int]
"""A chunk's start and end in the text, heading path, prefix (the path as sent) and tokens."""

_Path = tuple[str, ...]


class Prefixes:
    """The prefix sent before a chunk with a given heading path, and its tokens with the
    blank line after it; counted once per path."""

    def __init__(self, counter: TokenCounter, budget: int) -> None:
        self.count = counter.count
        self.budget = budget
        self.known: dict[_Path, tuple[str, int]] = {}

    def __call__(self, path: _Path) -> tuple[str, int]:
        known = self.known.get(path)
        if known is None:
            # At most a quarter of the budget; the deepest headings matter most.
            shown = path
            text = " > ".join(shown)
            while shown and self.count(text) > self.budget // 4:
                shown = shown[1:]
                text = " > ".join(shown)
            known = self.known[path] = (text, self.count(text) + 1 if text else 0)
        return known


class Packer:
    """Lays out the chunks of one text (a document or a segment) from its sections."""

    def __init__(
        self,
        text: str,
        shown: str,
        counter: TokenCounter,
        prefixes: Prefixes,
        *,
        budget: int,
        overlap: int,
        pack: bool,
    ) -> None:
        self.text = text
        self.count = counter.count
        self.additive = bool(getattr(counter, "additive", False))
        self.prefixes = prefixes
        self.budget = budget
        self.pack = pack
        self.splitter = Splitter(text, shown, counter, overlap)
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.paths: list[_Path] = []
        self.sums = [0]  # running total of the sections' tokens

    def spans(self, found: Sequence[Section]) -> Iterator[Span]:
        text = self.text
        for sec in found:
            body = text[sec.start : sec.end]
            stripped = body.strip()
            start = sec.start + len(body) - len(body.lstrip())
            self.starts.append(start)
            self.ends.append(start + len(stripped))
            self.paths.append(sec.path)
            self.sums.append(self.sums[-1] + self.count(stripped))
        n = len(self.starts)
        if n == 0:
            return
        if not self.pack:
            units = [(k, k + 1) for k in range(n)]
        else:
            units = []
            self._units(0, n, units)
        yield from self._runs(units)

    def _units(self, lo: int, hi: int, out: list[tuple[int, int]]) -> None:
        """The highest-level runs of sections lo..hi that fit (or single sections)."""
        if hi - lo == 1 or self._cost(lo, hi, self._common(lo, hi)) <= self.budget:
            out.append((lo, hi))
            return
        for a, b in self._children(lo, hi):
            self._units(a, b, out)

    def _children(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Sections lo..hi cut before each at the shallowest depth among them; a first
        section with all the others below it is cut from them, and they are cut in turn."""
        if hi - lo == 1:
            return [(lo, hi)]
        depths = [len(p) for p in self.paths[lo:hi]]
        top = min(depths)
        cuts = [lo + k for k, depth in enumerate(depths) if depth == top]
        if cuts[0] != lo:
            cuts.insert(0, lo)
        if len(cuts) == 1:
            return [(lo, lo + 1), *self._children(lo + 1, hi)]
        return list(zip(cuts, [*cuts[1:], hi], strict=True))

    def _common(self, lo: int, hi: int) -> _Path:
        common = self.paths[lo]
        for path in self.paths[lo + 1 : hi]:
            common = _shared(common, path)
        return common

    def _cost(self, lo: int, hi: int, common: _Path) -> int:
        """Tokens of the input holding sections lo..hi: exact for the estimate, which adds
        up (the whitespace between two sections holds a newline: a token)."""
        return self.prefixes(common)[1] + self.sums[hi] - self.sums[lo] + hi - lo - 1

    def _runs(self, units: list[tuple[int, int]]) -> Iterator[Span]:
        """Adjacent units that fit packed greedily; a section too large cut by `Splitter`."""
        commons = [self._common(lo, hi) for lo, hi in units]
        k = 0
        while k < len(units):
            lo, hi = units[k]
            common = commons[k]
            if self._cost(lo, hi, common) > self.budget:  # a section too large alone
                yield from self._split(lo)
                k += 1
                continue
            last = k
            while self.pack and last + 1 < len(units):
                wider = _shared(common, commons[last + 1])
                if self._cost(lo, units[last + 1][1], wider) > self.budget:
                    break
                last += 1
                common = wider
            span, last = self._fitted(units, commons, k, last)
            if span is not None:
                yield span
                k = last + 1
            elif hi - lo > 1:  # one unit of several sections, over once counted whole
                units[k : k + 1] = [(s, s + 1) for s in range(lo, hi)]
                commons[k : k + 1] = self.paths[lo:hi]
            else:  # one section, over with its prefix once counted whole
                yield from self._split(lo)
                k += 1

    def _fitted(
        self, units: list[tuple[int, int]], commons: list[_Path], k: int, last: int
    ) -> tuple[Span | None, int]:
        """The chunk of units k..last, less its last units while its input, counted whole,
        is over the budget; None where unit k alone is."""
        while True:
            lo, hi = units[k][0], units[last][1]
            common = commons[k]
            for path in commons[k + 1 : last + 1]:
                common = _shared(common, path)
            prefix = self.prefixes(common)[0]
            start, end = self.starts[lo], self.ends[hi - 1]
            if self.additive:
                return (start, end, common, prefix, self._cost(lo, hi, common)), last
            body = self.text[start:end]
            tokens = self.count(f"{prefix}\n\n{body}" if prefix else body)
            if tokens <= self.budget:
                return (start, end, common, prefix, tokens), last
            if last == k:
                return None, last
            last -= 1

    def _split(self, section: int) -> Iterator[Span]:
        path = self.paths[section]
        prefix, prefix_tokens = self.prefixes(path)
        count, text = self.count, self.text

        def measure(start: int, end: int) -> int:
            return count(f"{prefix}\n\n{text[start:end]}" if prefix else text[start:end])

        spans = self.splitter.spans(
            self.starts[section],
            self.ends[section],
            self.budget - prefix_tokens,
            self.budget,
            measure,
        )
        for start, end, tokens in spans:
            yield start, end, path, prefix, tokens


def _shared(a: _Path, b: _Path) -> _Path:
    """The common start of two heading paths."""
    if a == b:
        return a
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]
