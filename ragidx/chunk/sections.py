"""A document's sections: where its headings start them, and the path of titles above each.

Markdown ATX (`## Title`) and setext (`Title` over `===` or `---`) headings outside fenced
code, reStructuredText underlined (and overlined) titles; HTML arrives with Markdown headings
from the reader; other formats have no sections but the whole text. Only the lines that can
be headings or fences are looked at (a regular expression finds them in the whole text): the
other lines of a document cost nothing here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ragidx.chunk.markup import hide_markup

__all__ = ["HeadingState", "Section", "sections"]


@dataclass(frozen=True, slots=True)
class Section:
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


def sections(text: str, fmt: str, state: HeadingState) -> tuple[list[Section], str]:
    """The sections of `text`, and `text` as a reader sees it: in Markdown, comments and tags
    blanked out (HTML arrives as the text a browser shows, where `<` is text). Sections that
    hold only a heading line join the next; sections with nothing a reader sees are left out."""
    code: list[tuple[int, int]] = []
    if fmt in ("markdown", "html"):
        heads = _markdown_headings(text, state, code)
    elif fmt == "rst":
        heads = _rst_headings(text, state.rst_levels)
    else:
        heads = []
    state.first = False
    found: list[Section] = []
    stack = state.stack
    starts = [(0, 0, ""), *heads]
    for i, (offset, level, title) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        if level:
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
        found.append(Section(offset, end, tuple(t for _, t in stack), headed=bool(level)))
    shown = hide_markup(text, code) if fmt == "markdown" else text
    return _fold_bare_headings(shown, found), shown


def _fold_bare_headings(shown: str, found: list[Section]) -> list[Section]:
    """Join a section that holds only its heading line (and what a reader does not see) to
    the section after it; drop a section with nothing a reader sees."""
    folded: list[Section] = []
    carry: int | None = None
    for i, sec in enumerate(found):
        start = sec.start if carry is None else carry
        body_start = shown.find("\n", sec.start, sec.end)
        bare = body_start == -1 or not _NON_SPACE.search(shown, body_start, sec.end)
        if sec.headed and sec.path and bare and i + 1 < len(found):
            carry = start
            continue
        carry = None
        if _NON_SPACE.search(shown, start, sec.end):
            folded.append(Section(start, sec.end, sec.path, sec.headed))
    return folded


_ATX = re.compile(r" {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r" {0,3}(=|-)\1*[ \t]*$")
_NOT_PARAGRAPH = re.compile(r" {4}|\s*([-*+>|]|\d+[.)])(\s|$)")
# The lines that can be an ATX heading, a fence or a setext underline.
_MD_CANDIDATE = re.compile(r"^ {0,3}(?:#{1,6}[ \t]|```|~~~|[=-])", re.M)
_FRONT_MATTER_END = re.compile(r"^[^\S\n]*(?:---|\.\.\.)[^\S\n]*$", re.M)


def _markdown_headings(text: str, state: HeadingState, code: list[tuple[int, int]]) -> list[_Head]:
    """ATX and setext headings outside fenced code; the fenced code's lines, fences included,
    are added to `code` as (start, end) ranges."""
    region = _front_matter_end(text) if state.first else 0
    heads: list[_Head] = []
    fence = state.fence
    fence_start = 0  # a fence open from the segment before holds this one's start
    for m in _MD_CANDIDATE.finditer(text, region):
        start = m.start()
        end = text.find("\n", start)
        end = len(text) if end == -1 else end
        line = text[start:end]
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence, fence_start = marker, start
            elif marker[0] == fence[0] and len(marker) >= len(fence) and _closes(line, marker):
                fence = None
                code.append((fence_start, end))
            continue
        if fence is not None:
            continue
        atx = _ATX.match(line)
        if atx and atx.group(2).strip():
            heads.append((start, len(atx.group(1)), atx.group(2).strip()))
            continue
        under = _SETEXT.match(line)
        if under and start > region:
            title = _setext_title(text, region, start)
            if title is not None:
                heads.append((title[0], 1 if under.group(1) == "=" else 2, title[1]))
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
