"""Documents to chunks: structure first, then a token budget. Pure: same input, same chunks.

A document is cut into sections at its headings (Markdown ATX headings outside fenced code,
reStructuredText underlined titles; HTML arrives with Markdown headings from the reader).
A section that fits the budget is one chunk. A larger one is split recursively, first at
blank lines, then at line breaks, then after sentences, then between words, and as a last
resort inside a word, until every piece fits; pieces are then packed greedily back into
chunks. Each chunk after the first in a section starts with up to `chunk_overlap` tokens of
whole pieces from the end of the one before. Chunks never span two sections.

What is sent to the embedder (`Chunk.input`) is the section's heading path, then a blank
line, then the chunk's text; the budget holds for that whole string.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ragidx.chunk.markup import hide_markup
from ragidx.chunk.tokens import estimate_tokens
from ragidx.config import ChunkConfig
from ragidx.models import Chunk, Document

__all__ = ["Chunker", "chunk_document", "chunk_text"]

_ATX = re.compile(r" {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_RST_UNDERLINE = re.compile(r"([=\-~^\"'`#*+:.<>_])\1{2,}[ \t]*$")
_SEPARATORS = (
    re.compile(r"\n[ \t]*\n\s*"),  # blank lines: paragraphs
    re.compile(r"\n\s*"),  # line breaks
    re.compile(r"(?<=[.!?。！？])\s+"),  # sentences  # noqa: RUF001 - CJK full stops
    re.compile(r"\s+"),  # words
)
_NON_SPACE = re.compile(r"\S")


@dataclass(frozen=True, slots=True)
class _Section:
    start: int
    end: int
    path: tuple[str, ...]
    headed: bool = True
    """Starts at its heading line (the text before a segment's first heading does not)."""


def chunk_document(doc: Document, config: ChunkConfig) -> list[Chunk]:
    return chunk_text(doc.text, doc.format, config)


def chunk_text(text: str, fmt: str, config: ChunkConfig) -> list[Chunk]:
    """Cut `text` (of format `fmt`: markdown, rst, html or anything else) into chunks."""
    return Chunker(fmt, config).feed(text)


class Chunker:
    """Chunks a document fed in consecutive segments that start at line starts, as a large
    file is read. Headings, fenced code and numbering carry from one segment to the next;
    a chunk never spans two segments, and the first chunk of a segment has no overlap."""

    def __init__(self, fmt: str, config: ChunkConfig) -> None:
        self.fmt = fmt
        self.config = config
        self.ordinal = 0
        self.offset = 0
        self.lines = 0
        self.state = _HeadingState()

    def feed(self, text: str) -> list[Chunk]:
        newlines = [m.start() for m in re.finditer("\n", text)]
        chunks: list[Chunk] = []
        budget = self.config.chunk_tokens
        sections, shown = _sections(text, self.fmt, self.state)
        for section in sections:
            prefix = _prefix(section.path, budget)
            prefix_tokens = estimate_tokens(prefix) + 1 if prefix else 0
            packer = _Packer(text, shown, budget - prefix_tokens, self.config.chunk_overlap)
            for start, end, body_tokens in packer.spans(section.start, section.end):
                body = text[start:end]
                full = f"{prefix}\n\n{body}" if prefix else body
                # The estimate adds up over text split at whitespace: no need to count again.
                tokens = prefix_tokens + body_tokens if body_tokens is not None else None
                chunks.append(
                    Chunk(
                        ordinal=self.ordinal + len(chunks),
                        text=body,
                        input=full,
                        char_start=self.offset + start,
                        char_end=self.offset + end,
                        line_start=self.lines + bisect.bisect_left(newlines, start) + 1,
                        line_end=self.lines + bisect.bisect_left(newlines, end - 1) + 1,
                        heading_path=section.path,
                        tokens=estimate_tokens(full) if tokens is None else tokens,
                    )
                )
        self.ordinal += len(chunks)
        self.offset += len(text)
        self.lines += len(newlines)
        return chunks


@dataclass(slots=True)
class _HeadingState:
    """What a segment inherits from the ones before it."""

    stack: list[tuple[int, str]] = field(default_factory=list)
    fence: str | None = None
    rst_levels: dict[tuple[str, bool], int] = field(default_factory=dict)
    first: bool = True


def _prefix(path: tuple[str, ...], budget: int) -> str:
    # A heading path may take at most a quarter of the budget; the deepest headings matter most.
    while path and estimate_tokens(" > ".join(path)) > budget // 4:
        path = path[1:]
    return " > ".join(path)


def _sections(text: str, fmt: str, state: _HeadingState) -> tuple[list[_Section], str]:
    """The sections of `text`, and `text` as a reader sees it: in Markdown, comments and tags
    blanked out (HTML arrives as the text a browser shows, where `<` is text)."""
    code: list[tuple[int, int]] = []
    if fmt in ("markdown", "html"):
        heads = _markdown_headings(text, state, code)
    elif fmt == "rst":
        heads = _rst_headings(text, state.rst_levels)
    else:
        heads = []
    state.first = False
    sections: list[_Section] = []
    stack = state.stack
    starts = [(0, 0, ""), *heads]
    for i, (offset, level, title) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        if level:
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
        sections.append(_Section(offset, end, tuple(t for _, t in stack), headed=bool(level)))
    shown = hide_markup(text, code) if fmt == "markdown" else text
    return _fold_bare_headings(shown, sections), shown


def _fold_bare_headings(shown: str, sections: list[_Section]) -> list[_Section]:
    """Join a section that holds only its heading line (and what a reader does not see) to
    the section after it; drop a section with nothing a reader sees."""
    folded: list[_Section] = []
    carry: int | None = None
    for i, sec in enumerate(sections):
        start = sec.start if carry is None else carry
        body_start = shown.find("\n", sec.start, sec.end)
        bare = body_start == -1 or not _NON_SPACE.search(shown, body_start, sec.end)
        if sec.headed and sec.path and bare and i + 1 < len(sections):
            carry = start
            continue
        carry = None
        if _NON_SPACE.search(shown, start, sec.end):
            folded.append(_Section(start, sec.end, sec.path, sec.headed))
    return folded


def _markdown_headings(
    text: str, state: _HeadingState, code: list[tuple[int, int]]
) -> list[tuple[int, int, str]]:
    """ATX (`## Title`) and setext (`Title` over `===` or `---`) headings outside fenced code;
    the fenced code's lines, fences included, are added to `code` as (start, end) ranges."""
    lines = text.split("\n")
    heads: list[tuple[int, int, str]] = []
    fence = state.fence
    start = _front_matter_lines(lines) if state.first else 0
    offset = sum(len(line) + 1 for line in lines[:start])
    para: tuple[int, str] | None = None  # a one-line paragraph that an underline can promote
    blank_before = True
    for line in lines[start:]:
        fence_match = _FENCE.match(line)
        if fence is not None or fence_match:
            _extend(code, offset, offset + len(line))
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence) and _closes(line, marker):
                fence = None
            para = None
        elif fence is None:
            atx = _ATX.match(line)
            under = _SETEXT.match(line)
            if atx and atx.group(2).strip():
                heads.append((offset, len(atx.group(1)), atx.group(2).strip()))
                para = None
            elif under and para is not None:
                heads.append((para[0], 1 if under.group(1) == "=" else 2, para[1]))
                para = None
            else:
                para = (offset, line.strip()) if blank_before and _paragraph(line) else None
        blank_before = not line.strip()
        offset += len(line) + 1
    state.fence = fence
    return heads


