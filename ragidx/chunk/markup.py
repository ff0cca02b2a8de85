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
import functools
import re
from collections.abc import Sequence

__all__ = ["hide_markup"]

_ATTRIBUTE = r"""\s+[A-Za-z_:][\w.:-]*(?:\s*=\s*(?:[^\s"'=<>`]+|'[^']*'|"[^"]*"))?"""


# Compiled where first needed (0.5 ms), for text that holds a `<`: a no-op run compiles nothing.
@functools.cache
def _markup() -> re.Pattern[str]:
    # CommonMark's raw HTML: a comment (`<!-->` and `<!--->` count) or an open or closing tag.
    return re.compile(
        rf"<!--(?:-?>|.*?-->)|<([A-Za-z][A-Za-z0-9-]*)(?:{_ATTRIBUTE})*\s*/?>"
        r"|</[A-Za-z][A-Za-z0-9-]*\s*>",
        re.S,
    )


# Elements that show something though they hold no text.
_SHOWN = frozenset(
    "audio button canvas embed iframe img input math object picture select svg textarea"
    " video".split()
)


def hide_markup(text: str, code: Sequence[tuple[int, int]] = ()) -> str:
    """`text` with every comment and tag a reader does not see replaced by spaces; `code`:
    sorted, disjoint (start, end) ranges of code, left as they are."""
    if "<" not in text:
        return text
    markup, starts = _markup(), [a for a, _ in code]
    out: list[str] = []
    done = pos = 0
    while (m := markup.search(text, pos)) is not None:
        at = m.start()
        k = bisect.bisect_right(starts, at) - 1
        in_code = k >= 0 and at < code[k][1]
        if (
            in_code
            or _indented(text, text.rfind("\n", 0, at) + 1)
            or (m.group(1) or "").lower() in _SHOWN
        ):
            pos = at + 1
            continue
        out += [text[done:at], "".join(c if c == "\n" else " " for c in m.group())]
        done = pos = m.end()
    out.append(text[done:])
    return "".join(out)


def _indented(text: str, line: int) -> bool:
    """Whether the line starting at `line` is indented four columns: code, in Markdown."""
    for i in range(line, min(line + 4, len(text))):
        if text[i] == "\t":  # a tab reaches the next multiple of four
            return True
        if text[i] != " ":
            return False
    return text.startswith("    ", line)
