"""Sections to chunks: the highest level of the heading tree that fits, packed up to the budget.

Each section is counted once. A run of sections that fits the budget whole (a section with
all its subsections, or the whole text) is one unit; a run that does not is taken apart one
level down: its first section, then its subsections at the next level. Adjacent units that fit
are then packed greedily into chunks; a chunk's heading path is the common part of its
sections' paths (their common parent), and each section keeps its own heading line in the
text. A section too large for the budget alone is cut by `Splitter`, with overlap. Without
packing, every section is a chunk of its own (or several, where it is too large).

A chunk's input is its heading path, a blank line, then its text; the budget holds for that
whole string. The estimate adds up, so a chunk's count is its sections'; another counter's
counts of pieces only guide the packing, and each chunk's input is counted once, whole: one
over the budget loses its last units, or is cut.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ragidx.chunk.sections import Section
from ragidx.chunk.split import Part, Splitter
from ragidx.chunk.tokens import TokenCounter

__all__ = ["Packer", "Prefixes", "Span"]

Span = tuple[int, int, tuple[str, ...], str, int]
"""A chunk's start and end in the text, heading path, prefix (the path as sent) and tokens."""

_Path = tuple[str, ...]
_Unit = tuple[int, int, int]
"""Sections lo..hi (hi excluded), and the depth of the heading path they share."""


