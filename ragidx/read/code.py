"""Source code whose chunks follow its functions, classes and methods: Python, JavaScript,
TypeScript (and TSX), Go, Rust, Java, C and C++, parsed by tree-sitter's grammar wheels.

In: a source file's bytes. Out: its text decoded as any text file's is (`ragidx.read.decode`),
with an outline of its definitions (`Document.outline`): the file's name (its stem: `shapes`
for `shapes.py`) at level 1, then each class, function and method at the level of its
nesting, so a method's chunk has the heading path `shapes > Circle > area`. Comments,
decorators and attributes directly above a definition start its section. Where code of the
enclosing scope follows a definition, a heading for that scope is repeated there, so the code
after a function is not the function's. Definitions shorter than `MIN_LINES` stay with what
holds them.

A syntax error costs only the definitions it touches (tree-sitter parses what it can); if
tree-sitter fails outright, the file is read without an outline, as plain code. Binary
content raises `NotText`, as for any text file. Files over `LARGE_FILE` are read a segment at
a time, without an outline (`segmented`).
"""

from __future__ import annotations

import itertools
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ragidx.models import Document
from ragidx.read.base import Source, register
from ragidx.read.decode import decode_text
from ragidx.read.symbols import CPP, SYNTAXES, Found, Syntax, definition, scope_body

if TYPE_CHECKING:
    from tree_sitter import Node, Parser, Tree

__all__ = ["CODE_TREE", "MAX_DEPTH", "MAX_HEADS", "MIN_LINES", "CodeReader", "outline"]

MAX_HEADS = 20_000
"""Headings a file's outline holds at most; past them, the rest of a scope is the scope's."""
MAX_DEPTH = 8
"""Levels of an outline, the file's own included; deeper definitions are their parent's."""
MIN_LINES = 5
"""Lines a definition spans at least to be a section of its own (leading comments aside);
a shorter one (a getter, an exception class with its code) is a few lines of what holds it.
Alone, it would be a chunk too small to tell apart, that ranks high for any word it holds."""
_MAX_NESTING = 64  # preprocessor conditionals and extern blocks inside each other
# A character of code other than what closes a scope: `}` alone after a method is the class's
# end, not class code to give a heading of its own.
_CODE = re.compile(r"[^\s})\];,]")

_CPP_WORDS = re.compile(rb"\b(?:class|namespace|template)\b|::|\bpublic:")

_Head = tuple[int, int, str]


class CodeReader:
    """A source file's text, with the outline of its definitions. Picklable: the parsers
    live in a per-thread cache in this module, made when a file of their language is read."""

    content_type = "text/x-source-tree"
    format = "code"
    suffixes: tuple[str, ...] = tuple(SYNTAXES)
    segmented = True

    def __repr__(self) -> str:
        return "CodeReader()"

    def sniff(self, head: bytes) -> bool:
        return False  # by name only, like the other code files

    def read(self, source: Source) -> Document:
        text, encoding = decode_text(source.data)
        return source.document(text, self.format, encoding, outline=outline(text, source.path))


def outline(text: str, path: str | Path) -> tuple[_Head, ...] | None:
    """The outline of the source `text` of the file at `path` (its name says the language),
    or None where tree-sitter fails or the language is not one of these."""
    path = Path(path)
    syntax = SYNTAXES.get(path.suffix.lower())
    if syntax is None:
        return None
    src = text.encode("utf-8", "surrogatepass")
    try:
        tree, syntax = _parse(src, syntax, header=path.suffix.lower() == ".h")
        if tree is None:
            return None
        return _Outline(text, src, syntax).build(tree.root_node, path.stem or path.name)
    except Exception:  # an outline is extra: without one, the file is read as plain code
        return None


_local = threading.local()  # a parser is not to be shared between threads


def _parser(syntax: Syntax) -> Parser:
    parsers: dict[str, Parser] = _local.__dict__.setdefault("parsers", {})
    parser = parsers.get(syntax.name)
    if parser is None:
        import importlib

        import tree_sitter  # where a source file is first read: the CLI starts without it

        grammar = getattr(importlib.import_module(syntax.module), syntax.function)
        parser = parsers[syntax.name] = tree_sitter.Parser(tree_sitter.Language(grammar()))
    return parser


def _parse(src: bytes, syntax: Syntax, *, header: bool) -> tuple[Tree | None, Syntax]:
    """The tree of `src`; a `header` (`.h`) that C finds errors in, and that has words of
    C++, is tried as C++."""
    tree = _parser(syntax).parse(src)
    if (
        header
        and tree is not None
        and tree.root_node.has_error
        and _CPP_WORDS.search(src) is not None
    ):
        other = _parser(CPP).parse(src)
        if other is not None and not other.root_node.has_error:
            return other, CPP
    return tree, syntax


