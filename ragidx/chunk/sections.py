"""A document's sections: where its headings start them, and the path of titles above each.

Markdown ATX (`## Title`) and setext (`Title` over `===` or `---`) headings outside fenced
code, reStructuredText underlined (and overlined) titles; HTML arrives with Markdown headings
from the reader; other formats have no sections but the whole text. Only the lines that can
be headings or fences are looked at (a regular expression finds them in the whole text): the
other lines of a document cost nothing here.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ragidx.chunk.markup import hide_markup

__all__ = ["HeadingState", "Section", "sections"]


class Section(NamedTuple):
    start: int
    end: int
    path: tuple[str, ...]
    headed: bool = True
    """Starts at its heading line (the text before a segment's first heading does not)."""


@dataclass(slots=True)
class HeadingState:
    """What a segment inherits from the ones before it."""

    stack: list[tuple[int, str]] = field(default_factory=list)
    fence: str | None = None
    rst_levels: dict[tuple[str, bool], int] = field(default_factory=dict)
    first: bool = True


_Head = tuple[int, int, str]
"""Where a heading's section starts, its level, its title."""

_NON_SPACE = re.compile(r"\S")


def sections(
    text: str,
    fmt: str,
    state: HeadingState,
    outline: Sequence[tuple[int, int, str]] | None = None,
) -> tuple[list[Section], str]:
    """The sections of `text`, and `text` as a reader sees it: in Markdown, comments and tags
    blanked out (HTML arrives as the text a browser shows, where `<` is text). Sections that
    hold only a heading line join the next; sections with nothing a reader sees are left out.
    `outline`, where the reader found the headings (source code's symbols), is used instead
    of looking for them in the text."""
    code: list[tuple[int, int]] = []
    if outline is not None:
        heads = sorted(h for h in outline if 0 <= h[0] < len(text))
    elif fmt in ("markdown", "html"):
        heads = _markdown_headings(text, state, code)
    elif fmt == "rst":
        heads = _rst_headings(text, state.rst_levels)
    else:
        heads = []
    state.first = False
    shown = hide_markup(text, code) if fmt == "markdown" else text
    return _fold(text, shown, heads, state), shown


def _fold(text: str, shown: str, heads: list[_Head], state: HeadingState) -> list[Section]:
    """The sections the headings start, with the paths of titles above them (`state.stack`
    carries them on). A section that holds only its heading line (and what a reader does not
    see) joins the next; one with nothing a reader sees is left out."""
    levels = [level for level, _ in state.stack]
    titles = [title for _, title in state.stack]
    path = tuple(titles)
    found: list[Section] = []
    carry: int | None = None
    start, headed = 0, False  # the text before the first heading
    for k in range(len(heads) + 1):
        end = heads[k][0] if k < len(heads) else len(text)
        first = start if carry is None else carry
        carry = None
        if headed and path:
            body = shown.find("\n", start, end)
            if body != -1 and _NON_SPACE.search(shown, body, end):
                found.append(Section(first, end, path, headed))
            elif k < len(heads):
                carry = first
            elif _NON_SPACE.search(shown, first, end):
                found.append(Section(first, end, path, headed))
        elif _NON_SPACE.search(shown, first, end):
            found.append(Section(first, end, path, headed))
        if k < len(heads):
            start, level, title = heads[k]
            while levels and levels[-1] >= level:
                levels.pop()
                titles.pop()
            levels.append(level)
            titles.append(title)
            path, headed = tuple(titles), True
    state.stack = list(zip(levels, titles, strict=True))
    return found


_ATX = re.compile(r" {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_NOT_PARAGRAPH = re.compile(r" {4}|\s*([-*+>|]|\d+[.)])(\s|$)")
# A line that is a fence, an ATX heading (`_ATX`) or a setext underline. Found after a newline
# (a literal the engine looks for in C), the first line alone: 4 times faster than `^` in
# multi-line mode, which tries every position.
_LINE = (
    r" {0,3}(?:(?P<fence>`{3,}|~{3,})|(?P<atx>#{1,6})[ \t]+(?P<title>.*?)(?:[ \t]+#+)?[ \t]*$"
    r"|(?P<under>=+|-+)[ \t]*$)"
)
_MD_LINE = re.compile(_LINE, re.M)
_MD_NEXT_LINE = re.compile("\n" + _LINE, re.M)
_FRONT_MATTER_END = re.compile(r"^[^\S\n]*(?:---|\.\.\.)[^\S\n]*$", re.M)


def _markdown_headings(text: str, state: HeadingState, code: list[tuple[int, int]]) -> list[_Head]:
    """ATX and setext headings outside fenced code; the fenced code's lines, fences included,
    are added to `code` as (start, end) ranges."""
    region = _front_matter_end(text) if state.first else 0
    heads: list[_Head] = []
    fence = state.fence
    fence_start = 0  # a fence open from the segment before holds this one's start
    first = _MD_LINE.match(text, region)
    lines = _MD_NEXT_LINE.finditer(text, region)
    for m in itertools.chain([first] if first else [], lines):
        start = m.start() if m is first else m.start() + 1
        marker = m.group("fence")
        if marker is not None:
            end = text.find("\n", start)
            line = text[start : len(text) if end == -1 else end]
            if fence is None:
                fence, fence_start = marker, start
            elif marker[0] == fence[0] and len(marker) >= len(fence) and _closes(line, marker):
                fence = None
                code.append((fence_start, start + len(line)))
        elif fence is not None:
            continue
        elif m.group("atx") is not None:
            if title := m.group("title").strip():
                heads.append((start, len(m.group("atx")), title))
        elif start > region and (above := _setext_title(text, region, start)) is not None:
            heads.append((above[0], 1 if m.group("under")[0] == "=" else 2, above[1]))
    if fence is not None:
        code.append((fence_start, len(text)))
    state.fence = fence
    return heads


def _setext_title(text: str, region: int, underline: int) -> tuple[int, str] | None:
    """The line before an underline, where it is a one-line paragraph (after a blank line or
    at the start, not a list item, quote, table, indented code, fence or ATX heading)."""
    start = _line_start(text, region, underline - 1)
    line = text[start : underline - 1]
    if not _paragraph(line) or _FENCE.match(line):
        return None
    atx = _ATX.match(line)
    if atx and atx.group(2).strip():
        return None
    if start > region and text[_line_start(text, region, start - 1) : start - 1].strip():
        return None
    return start, line.strip()


def _line_start(text: str, region: int, end: int) -> int:
    """The start of the line that ends at `end` (a newline, or the end of the text)."""
    return max(text.rfind("\n", region, end) + 1, region)


def _front_matter_end(text: str) -> int:
    """Where the text after a leading YAML front matter block (between `---` lines) starts."""
    first = text.find("\n")
    if first == -1 or text[:first].strip() != "---":
        return 0
    closing = _FRONT_MATTER_END.search(text, first + 1)
    if closing is None:
        return 0
    return min(closing.end() + 1, len(text))


def _paragraph(line: str) -> bool:
    return bool(line.strip()) and not _NOT_PARAGRAPH.match(line)


def _closes(line: str, marker: str) -> bool:
    return not line.strip(marker[0] + " \t")


_RST_UNDERLINE = re.compile(r"([=\-~^\"'`#*+:.<>_])\1{2,}[ \t]*$")
_RST_CANDIDATE = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}[ \t]*$", re.M)


def _rst_headings(text: str, levels: dict[tuple[str, bool], int]) -> list[_Head]:
    heads: list[_Head] = []
    for under in _RST_CANDIDATE.finditer(text):
        start = under.start()
        if start == 0:
            continue
        above = _line_start(text, 0, start - 1)
        title_line = text[above : start - 1]
        title = title_line.strip()
        line = under.group().rstrip()
        if not title or _RST_UNDERLINE.match(title_line):
            continue
        if len(line) < len(title) or title_line[:1].isspace():
            continue
        over_start = _line_start(text, 0, above - 1) if above > 0 else -1
        over = over_start >= 0 and text[over_start : above - 1].rstrip() == line
        style = (under.group(1), over)
        level = levels.setdefault(style, len(levels) + 1)
        heads.append((over_start if over else above, level, title))
    return heads
