"""The text a browser shows of an HTML page: no scripts, styles or head; blocks on their own
lines; headings as Markdown headings, so the chunker sees the page's sections."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import ClassVar

__all__ = ["visible_text"]

_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")


class _VisibleText(HTMLParser):
    """Collects what a browser shows: no scripts, styles or head, blocks on their own lines."""

    HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "iframe"})
    BLOCKS = frozenset(
        "address article aside blockquote br dd div dl dt figcaption figure footer form header"
        " hr li main nav ol p pre section table tbody td th thead tr ul".split()
    )
    HEADINGS: ClassVar[dict[str, int]] = {f"h{n}": n for n in range(1, 7)}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # Runs of text, each flagged as preformatted (kept as is) or not (lines trimmed).
        self.segments: list[tuple[bool, list[str]]] = []
        self.hidden = 0
        self.in_head = False
        self.title: list[str] = []
        self.in_title = False
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag == "head":
            self.in_head = True
        elif tag in self.HIDDEN:
            self.hidden += 1
        elif tag == "body" or tag in self.HEADINGS or tag in self.BLOCKS:
            self.in_head = False  # </head> may be left out: the body starts here
            self._block_start(tag)

    def _block_start(self, tag: str) -> None:
        if tag in self.HEADINGS:
            self._emit("\n\n" + "#" * self.HEADINGS[tag] + " ")
        elif tag in self.BLOCKS:
            self._emit("\n\n" if tag == "p" else "\n")
            if tag == "li":
                self._emit("- ")
            elif tag == "pre":
                self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag == "head":
            self.in_head = False
        elif tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.HEADINGS or tag in self.BLOCKS:
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._emit("\n\n" if tag in self.HEADINGS or tag == "p" else "\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.hidden and not self.in_head:
            self._emit(data if self.pre else _SPACES.sub(" ", data))

    def _emit(self, text: str) -> None:
        if self.hidden or self.in_head:
            return
        pre = self.pre > 0
        if self.segments and self.segments[-1][0] == pre:
            self.segments[-1][1].append(text)
        else:
            self.segments.append((pre, [text]))

    def text(self) -> str:
        out = []
        for pre, parts in self.segments:
            run = "".join(parts)
            if not pre:
                run = _BLANK_RUNS.sub("\n\n", "\n".join(line.strip() for line in run.split("\n")))
            out.append(run)
        title = " ".join("".join(self.title).split())
        heading = f"# {title}\n\n" if title else ""
        return (heading + "".join(out).strip("\n")).strip() + "\n"


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return parser.text()
