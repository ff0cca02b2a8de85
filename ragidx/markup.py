"""What a reader of rendered Markdown never sees: HTML comments and tags, outside code.

`hide_markup` blanks them out of a copy of the text, of the same length and lines, so the
chunker can ask of any range whether it holds anything a reader sees, and make no chunk of
one that does not (`<!-- Old headings. Do not remove or links may break. -->` and the bare
anchors that follow it in the Rust book, say). The chunks themselves stay exact slices of the
file. Code is never hidden: fenced blocks (the ranges the chunker found), indented lines,
and inline code, whose backticks a reader sees.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

__all__ = ["hide_markup"]

_ATTRIBUTE = r"""\s+[A-Za-z_:][\w.:-]*(?:\s*=\s*(?:[^\s"'=<>`]+|'[^']*'|"[^"]*"))?"""
# CommonMark's raw HTML: a comment (`<!-->` and `<!--->` count) or an open or closing tag.
_MARKUP = re.compile(
    rf"<!--(?:-?>|.*?-->)|<([A-Za-z][A-Za-z0-9-]*)(?:{_ATTRIBUTE})*\s*/?>|</[A-Za-z][A-Za-z0-9-]*\s*>",
    re.S,
)
# Elements that show something though they hold no text.
_SHOWN = frozenset(
    "audio button canvas embed iframe img input math object picture select svg textarea"
    " video".split()
)
_INDENTED = re.compile(r"(?: {4}|\t| {0,3}\t)")
_NOT_NEWLINE = re.compile(r"[^\n]")


def hide_markup(text: str, code: Sequence[tuple[int, int]] = ()) -> str:
    """`text` with every comment and tag a reader does not see replaced by spaces; `code`:
    sorted, disjoint (start, end) ranges of code, left as they are."""
    if "<" not in text:
        return text
    starts = [a for a, _ in code]
    out: list[str] = []
    done = pos = 0
    while (m := _MARKUP.search(text, pos)) is not None:
        at = m.start()
        k = bisect.bisect_right(starts, at) - 1
        in_code = k >= 0 and at < code[k][1]
        line = text.rfind("\n", 0, at) + 1
        if in_code or _INDENTED.match(text, line) or (m.group(1) or "").lower() in _SHOWN:
            pos = at + 1
            continue
        out += [text[done:at], _NOT_NEWLINE.sub(" ", m.group())]
        done = pos = m.end()
    out.append(text[done:])
    return "".join(out)