class Prefixes:
    """The prefix sent before a chunk with a given heading path, and its tokens with the
    blank line after it; counted once per path."""

    def __init__(self, counter: TokenCounter, budget: int) -> None:
        self.count = counter.count
        self.budget = budget
        self.known: dict[_Path, tuple[str, int]] = {(): ("", 0)}

    def __call__(self, path: _Path) -> tuple[str, int]:
        known = self.known.get(path)
        if known is None:
            # At most a quarter of the budget; the deepest headings matter most.
            shown = path
            text = " > ".join(shown)
            tokens = self.count(text)
            while shown and tokens > self.budget // 4:
                shown = shown[1:]
                text = " > ".join(shown)
                tokens = self.count(text)
            known = self.known[path] = (text, tokens + 1 if text else 0)
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
        # Longer sections are counted a paragraph at a time: most are over the budget, and
        # their paragraphs are what they are cut at.
        self.long = 3 * budget
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.paths: list[_Path] = []
        self.shared: list[int] = [0]
        """Depth of the path each section shares with the one before (the tree is walked in
        order, so a run of sections shares the least of these)."""
        self.sums = [0]  # running total of the sections' tokens
        self.parts: dict[int, list[Part]] = {}
        self.prefix_tokens: dict[int, int] = {}

    def spans(self, found: Sequence[Section]) -> Iterator[Span]:
        self._count(found)
        n = len(self.starts)
        if n == 0:
            return
        if not self.pack:
            units = [(k, k + 1, len(self.paths[k])) for k in range(n)]
        else:
            units = []
            self._units(0, n, units)
        yield from self._runs(units)

    def _count(self, found: Sequence[Section]) -> None:
        text, count, long = self.text, self.count, self.long
        starts, ends, paths, shared, sums = self.starts, self.ends, self.paths, self.shared, []
        total = 0
        before: _Path | None = None
        for start, end, path, _ in found:
            # Sections start at a heading line, mostly: the rare leading space is looked for.
            body = text[start:end].rstrip()
            if body[:1].isspace():
                lead = len(body) - len(body := body.lstrip())
                start += lead
            end = start + len(body)
            if len(body) > long:
                parts, size = self.splitter.paragraphs(start, end)
                self.parts[len(starts)] = parts
            else:
                size = count(body)
            if before is not None:
                shared.append(len(path) if path == before else _shared(before, path))
            starts.append(start)
            ends.append(end)
            paths.append(path)
            total += size
            sums.append(total)
            before = path
        self.sums += sums

    def _depth(self, lo: int, hi: int) -> int:
        """Depth of the heading path sections lo..hi share."""
        if hi - lo == 1:
            return len(self.paths[lo])
        return min(len(self.paths[lo]), *self.shared[lo + 1 : hi])

    def _cost(self, lo: int, hi: int, depth: int) -> int:
        """Tokens of the input holding sections lo..hi: exact for the estimate, which adds
        up (the whitespace between two sections holds a newline: a token)."""
        key = (lo << 8) | depth  # paths are no deeper than their headings' levels
        prefix = self.prefix_tokens.get(key)
        if prefix is None:
            prefix = self.prefix_tokens[key] = self.prefixes(self.paths[lo][:depth])[1]
        return prefix + self.sums[hi] - self.sums[lo] + hi - lo - 1

    def _units(self, lo: int, hi: int, out: list[_Unit]) -> None:
        """The highest-level runs of sections lo..hi that fit (or single sections)."""
        depth = self._depth(lo, hi)
        if hi - lo == 1 or self._cost(lo, hi, depth) <= self.budget:
            out.append((lo, hi, depth))
            return
        for a, b in self._children(lo, hi):
            self._units(a, b, out)

    def _children(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Sections lo..hi cut before each at the shallowest depth among them; a first
        section with all the others below it is cut from them, and they are cut in turn."""
        if hi - lo == 1:
            return [(lo, hi)]
        paths = self.paths
        top = min(len(paths[k]) for k in range(lo, hi))
        cuts = [k for k in range(lo, hi) if len(paths[k]) == top]
        if cuts[0] != lo:
            cuts.insert(0, lo)
        if len(cuts) == 1:
            return [(lo, lo + 1), *self._children(lo + 1, hi)]
        return list(zip(cuts, [*cuts[1:], hi], strict=True))

    def _runs(self, units: list[_Unit]) -> Iterator[Span]:
        """Adjacent units that fit packed greedily; a section too large cut by `Splitter`."""
        budget, shared = self.budget, self.shared
        k = 0
        while k < len(units):
            lo, hi, depth = units[k]
            if self._cost(lo, hi, depth) > budget:  # a section too large alone
                yield from self._split(lo)
                k += 1
                continue
            last = k
            while self.pack and last + 1 < len(units):
                nlo, nhi, ndepth = units[last + 1]
                wider = min(depth, ndepth, shared[nlo])
                if self._cost(lo, nhi, wider) > budget:
                    break
                last += 1
                depth = wider
            fitted = self._fitted(units, k, last)
            if fitted is not None:
                yield fitted[0]
                k = fitted[1] + 1
            elif hi - lo > 1:  # one unit of several sections, over once counted whole
                units[k : k + 1] = [(s, s + 1, len(self.paths[s])) for s in range(lo, hi)]
            else:  # one section, over with its prefix once counted whole
                yield from self._split(lo)
                k += 1

    def _fitted(self, units: list[_Unit], k: int, last: int) -> tuple[Span, int] | None:
        """The chunk of units k..last, less its last units while its input, counted whole,
        is over the budget, and the last unit it holds; None where unit k alone is over."""
        while True:
            lo, hi = units[k][0], units[last][1]
            depth = self._depth(lo, hi)
            path = self.paths[lo][:depth]
            prefix = self.prefixes(path)[0]
            start, end = self.starts[lo], self.ends[hi - 1]
            if self.additive:
                return (start, end, path, prefix, self._cost(lo, hi, depth)), last
            body = self.text[start:end]
            tokens = self.count(f"{prefix}\n\n{body}" if prefix else body)
            if tokens <= self.budget:
                return (start, end, path, prefix, tokens), last
            if last == k:
                return None
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
            self.parts.get(section),
        )
        for start, end, tokens in spans:
            yield start, end, path, prefix, tokens


def _shared(a: _Path, b: _Path) -> int:
    """The depth of the common start of two heading paths."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