class _Def(NamedTuple):
    head: int
    """Where its section starts: the newline before its first line (so the chunker does not
    take that line for a heading line alone), or the definition itself mid-line."""
    end: int
    """The newline that ends its last line (or the end of the text)."""
    names: tuple[str, ...]
    body: Node | None


class _Outline:
    """The headings of one file, found scope by scope."""

    def __init__(self, text: str, src: bytes, syntax: Syntax) -> None:
        self.text = text
        self.src = src
        self.syntax = syntax
        # Where each line starts; one more at the end (a newline past the text), so the
        # newline ending line r is at starts[r + 1] - 1 for every line.
        lengths = map((1).__add__, map(len, text.split("\n")))
        self.starts = list(itertools.accumulate(lengths, initial=0))
        self.heads: list[_Head] = []

    def build(self, root: Node, title: str) -> tuple[_Head, ...]:
        self.heads.append((0, 1, title))
        self._scope(root, 1, title, len(self.text))
        return tuple(sorted(self.heads, key=lambda h: (h[0], h[1])))

    def _scope(self, node: Node, level: int, title: str, limit: int) -> None:
        """Headings for the definitions in `node` (a scope at `level`, titled `title`, that
        ends at `limit`), and for the scope again where its own code follows one."""
        defs = self._defs(node, level)
        if not defs or not self._room(defs[0]):
            return
        for i, d in enumerate(defs):
            for k, name in enumerate(d.names):
                self.heads.append((d.head, level + 1 + k, name))
            if d.body is not None:
                self._scope(d.body, level + len(d.names), d.names[-1], d.end)
            following = defs[i + 1] if i + 1 < len(defs) else None
            full = following is not None and not self._room(following)
            until = following.head if following is not None and not full else limit
            if d.end < until and _CODE.search(self.text, d.end, until):
                self.heads.append((d.end, level, title))
            if full:
                return

    def _room(self, d: _Def) -> bool:
        # Room for its headings, and for one heading per scope it closes, back to the file.
        return len(self.heads) + len(d.names) + MAX_DEPTH <= MAX_HEADS

    def _defs(self, node: Node, level: int) -> list[_Def]:
        found: list[_Def] = []
        self._collect(node, level, found, 0)
        return found

    def _collect(self, node: Node, level: int, out: list[_Def], nesting: int) -> None:
        syntax, leading = self.syntax, self.syntax.leading
        children = node.children
        floor = -1  # the last line of code before the next definition's leading comments
        for i, child in enumerate(children):
            inner = scope_body(child, syntax)
            if child.type == "ERROR" or child.is_missing:
                pass  # what tree-sitter could not parse holds no definition to trust
            elif inner is not None:
                if nesting < _MAX_NESTING:
                    self._collect(inner, level, out, nesting + 1)
            elif (found := definition(child, syntax, self.src)) and self._fits(found, level):
                out.append(self._def(found, children, i, floor))
            if child.type not in leading:
                floor = _last_row(child)

    def _fits(self, found: Found, level: int) -> bool:
        node = found.node
        if level + len(found.names) > MAX_DEPTH or not all(found.names):
            return False
        if _last_row(node) - node.start_point[0] + 1 < MIN_LINES:
            return False
        # A class with an error keeps its heading, so its sound methods keep their paths; a
        # function with one is not told apart from what the error swallowed.
        return found.body is not None or not node.has_error

    def _def(self, found: Found, siblings: list[Node], index: int, floor: int) -> _Def:
        first = found.node
        row = first.start_point[0]
        for j in range(index - 1, -1, -1):
            above = siblings[j]
            if (
                above.type not in self.syntax.leading
                or _last_row(above) < row - 1
                or above.start_point[0] <= floor
                or not self._starts_line(above)
            ):
                break
            first, row = above, above.start_point[0]
        end = self.starts[_last_row(found.node) + 1] - 1
        return _Def(self._head(first), end, found.names, found.body)

    def _starts_line(self, node: Node) -> bool:
        column = node.start_point[1]
        return column == 0 or self.src[node.start_byte - column : node.start_byte].isspace()

    def _head(self, node: Node) -> int:
        row, column = node.start_point
        start = self.starts[row]
        if self._starts_line(node):
            return start - 1 if row else 0
        line = self.text[start : self.starts[row + 1] - 1]
        if line.isascii():
            return start + column
        prefix = line.encode("utf-8", "surrogatepass")[:column]
        return start + len(prefix.decode("utf-8", "ignore"))


def _last_row(node: Node) -> int:
    """The line a node ends on; one that ends with its newline (a Rust `//` comment) ends on
    the line before."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point[0] else row


CODE_TREE = CodeReader()
register(CODE_TREE)