_SETEXT = re.compile(r" {0,3}(=|-)\1*[ \t]*$")
_NOT_PARAGRAPH = re.compile(r" {4}|\s*([-*+>|]|\d+[.)])(\s|$)")


def _extend(ranges: list[tuple[int, int]], start: int, end: int) -> None:
    if ranges and ranges[-1][1] + 1 == start:
        ranges[-1] = (ranges[-1][0], end)
    else:
        ranges.append((start, end))


def _paragraph(line: str) -> bool:
    return bool(line.strip()) and not _NOT_PARAGRAPH.match(line)


def _closes(line: str, marker: str) -> bool:
    return not line.strip(marker[0] + " \t")


def _front_matter_lines(lines: list[str]) -> int:
    """How many lines a leading YAML front matter block (between `---` lines) takes."""
    if not lines or lines[0].strip() != "---":
        return 0
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return i + 1
    return 0


def _rst_headings(text: str, levels: dict[tuple[str, bool], int]) -> list[tuple[int, int, str]]:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    heads: list[tuple[int, int, str]] = []
    for i in range(1, len(lines)):
        title = lines[i - 1].strip()
        under = _RST_UNDERLINE.match(lines[i])
        if not under or not title or _RST_UNDERLINE.match(lines[i - 1]):
            continue
        if len(lines[i].rstrip()) < len(title) or lines[i - 1][:1].isspace():
            continue
        over = i >= 2 and lines[i - 2].rstrip() == lines[i].rstrip()
        style = (under.group(1), over)
        level = levels.setdefault(style, len(levels) + 1)
        heads.append((offsets[i - 2] if over else offsets[i - 1], level, title))
    return heads


_Piece = tuple[int, int, int, bool]
"""Start, end, estimated tokens, and whether the text around it is whitespace (a piece
cut inside a word is not: the estimate of two such pieces is not that of their join)."""


class _Packer:
    """Splits one section into pieces that fit `budget`, then packs them with overlap."""

    def __init__(self, text: str, shown: str, budget: int, overlap: int) -> None:
        self.text = text
        self.shown = shown
        self.budget = max(budget, 2)
        self.overlap = overlap

    def spans(self, start: int, end: int) -> Iterator[tuple[int, int, int | None]]:
        """Each chunk's start and end, and its estimated tokens where they add up exactly.
        A chunk starts and ends with pieces a reader sees, and holds one not in the chunk
        before: pieces of markup alone, or with the overlap, make no chunk."""
        pieces = self._pieces(*_trim(self.text, start, end), 0)
        seen = [bool(_NON_SPACE.search(self.shown, a, b)) for a, b, _, _ in pieces]
        i, n, last = 0, len(pieces), -1
        while i < n:
            j, total = i, pieces[i][2]
            # Joining two pieces adds at most one token: the whitespace between them.
            while j + 1 < n and total + 1 + pieces[j + 1][2] <= self.budget:
                j += 1
                total += 1 + pieces[j][2]
            a, b = i, j
            while a < b and not seen[a]:
                a += 1
            while b > a and not seen[b]:
                b -= 1
            if seen[b] and b > last:
                yield pieces[a][0], pieces[b][1], self._exact(pieces, a, b)
                last = b
            if j + 1 >= n:
                return
            # The overlap repeats the chunk's tail, never its first piece a reader sees: a
            # window that began with hidden markup would otherwise start the next chunk there.
            i = max(self._overlap_start(pieces, i, j), a + 1)

    def _exact(self, pieces: list[_Piece], i: int, j: int) -> int | None:
        if not all(p[3] for p in pieces[i : j + 1]):
            return None
        gaps = sum(_gap_tokens(self.text, pieces[k][1], pieces[k + 1][0]) for k in range(i, j))
        return sum(p[2] for p in pieces[i : j + 1]) + gaps

    def _overlap_start(self, pieces: list[_Piece], i: int, j: int) -> int:
        nxt = pieces[j + 1][2] + 1
        k, carried = j + 1, 0
        while k - 1 > i:
            cost = pieces[k - 1][2] + 1
            if carried + cost > self.overlap or carried + cost + nxt > self.budget:
                break
            k -= 1
            carried += cost
        return k

    def _pieces(self, start: int, end: int, level: int, size: int | None = None) -> list[_Piece]:
        """The range as one piece if it fits, else its parts at this level's separator,
        themselves split further where they do not fit. Text is estimated once at each
        level it is split at: a whole's estimate is its parts' plus the whitespace between.
        `size` is the range's estimate, when known."""
        if start >= end:
            return []
        if level == len(_SEPARATORS):
            return self._hard_split(start, end)
        parts = list(_split(self.text, start, end, _SEPARATORS[level]))
        if len(parts) == 1:
            (a, b) = parts[0]
            size = estimate_tokens(self.text[a:b]) if size is None else size
            if size <= self.budget:
                return [(a, b, size, True)]
            return self._pieces(a, b, level + 1, size)
        sizes = [estimate_tokens(self.text[a:b]) for a, b in parts]
        gaps = [_gap_tokens(self.text, parts[k][1], parts[k + 1][0]) for k in range(len(parts) - 1)]
        if (whole := sum(sizes) + sum(gaps)) <= self.budget:
            return [(start, end, whole, True)]
        out: list[_Piece] = []
        for (a, b), part in zip(parts, sizes, strict=True):
            fits = part <= self.budget
            out += [(a, b, part, True)] if fits else self._pieces(a, b, level + 1, part)
        return out

    def _hard_split(self, start: int, end: int) -> list[_Piece]:
        # No whitespace left: no character costs more than two tokens.
        width = max(self.budget // 2, 1)
        return [
            (a, min(a + width, end), estimate_tokens(self.text[a : min(a + width, end)]), False)
            for a in range(start, end, width)
        ]


def _gap_tokens(text: str, end: int, start: int) -> int:
    """The estimate of the whitespace between two pieces: a run with a newline, or of two
    or more characters, is a token (see `ragidx.chunk.tokens`)."""
    return 1 if end + 1 < start or (end < start and text[end] == "\n") else 0


def _split(text: str, start: int, end: int, sep: re.Pattern[str]) -> Iterator[tuple[int, int]]:
    pos = start
    for m in sep.finditer(text, start, end):
        if m.start() > pos:
            yield _trim(text, pos, m.start())
        pos = m.end()
    if pos < end:
        yield _trim(text, pos, end)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
